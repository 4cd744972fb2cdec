"""Alembic environment: our SQLModel metadata, the URL from settings."""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import escalation_app.domain.models  # noqa: F401  (registers the tables)
from escalation_app.domain.db import make_engine
from escalation_app.domain.models import outside_search_index
from escalation_app.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _url() -> str:
    # Tests hand a URL in through the config; everyone else uses DATABASE_URL.
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=True,
        # The full-text index's own objects are built by migration 0013, not from the models.
        include_name=outside_search_index,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it (batch mode): with foreign keys enforced,
            # dropping the old copy of a table that other rows point at fails. Off for the
            # migration (outside any transaction, where SQLite honours it); checked after.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
            include_name=outside_search_index,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.connection.driver_connection.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows pointing at nothing: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
