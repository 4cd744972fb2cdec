"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Fast bcrypt for tests; set before the settings are first read.
os.environ.setdefault("PASSWORD_HASH_ROUNDS", "4")
# The fake PSA, Slack and Teams servers listen on 127.0.0.1: let outbound requests reach
# loopback and private addresses. tests/services/test_outbound.py and tests/security/
# prove the refusal with this off.
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", "true")

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

from escalation_app.domain.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
# One running app per session for tests/browser/ and tests/security/.
pytest_plugins = ["tests.app_server"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def app_uses_database(url: str) -> Iterator[str]:
    """Point the app's own engine (`session_scope()`, settings) at `url`, and back afterwards."""
    from escalation_app.domain.db import get_engine
    from escalation_app.settings import get_settings

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        yield url
    finally:
        get_engine().dispose()
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        get_settings.cache_clear()
        get_engine.cache_clear()


def pg_unavailable_reason() -> str | None:
    """None when PostgreSQL answers at PG_ADMIN_URL, else why not."""
    try:
        with psycopg.connect(_libpq_url(PG_ADMIN_URL), connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


def require_or_skip(reason: str | None) -> None:
    """Skip with `reason` on a laptop; under CI=true a missing service is a failure."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def migrate(url: str) -> None:
    """Run `alembic upgrade head` against `url`."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def create_pg_database() -> tuple[str, str]:
    """Create a uniquely named PostgreSQL database; returns (sqlalchemy url, name)."""
    name = f"escalation_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(PG_ADMIN_URL, name), name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(_libpq_url(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend_url(request, tmp_path_factory) -> Iterator[str]:
    """A freshly migrated database of each backend, for the whole run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        migrate(url)
        yield url
        return
    require_or_skip(pg_unavailable_reason())
    url, name = create_pg_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def engine(backend_url) -> Iterator[Engine]:
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


def wipe(engine: Engine) -> None:
    """Empty every table (children first)."""
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def db(engine) -> Iterator[Session]:
    """A clean database session for one test."""
    wipe(engine)
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in the
    main thread for as long as its browser is open, which async tests cannot share."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
