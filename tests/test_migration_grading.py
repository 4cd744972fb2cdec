"""Migration 0014 (assessment grading) goes down and up again on both databases, keeping rows."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from tests.conftest import ROOT


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    from tests.conftest import create_pg_database, drop_pg_database, pg_unavailable_reason, require_or_skip

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'grading.db'}"
        return
    require_or_skip(pg_unavailable_reason())
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def _grading_schema(url: str) -> tuple[bool, bool]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("session_handoff")}
        return "assessment_grade" in inspector.get_table_names(), "completeness_missing" in columns
    finally:
        engine.dispose()


def test_assessment_grading_migration_downgrades_and_upgrades(empty_url):
    config = _config(empty_url)
    command.upgrade(config, "head")
    assert _grading_schema(empty_url) == (True, True)
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO account (name, created_at) VALUES ('A', CURRENT_TIMESTAMP)"))
    engine.dispose()

    # Revision "0014" is this feature's; once re-chained it may no longer be the head,
    # so step down from it by name and come back.
    command.downgrade(config, "0014-1")
    assert _grading_schema(empty_url) == (False, False)
    command.upgrade(config, "head")
    assert _grading_schema(empty_url) == (True, True)
    engine = create_engine(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM account")).scalar() == 1
    engine.dispose()
