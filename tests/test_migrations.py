"""Migrations build the schema from nothing and match the models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import escalation_app.domain.models  # noqa: F401
from escalation_app.domain.models import outside_search_index


def test_migrated_schema_matches_models(engine):
    # `engine` is built by `alembic upgrade head` on an empty database of each backend.
    with engine.connect() as conn:
        # As alembic/env.py: the full-text index's own objects (migration 0013) are not models.
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": outside_search_index}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def _alembic(url: str, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    from tests.conftest import ROOT

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, target)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """An empty database of each backend (no migrations run)."""
    from tests.conftest import create_pg_database, drop_pg_database, pg_unavailable_reason, require_or_skip

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'carry.db'}"
        return
    require_or_skip(pg_unavailable_reason())
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def test_the_outbox_migration_carries_deliveries_and_pending_assessments_over(empty_url):
    """0006 turns each delivery record into the job it stood for, in its state."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine, inspect, text

    url = empty_url
    _alembic(url, "0005")
    engine = create_engine(url)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    handoff = uuid.uuid4()
    waiting = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO account (id, name, created_at) VALUES (1, 'A', :t)"), {"t": now})
        conn.execute(
            text(
                "INSERT INTO app_user (id, account_id, email, display_name, password_hash, account_role,"
                " is_active, created_at) VALUES (1, 1, 'a@x', 'A', 'h', 'engineer', true, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO support_session (id, account_id, owner_id, problem_summary, problem_domain,"
                " client_name, status, confidence_tier, handoff_count, created_at, updated_at)"
                " VALUES (1, 1, 1, 'P', '', '', 'escalated', 'medium', 1, :t, :t)"
            ),
            {"t": now},
        )
        for hid, ai in ((handoff, "ready"), (waiting, "pending")):
            conn.execute(
                text(
                    "INSERT INTO session_handoff (id, session_id, account_id, handed_off_by_id, intent, priority,"
                    " engineer_notes, snapshot, ai_status, checked_steps, created_at)"
                    " VALUES (:id, 1, 1, 1, 'escalate', 'normal', '', '{}', :ai, '[]', :t)"
                ),
                {"id": hid.hex, "ai": ai, "t": now},
            )
        rows = [
            ("email", "escalation", "s@x", "sent", 1, None, {"user_id": 1, "to": "s@x"}, None),
            (
                "email",
                "escalation",
                "r@x",
                "failed",
                1,
                "timeout",
                {"user_id": 2},
                now + timedelta(seconds=30),
            ),
            ("email", "escalation", "m@x", "failed", 3, "refused", {"user_id": 3}, None),
            ("webhook", "escalation", "slack", "skipped", 0, "gone", {}, None),
            (
                "psa",
                "psa_escalation",
                "halopsa:9",
                "queued",
                0,
                None,
                {"ticket_id": "9"},
                now + timedelta(minutes=1),
            ),
        ]
        for channel, kind, recipient, status, attempts, error, payload, due in rows:
            conn.execute(
                text(
                    "INSERT INTO delivery_record (account_id, handoff_id, channel, kind, recipient, status,"
                    " attempts, last_error, payload, next_attempt_at, sent_at, created_at, updated_at)"
                    " VALUES (1, :h, :c, :k, :r, :s, :a, :e, :p, :due, :sent, :t, :t)"
                ),
                {
                    "h": handoff.hex,
                    "c": channel,
                    "k": kind,
                    "r": recipient,
                    "s": status,
                    "a": attempts,
                    "e": error,
                    "p": __import__("json").dumps(payload),
                    "due": due,
                    "sent": now if status == "sent" else None,
                    "t": now,
                },
            )
    _alembic(url, "head")
    with engine.connect() as conn:
        jobs = conn.execute(
            text(
                "SELECT kind, recipient, status, attempts, last_error, dedupe_key FROM outbox_job ORDER BY id"
            )
        ).all()
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert [tuple(j[:5]) for j in jobs] == [
        ("email", "s@x", "done", 1, None),
        ("email", "r@x", "pending", 1, "timeout"),
        ("email", "m@x", "failed", 3, "refused"),
        ("webhook", "slack", "skipped", 0, "gone"),
        ("psa_note", "halopsa:9", "pending", 0, None),
        ("assessment", "", "pending", 0, None),
    ]
    assert jobs[0][5] == f"email:{handoff}:1" and jobs[4][5] == f"psa:escalation:{handoff}"
    assert jobs[5][5] == f"assessment:{waiting}"
    assert "delivery_record" not in tables
