"""Escalation analytics against a small hand-built data set, with the expected numbers
worked out by hand below, on both databases (PostgreSQL's percentile_cont and SQLite's
window-function equivalent must agree)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import delete, func, select

from escalation_app.domain.analytics import escalation_analytics
from escalation_app.domain.demo_history import MARKER_EMAIL, load_demo_history
from escalation_app.domain.errors import PermissionDenied
from escalation_app.domain.history import HistoryFilters, list_history
from escalation_app.domain.models import (
    CaseEvent,
    Notification,
    OutboxJob,
    SessionHandoff,
    SessionStep,
    SupportSession,
    User,
)
from tests.conftest import wipe
from tests.factories import World

# A Wednesday noon. "This week" is (Mar 11 12:00, Mar 18 12:00], "last week" the 7 days
# before; the 30 charted days are Feb 17 .. Mar 18; the 12 claim-time weeks go back to
# Dec 24 12:00.
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def world(db) -> World:
    world = World(db)
    db.exec(delete(OutboxJob))
    db.exec(delete(Notification))
    db.exec(delete(SessionHandoff))
    db.commit()
    return world


def add(
    world: World,
    by: str,
    created: datetime,
    priority: str = "normal",
    domain: str = "Email",
    claimer: str | None = None,
    wait_seconds: float | None = None,
    intent: str = "escalate",
) -> None:
    user = world.users[by]
    support_session = SupportSession(
        account_id=user.account_id,
        owner_id=user.id,
        problem_summary="Something broke",
        problem_domain=domain,
        created_at=created,
        updated_at=created,
    )
    world.db.add(support_session)
    world.db.flush()
    world.db.add(
        SessionHandoff(
            session_id=support_session.id,
            account_id=user.account_id,
            handed_off_by_id=user.id,
            intent=intent,
            priority=priority,
            claimed_by_id=world.users[claimer].id if claimer else None,
            claimed_at=created + timedelta(seconds=wait_seconds) if claimer else None,
            created_at=created,
        )
    )
    world.db.commit()


@pytest.fixture
def data(world) -> World:
    # This week (created and claimed in it).
    add(world, "alex", at(3, 12, 9), "high", "Email", "riley", 60)  # E1
    add(world, "alex", at(3, 13, 14), "urgent", "Email", "riley", 120.25)  # E2
    add(world, "sam", at(3, 16, 8), "normal", "Network", "morgan", 300)  # E3
    add(world, "sam", at(3, 17, 9), "normal", "Printing", "riley", 600)  # E4
    add(world, "alex", at(3, 18, 8), "low", "", "morgan", 1200)  # E5 (no domain)
    add(world, "alex", at(3, 17, 10), "high", "Network")  # E6 unclaimed (the oldest open)
    add(world, "sam", at(3, 18, 9), "urgent", "Email")  # E7 unclaimed
    # Parks never count, claimed or not.
    add(world, "alex", at(3, 15), "normal", "Email", intent="park")
    add(world, "sam", at(3, 14), "normal", "Email", "riley", 5000, intent="park")
    # Last week.
    add(world, "alex", at(3, 5), "normal", "Email", "sam", 100)  # E8
    add(world, "sam", at(3, 6), "high", "Printing", "riley", 200)  # E9
    add(world, "alex", at(3, 9), "normal", "Email", "riley", 400)  # E10
    add(world, "alex", at(3, 10), "low", "Network", "morgan", 800)  # E11
    # Created exactly 7 days before NOW: last week's; claimed 1000 s later: this week's claim.
    add(world, "alex", at(3, 11, 12), "normal", "Email", "sam", 1000)  # E16
    # First charted day (Feb 17), and the day before it (claimed on Feb 17).
    add(world, "sam", at(2, 17, 0, 30), "normal", "Printing", "riley", 3600)  # E12
    add(world, "alex", at(2, 16, 23), "high", "Email", "riley", 7200)  # E13
    # Ten weeks back, and beyond the twelve weeks.
    add(world, "sam", at(1, 1), "normal", "Email", "riley", 500)  # E14
    add(world, "alex", at(12, 1, year=2025), "normal", "Email", "riley", 50)  # E15
    # Contoso: never in Northwind's numbers.
    add(world, "casey", at(3, 17), "urgent", "Apps")
    add(world, "casey", at(3, 16), "normal", "Apps", "jordan", 30)
    # Northwind activity after NOW is not "now" yet.
    add(world, "alex", at(3, 18, 13), "urgent", "Email")
    return world


def test_cards(data):
    a = escalation_analytics(db=data.db, actor=data.actor("morgan"), now=NOW)
    assert a.generated_at == NOW
    # Created in (Mar 11 12:00, Mar 18 12:00]: E1..E7.  In the week before: E8..E11, E16.
    assert (a.escalations_this_week, a.escalations_last_week) == (7, 5)
    assert a.escalations_change_pct == 40  # (7 - 5) / 5
    # Claimed this week: 60, 120.25, 300, 600, 1000 (E16), 1200 -> n = 6.
    # p50: position 0.5 * 5 = 2.5 -> 300 + 0.5 * (600 - 300) = 450.
    # p90: position 0.9 * 5 = 4.5 -> 1000 + 0.5 * (1200 - 1000) = 1100.
    assert a.claims_this_week == 6
    assert a.claim_p50_seconds_this_week == 450.0
    assert a.claim_p90_seconds_this_week == 1100.0
    # Unclaimed escalations: E6 (Mar 17 10:00) and E7; not the park, not Contoso's, not the future one.
    assert a.open_unclaimed == 2
    assert a.oldest_unclaimed_seconds == 26 * 3600
    assert a.oldest_unclaimed_since == at(3, 17, 10)


def test_claim_time_per_week(data):
    weekly = escalation_analytics(db=data.db, actor=data.actor("riley"), now=NOW).claim_time_per_week
    assert len(weekly) == 12
    assert weekly[-1]["week_start"] == "2026-03-11"
    assert weekly[-1]["week_end"] == "2026-03-18"
    assert weekly[-1]["label"] == "Mar 11"
    assert weekly[0]["week_start"] == "2025-12-24"
    by_age = {11 - i: row for i, row in enumerate(weekly)}  # 0 = this week
    stats = {k: (r["claims"], r["p50_seconds"], r["p90_seconds"]) for k, r in by_age.items()}
    assert stats == {
        0: (6, 450.0, 1100.0),
        # 100, 200, 400, 800: p50 at 1.5 -> 300; p90 at 2.7 -> 400 + 0.7 * 400 = 680.
        1: (4, 300.0, 680.0),
        2: (0, None, None),
        3: (0, None, None),
        # E12 (3600, claimed Feb 17 01:30) and E13 (7200, claimed Feb 17 01:00), both
        # in (Feb 11 12:00, Feb 18 12:00]: p50 = 5400; p90 at 0.9 -> 3600 + 0.9 * 3600 = 6840.
        4: (2, 5400.0, 6840.0),
        5: (0, None, None),
        6: (0, None, None),
        7: (0, None, None),
        8: (0, None, None),
        9: (0, None, None),
        # E14: claimed Jan 1 10:08, 76 days before NOW.
        10: (1, 500.0, 500.0),
        11: (0, None, None),
    }
    assert by_age[0]["p50_minutes"] == 7.5
    assert by_age[0]["p90_minutes"] == 18.3
    assert by_age[2]["p50_minutes"] is None


def test_escalations_per_day_stacked_by_priority(data):
    per_day = escalation_analytics(db=data.db, actor=data.actor("morgan"), now=NOW).per_day
    assert len(per_day) == 30
    assert (per_day[0]["day"], per_day[0]["label"]) == ("2026-02-17", "Feb 17")
    assert per_day[-1]["day"] == "2026-03-18"
    non_zero = {
        row["day"]: {k: row[k] for k in ("low", "normal", "high", "urgent", "total") if row[k]}
        for row in per_day
        if row["total"]
    }
    assert non_zero == {
        "2026-02-17": {"normal": 1, "total": 1},  # E12 (E13 was Feb 16)
        "2026-03-05": {"normal": 1, "total": 1},
        "2026-03-06": {"high": 1, "total": 1},
        "2026-03-09": {"normal": 1, "total": 1},
        "2026-03-10": {"low": 1, "total": 1},
        "2026-03-11": {"normal": 1, "total": 1},
        "2026-03-12": {"high": 1, "total": 1},
        "2026-03-13": {"urgent": 1, "total": 1},
        "2026-03-16": {"normal": 1, "total": 1},
        "2026-03-17": {"normal": 1, "high": 1, "total": 2},
        "2026-03-18": {"low": 1, "urgent": 1, "total": 2},
    }
    assert all(set(row) == {"day", "label", "low", "normal", "high", "urgent", "total"} for row in per_day)


def test_breakdowns_per_engineer_domain_and_claimer(data):
    a = escalation_analytics(db=data.db, actor=data.actor("morgan"), now=NOW)
    alex, sam = data.users["alex"].id, data.users["sam"].id
    # Created Feb 17 .. NOW: alex E1 E2 E5 E6 E8 E10 E11 E16, sam E3 E4 E7 E9 E12.
    assert a.per_engineer == [
        {"user_id": alex, "name": "Alex Kim", "count": 8},
        {"user_id": sam, "name": "Sam Patel", "count": 5},
    ]
    assert a.per_domain == [
        {"domain": "Email", "count": 6},  # E1 E2 E7 E8 E10 E16
        {"domain": "Network", "count": 3},  # E3 E6 E11
        {"domain": "Printing", "count": 3},  # E4 E9 E12
        {"domain": "Unspecified", "count": 1},  # E5
    ]
    # Claimed Feb 17 .. NOW (E13 counts: claimed Feb 17 though created Feb 16).
    # riley 60, 120.25, 200, 400, 600, 3600, 7200 -> median 400; morgan 300, 800, 1200 -> 800;
    # sam 100, 1000 -> 550.
    assert a.top_claimers == [
        {"user_id": data.users["riley"].id, "name": "Riley Chen", "count": 7, "p50_seconds": 400.0,
         "p50_minutes": 6.7},
        {"user_id": data.users["morgan"].id, "name": "Morgan Lee", "count": 3, "p50_seconds": 800.0,
         "p50_minutes": 13.3},
        {"user_id": sam, "name": "Sam Patel", "count": 2, "p50_seconds": 550.0, "p50_minutes": 9.2},
    ]  # fmt: skip

    top2 = escalation_analytics(db=data.db, actor=data.actor("morgan"), now=NOW, top_n=2)
    assert top2.per_domain == [
        {"domain": "Email", "count": 6},
        {"domain": "Network", "count": 3},
        {"domain": "Other", "count": 4},
    ]
    assert [row["name"] for row in top2.top_claimers] == ["Riley Chen", "Morgan Lee"]


def test_other_account_and_empty_account(data):
    contoso = escalation_analytics(db=data.db, actor=data.actor("jordan"), now=NOW)
    assert (contoso.escalations_this_week, contoso.escalations_last_week) == (2, 0)
    assert contoso.escalations_change_pct is None
    assert (contoso.claims_this_week, contoso.claim_p50_seconds_this_week) == (1, 30.0)
    assert (contoso.open_unclaimed, contoso.oldest_unclaimed_seconds) == (1, 26 * 3600)
    assert contoso.per_engineer == [{"user_id": data.users["casey"].id, "name": "Casey Diaz", "count": 2}]
    assert contoso.per_domain == [{"domain": "Apps", "count": 2}]

    data.db.exec(delete(OutboxJob))
    data.db.exec(delete(SessionHandoff))
    data.db.commit()
    empty = escalation_analytics(db=data.db, actor=data.actor("morgan"), now=NOW)
    assert (empty.escalations_this_week, empty.escalations_last_week, empty.open_unclaimed) == (0, 0, 0)
    assert (empty.claim_p50_seconds_this_week, empty.claim_p90_seconds_this_week) == (None, None)
    assert (empty.oldest_unclaimed_seconds, empty.oldest_unclaimed_since) == (None, None)
    assert [row["total"] for row in empty.per_day] == [0] * 30
    assert (empty.per_engineer, empty.per_domain, empty.top_claimers) == ([], [], [])


@pytest.mark.parametrize("name", ["alex", "val"])
def test_only_owners_and_admins(world, name):
    with pytest.raises(PermissionDenied):
        escalation_analytics(db=world.db, actor=world.actor(name), now=NOW)


# ---------------------------------------------------------------------------
# Demo history
# ---------------------------------------------------------------------------


def _contoso_rows(world: World) -> tuple:
    db = world.db
    cid = world.contoso.id
    sessions = db.exec(
        select(func.count()).select_from(SupportSession).where(SupportSession.account_id == cid)
    )
    handoffs = db.exec(
        select(func.count()).select_from(SessionHandoff).where(SessionHandoff.account_id == cid)
    )
    users = db.exec(select(func.count()).select_from(User).where(User.account_id == cid))
    return sessions.one(), handoffs.one(), users.one()


def test_demo_history_is_realistic_idempotent_and_northwind_only(engine, db):
    world = World(db)
    contoso_before = _contoso_rows(world)
    before = db.exec(select(func.count()).select_from(SessionHandoff)).one()

    added = load_demo_history(db, now=NOW)
    assert 250 <= added <= 450
    assert load_demo_history(db, now=NOW) == 0  # already there: nothing added
    assert load_demo_history(db) == 0
    assert db.exec(select(func.count()).select_from(SessionHandoff)).one() == before + added
    assert _contoso_rows(world) == contoso_before

    northwind = world.northwind.id
    handoffs = db.exec(select(SessionHandoff).where(SessionHandoff.account_id == northwind)).all()
    history = [h for h in handoffs if h.created_at < NOW - timedelta(hours=1)]
    assert len(history) >= 250
    assert min(h.created_at for h in history) >= NOW - timedelta(days=91)
    assert {h.priority for h in history} == {"low", "normal", "high", "urgent"}
    assert {h.intent for h in history} == {"park", "escalate", "handback"}
    # After the pick-up: most fixed with a root cause, some handed back, some sent onward.
    outcomes = Counter(h.outcome for h in history)
    assert outcomes["resolved"] > 100 and outcomes["handed_back"] >= 5 and outcomes["escalated_on"] >= 5
    kinds = Counter(db.exec(select(CaseEvent.kind).where(CaseEvent.account_id == northwind)).all())
    assert kinds["resolved"] == outcomes["resolved"]
    assert kinds["handed_back"] == outcomes["handed_back"]
    assert kinds["escalated_on"] == outcomes["escalated_on"]
    # A hand-back is the owner's the moment it is made: it never waits for a claim.
    handbacks = [h for h in history if h.intent == "handback"]
    assert all(h.claimed_at == h.created_at and h.claimed_by_id != h.handed_off_by_id for h in handbacks)
    claimed = [h for h in history if h.claimed_by_id is not None and h.intent != "handback"]
    assert all(h.claimed_by_id != h.handed_off_by_id for h in claimed)
    assert all(h.claimed_at > h.created_at for h in claimed)
    assert all(h.claimed_at <= NOW for h in claimed)
    waits = sorted((h.claimed_at - h.created_at).total_seconds() for h in claimed)
    assert waits[0] < 15 * 60 and waits[-1] > 3 * 3600  # minutes to hours
    # Alex, Sam and two new engineers hand off their own sessions; the seniors who hand
    # back or escalate onward hand off sessions they work for someone else.
    owners_handing_off = db.exec(
        select(SessionHandoff.handed_off_by_id)
        .join(SupportSession, SupportSession.id == SessionHandoff.session_id)
        .where(
            SessionHandoff.account_id == northwind,
            SupportSession.owner_id == SessionHandoff.handed_off_by_id,
            SessionHandoff.created_at < NOW - timedelta(hours=1),
        )
    ).all()
    assert len(set(owners_handing_off)) == 4
    assert db.exec(select(User).where(User.email == MARKER_EMAIL)).one().account_id == northwind
    steps = db.exec(
        select(func.count())
        .select_from(SessionStep)
        .join(SupportSession)
        .where(SupportSession.account_id == northwind)
    ).one()
    assert steps > 1.5 * added  # two or three steps per session
    # Some are still waiting for a senior, recently.
    waiting = [h for h in handoffs if h.claimed_by_id is None and h.intent == "escalate"]
    assert 3 <= len(waiting) <= 10

    # The views work on it.
    a = escalation_analytics(db=db, actor=world.actor("morgan"), now=NOW)
    assert a.escalations_this_week > 5 and a.claim_p50_seconds_this_week > 0
    assert sum(row["total"] for row in a.per_day) > 50
    assert a.resolves_after_claim > 20 and a.resolve_p50_seconds > 0
    assert sum(row["count"] for row in a.per_root_cause) == a.resolves_after_claim
    assert {row["label"] for row in a.per_root_cause} >= {"Configuration", "Hardware failure"}
    assert sum(row["hand_backs"] + row["onward"] for row in a.casework_per_engineer) > 0
    page = list_history(db=db, actor=world.actor("morgan"), filters=HistoryFilters())
    assert page.total == len(handoffs) and page.page_count > 1

    # Deterministic: the same seed and moment give the same history.
    first = sorted((h.created_at, h.priority, h.intent) for h in history)
    db.rollback()  # end the read transaction before emptying the tables
    wipe(engine)
    World(db)
    load_demo_history(db, now=NOW)
    again = db.exec(select(SessionHandoff).where(SessionHandoff.created_at < NOW - timedelta(hours=1))).all()
    # Both runs include the two demo-data handoffs created "now" (after NOW), so none here.
    assert sorted((h.created_at, h.priority, h.intent) for h in again) == first
