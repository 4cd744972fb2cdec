"""Migration 0013 indexes the cases resolved before it, on both databases, and undoes cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session

from escalation_app.domain.similar_cases import find_similar
from tests.conftest import ROOT, create_pg_database, drop_pg_database, pg_unavailable_reason, require_or_skip


def _alembic(url: str, target: str, *, down: bool = False) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    (command.downgrade if down else command.upgrade)(config, target)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'similar.db'}"
        return
    require_or_skip(pg_unavailable_reason())
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _at(conn, moment: datetime | None):
    """A timestamp as the app stores it: timestamptz on PostgreSQL, naive UTC text on SQLite."""
    if moment is None or conn.dialect.name == "postgresql":
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _insert_case(conn, sid: int, *, summary: str, status: str, outcome: str | None, fix: str | None) -> str:
    handoff = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO support_session (id, account_id, owner_id, problem_summary, problem_domain,"
            " client_name, status, confidence_tier, handoff_count, resolution, root_cause, resolved_at,"
            " resolved_by_id, created_at, updated_at)"
            " VALUES (:id, 1, 1, :summary, 'Phones / VoIP', 'Harbor Dental', :status, 'medium', 1, :fix,"
            " :cause, :resolved, :by, :t, :t)"
        ),
        {
            "id": sid,
            "summary": summary,
            "status": status,
            "fix": fix,
            "cause": "configuration" if fix else None,
            "resolved": _at(conn, T0 + timedelta(hours=3)) if fix else None,
            "by": 2 if fix else None,
            "t": _at(conn, T0),
        },
    )
    for position, (tried, result) in enumerate(
        (("Checked the PBX trunk status", "Trunk unregistered"), ("Rebooted the PBX", "No change")), start=1
    ):
        conn.execute(
            text(
                "INSERT INTO session_step (session_id, position, tried, result, skipped, created_at)"
                " VALUES (:s, :p, :tried, :result, false, :t)"
            ),
            {"s": sid, "p": position, "tried": tried, "result": result, "t": _at(conn, T0)},
        )
    conn.execute(
        text(
            "INSERT INTO session_handoff (id, session_id, account_id, handed_off_by_id, intent, priority,"
            " engineer_notes, snapshot, ai_status, checked_steps, claimed_by_id, claimed_at, outcome,"
            " outcome_at, created_at)"
            " VALUES (:id, :s, 1, 1, 'escalate', 'normal', 'Carrier changed something?', '{}', 'ready', '[]',"
            " 2, :claimed, :outcome, :ended, :t)"
        ),
        {
            "id": handoff.hex,
            "s": sid,
            "claimed": _at(conn, T0 + timedelta(minutes=5)),
            "outcome": outcome,
            "ended": _at(conn, T0 + timedelta(hours=3)) if outcome else None,
            "t": _at(conn, T0),
        },
    )
    return str(handoff)


def test_resolved_cases_from_before_the_migration_are_similar_cases_after_it(empty_url):
    url = empty_url
    _alembic(url, "0011")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO account (id, name, created_at) VALUES (1, 'A', :t)"), {"t": _at(conn, T0)}
        )
        for uid, name in ((1, "Alex Kim"), (2, "Riley Chen")):
            conn.execute(
                text(
                    "INSERT INTO app_user (id, account_id, email, display_name, password_hash, account_role,"
                    " is_active, created_at) VALUES (:id, 1, :email, :name, 'h', 'admin', true, :t)"
                ),
                {"id": uid, "email": f"u{uid}@x", "name": name, "t": _at(conn, T0)},
            )
        fixed = _insert_case(
            conn,
            1,
            summary="Inbound calls get a busy signal",
            status="resolved",
            outcome="resolved",
            fix="Re-registered the SIP trunk with the carrier",
        )
        _insert_case(conn, 2, summary="Inbound calls busy again", status="active", outcome=None, fix=None)
    engine.dispose()

    _alembic(url, "head")
    engine = create_engine(url)
    with Session(engine) as db:
        [case] = find_similar(db, account_id=1, texts=["Callers hear busy tone, SIP trunk unregistered"])
        assert (case.session_id, case.handoff_id, case.fixed_by_name) == (1, fixed, "Riley Chen")
        assert case.fix == "Re-registered the SIP trunk with the carrier"
        assert case.time_to_fix == timedelta(hours=3)
        # Found by the steps and the notes too, as the domain's own documents are.
        assert [c.session_id for c in find_similar(db, account_id=1, texts=["carrier rebooted"])] == [1]
        assert find_similar(db, account_id=2, texts=["busy signal"]) == []
    engine.dispose()

    # Down and up again: the index goes and comes back whole.
    _alembic(url, "0011", down=True)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert not any(name.startswith("case_search") for name in inspect(conn).get_table_names())
    engine.dispose()
    _alembic(url, "head")
    engine = create_engine(url)
    with Session(engine) as db:
        assert [c.session_id for c in find_similar(db, account_id=1, texts=["busy signal"])] == [1]
    engine.dispose()
