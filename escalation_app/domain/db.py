"""Engine and session factory for the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from escalation_app.settings import get_settings


def make_engine(url: str) -> Engine:
    """Create an engine for `url`, tuned for our concurrency rules.

    On SQLite every transaction starts with `BEGIN IMMEDIATE`: a deferred transaction
    that reads and then writes can fail with SQLITE_BUSY when another writer got in
    between, which would turn a claim race into an error instead of a clean loser.
    WAL keeps readers unblocked while one writer works.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # Let SQLAlchemy's "begin" event own transaction starts.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": get_settings().database_connect_timeout_seconds},
    )


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for `DATABASE_URL`."""
    return make_engine(get_settings().database_url)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A database session that rolls back on error and always closes."""
    with Session(engine or get_engine(), expire_on_commit=False) as db:
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
