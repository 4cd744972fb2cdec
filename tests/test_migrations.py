"""Migrations build the schema from nothing and match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import escalation_app.domain.models  # noqa: F401


def test_migrated_schema_matches_models(engine):
    # `engine` is built by `alembic upgrade head` on an empty database of each backend.
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
