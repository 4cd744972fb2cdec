"""The escalation clock (domain and its worker), both databases, time from an injectable clock.

Each level fires once at its instant, never after a claim; two workers racing fire it
once; a timer that fell due while no worker ran fires once at start-up; a snoozed park
wakes its owner; policy changes reach new escalations only; stalled claims remind.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain import clock, outbox
from escalation_app.domain.errors import AlreadyClaimed, InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import card_view, claim_handoff, create_handoff, get_queue
from escalation_app.domain.models import (
    AccountIntegration,
    EscalationPolicy,
    JobStatus,
    Notification,
    OutboxJob,
    SessionHandoff,
    SessionStep,
)
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.support_sessions import add_step, create_session
from tests.factories import World, resolve_session
from tests.outbox_helpers import Clock, clear_outbox, worker

TIMER = [JobKind.TIMER]


@pytest.fixture
def world(db) -> World:
    world = World(db)
    # The demo data's escalations have timers of their own: each test sees only its own.
    clear_outbox(db)
    return world


def _escalate(world: World, *, priority: str = "normal", owner: str = "alex", **kwargs) -> SessionHandoff:
    sid = world.new_session(owner)
    return create_handoff(
        db=world.db, actor=world.actor(owner), session_id=sid, intent="escalate", priority=priority, **kwargs
    )


def _policy(world: World, **fields) -> None:
    values = {
        "time_zone": "UTC",
        "urgent_minutes": "5",
        "high_minutes": "15",
        "normal_minutes": "30",
        "low_minutes": "120",
        **fields,
    }
    clock.save_policy(db=world.db, actor=world.actor("morgan"), **values)


def _fresh(world: World, handoff_id) -> SessionHandoff:
    world.db.expire_all()
    return world.db.get(SessionHandoff, handoff_id)


def _bells(world: World, handoff_id=None, title_part: str = "") -> list[tuple[str, str]]:
    """(user's first name, title) of bell entries, optionally of one handoff / with a title part."""
    world.db.expire_all()
    query = select(Notification).order_by(col(Notification.id))
    if handoff_id is not None:
        query = query.where(Notification.handoff_id == handoff_id)
    names = {u.id: k for k, u in world.users.items()}
    return [(names[n.user_id], n.title) for n in world.db.exec(query).all() if title_part in n.title]


def _timers(world: World, handoff_id) -> list[OutboxJob]:
    world.db.expire_all()
    return list(
        world.db.exec(
            select(OutboxJob)
            .where(OutboxJob.handoff_id == handoff_id, OutboxJob.kind == JobKind.TIMER)
            .order_by(col(OutboxJob.run_at))
        ).all()
    )


async def _run_timers(world: World, at: datetime) -> int:
    """A worker whose clock says `at` runs every due timer; how many ran."""
    world.db.commit()
    return await worker(world.db.get_bind(), clock=Clock(at), kinds=TIMER).drain()


# --------------------------------------------------------------------------- arming


def test_an_escalation_keeps_its_target_and_gets_one_timer_per_level(world):
    _policy(world, level3_after_minutes="20")
    handoff = _escalate(world, priority="high")
    assert handoff.clock["target_minutes"] == 15
    assert handoff.response_due_at == handoff.created_at + timedelta(minutes=15)
    timers = _timers(world, handoff.id)
    assert [(t.payload["level"], t.run_at, t.status) for t in timers] == [
        (2, handoff.response_due_at, "pending"),
        (3, handoff.response_due_at + timedelta(minutes=20), "pending"),
    ]
    assert [t.dedupe_key for t in timers] == [clock.level_key(handoff.id, 2), clock.level_key(handoff.id, 3)]
    # The card carries the deadline instant; the browser ticks it.
    card = card_view(
        next(c for c in get_queue(db=world.db, actor=world.actor("riley")) if c.id == str(handoff.id))
    )
    assert card["due_at"] == handoff.response_due_at.isoformat()
    assert card["level"] == "1" and card["level_label"] == ""


def test_without_a_saved_policy_the_defaults_apply(world):
    targets = {
        p: _escalate(world, priority=p).clock["target_minutes"] for p in ("urgent", "high", "normal", "low")
    }
    assert targets == {"urgent": 5, "high": 15, "normal": 30, "low": 120}


def test_a_park_has_no_response_clock(world):
    sid = world.new_session()
    park = create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="park")
    assert park.response_due_at is None and _timers(world, park.id) == []
    card = card_view(
        next(c for c in get_queue(db=world.db, actor=world.actor("riley")) if c.id == str(park.id))
    )
    assert card["due_at"] == ""


# --------------------------------------------------------------------------- levels fire once, at their instant


async def test_level_2_fires_once_at_its_instant_to_owners_and_admins(world):
    handoff = _escalate(world)
    due = handoff.response_due_at

    assert await _run_timers(world, due - timedelta(seconds=1)) == 0
    assert _bells(world, handoff.id, "Unclaimed") == []

    assert await _run_timers(world, due) == 1
    title = "Unclaimed for 30 min: Mail flow stopped"
    # Riley (admin) and Morgan (owner); not Alex who escalated it, nor Sam, nor Val (viewer).
    assert _bells(world, handoff.id, "Unclaimed") == [("riley", title), ("morgan", title)]
    fired = _fresh(world, handoff.id)
    assert fired.escalation_level == 2 and fired.re_escalated_at == due
    # Email to each, and a live push for their bells and the queue cards.
    world.db.expire_all()
    emails = world.db.exec(
        select(OutboxJob).where(OutboxJob.handoff_id == handoff.id, OutboxJob.kind == JobKind.EMAIL)
    ).all()
    notices = [j for j in emails if j.payload.get("message") == "notice"]
    assert sorted(j.recipient for j in notices) == ["morgan@northwind.example", "riley@northwind.example"]
    assert {j.payload["title"] for j in notices} == {title}
    lives = world.db.exec(
        select(OutboxJob).where(OutboxJob.handoff_id == handoff.id, OutboxJob.kind == JobKind.LIVE)
    ).all()
    assert {j.payload["event"] for j in lives} >= {"notified", "updated"}
    card = card_view(
        next(c for c in get_queue(db=world.db, actor=world.actor("sam")) if c.id == str(handoff.id))
    )
    assert card["level_label"] == "Re-escalated to level 2"

    # Later workers find nothing more to fire.
    assert await _run_timers(world, due + timedelta(hours=5)) == 0
    assert len(_bells(world, handoff.id, "Unclaimed")) == 2
    assert [t.status for t in _timers(world, handoff.id)] == ["done"]


async def test_level_3_fires_after_its_further_delay_to_the_named_people(world):
    _policy(world, level3_after_minutes="10", level3_user_ids=[str(world.users["sam"].id)])
    handoff = _escalate(world)
    due = handoff.response_due_at
    assert await _run_timers(world, due) == 1
    assert await _run_timers(world, due + timedelta(minutes=10) - timedelta(seconds=1)) == 0
    assert await _run_timers(world, due + timedelta(minutes=10)) == 1
    assert _bells(world, handoff.id, "Unclaimed for 40 min") == [
        ("sam", "Unclaimed for 40 min: Mail flow stopped")
    ]
    assert _fresh(world, handoff.id).escalation_level == 3


async def test_named_level_2_people_replace_the_managers(world):
    _policy(world, level2_user_ids=[str(world.users["sam"].id)])
    handoff = _escalate(world)
    await _run_timers(world, handoff.response_due_at)
    assert [who for who, _ in _bells(world, handoff.id, "Unclaimed")] == ["sam"]


async def test_a_claim_before_the_instant_skips_the_levels_in_its_own_transaction(world):
    _policy(world, level3_after_minutes="10")
    handoff = _escalate(world)
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    levels = [t for t in _timers(world, handoff.id) if t.payload["timer"] == "level"]
    assert [t.status for t in levels] == ["skipped", "skipped"]
    await _run_timers(world, handoff.response_due_at + timedelta(hours=1))
    assert _bells(world, handoff.id, "Unclaimed") == []
    assert _fresh(world, handoff.id).escalation_level == 1


async def test_a_claim_after_the_instant_still_wins_and_stops_the_next_level(world):
    _policy(world, level3_after_minutes="10")
    handoff = _escalate(world)
    assert await _run_timers(world, handoff.response_due_at) == 1
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    await _run_timers(world, handoff.response_due_at + timedelta(minutes=10))
    assert len(_bells(world, handoff.id, "Unclaimed")) == 2  # level 2 only
    assert _fresh(world, handoff.id).escalation_level == 2


async def test_a_level_taken_before_the_claim_committed_fires_nothing_after_it(world):
    # The worker has taken the job (it was due), then the claim commits, then the handler runs.
    handoff = _escalate(world)
    world.db.commit()
    with Session(world.db.get_bind()) as db:
        taken = outbox.take_due(db, worker_id="w", now=handoff.response_due_at, kinds=TIMER)
    assert len(taken) == 1
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    world.db.commit()  # the claim's read-back ends here (on SQLite it holds the write lock)
    with (
        Session(world.db.get_bind()) as db,
        pytest.raises(outbox.JobSkipped, match="Picked up before level 2"),
    ):
        clock.fire(db, taken[0])
    assert _bells(world, handoff.id, "Unclaimed") == []


def _claim_and_fire_at_once(world: World, handoff: SessionHandoff) -> tuple[object, object]:
    """Riley's claim and the level-2 handler, released at the same moment on two threads."""
    engine = world.db.get_bind()
    riley = world.actor("riley")
    # No transaction of the test's own stays open (on SQLite it would hold the write lock).
    world.db.commit()
    with Session(engine) as db:
        row = db.exec(select(OutboxJob).where(OutboxJob.dedupe_key == clock.level_key(handoff.id, 2))).one()
        job = outbox.JobView.of(row)
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def claim():
        start.wait()
        with Session(engine, expire_on_commit=False) as db:
            results["claim"] = claim_handoff(db=db, actor=riley, handoff_id=handoff.id)

    def fire():
        start.wait()
        with Session(engine) as db:
            try:
                results["fire"] = clock.fire(db, job)
            except outbox.JobSkipped as skipped:
                results["fire"] = skipped

    threads = [threading.Thread(target=claim), threading.Thread(target=fire)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results["claim"], results["fire"]


def test_a_claim_and_its_level_at_the_same_moment_never_notify_after_the_claim(world):
    """Claim and firing race, many times: either the level fired first (then the claim came
    after it), or the claim won and nobody was told. Never a notification after the claim."""
    outcomes = set()
    for _ in range(12):
        handoff = _escalate(world)
        claimed, fired = _claim_and_fire_at_once(world, handoff)
        assert claimed.newly_claimed
        after = _fresh(world, handoff.id)
        bells = _bells(world, handoff.id, "Unclaimed")
        if isinstance(fired, outbox.JobSkipped):
            assert "Picked up before level 2" in str(fired)
            assert bells == [] and after.escalation_level == 1
            outcomes.add("claim first")
        else:
            assert len(bells) == 2 and after.escalation_level == 2
            outcomes.add("level first")
    assert outcomes  # whichever order each round took, it was clean


async def test_two_workers_racing_fire_a_level_once(world):
    handoff = _escalate(world)
    world.db.commit()
    engine = world.db.get_bind()
    at = Clock(handoff.response_due_at + timedelta(seconds=1))
    first, second = worker(engine, clock=at, kinds=TIMER), worker(engine, clock=at, kinds=TIMER)
    ran = await asyncio.gather(first.drain(), second.drain())
    assert sum(ran) == 1
    assert len(_bells(world, handoff.id, "Unclaimed")) == 2


def test_a_second_run_of_a_fired_level_is_a_no_op(world):
    # Its lease ran out mid-run and another worker took it again: the level does not fire twice.
    handoff = _escalate(world)
    world.db.commit()
    engine = world.db.get_bind()
    with Session(engine) as db:
        taken = outbox.take_due(db, worker_id="w1", now=handoff.response_due_at, kinds=TIMER)[0]
    with Session(engine) as db:
        assert clock.fire(db, taken) == "level 2: 2 told"
    with Session(engine) as db, pytest.raises(outbox.JobSkipped, match="already fired"):
        clock.fire(db, taken)
    assert len(_bells(world, handoff.id, "Unclaimed")) == 2


async def test_a_timer_due_while_no_worker_ran_fires_once_at_start_up(world):
    handoff = _escalate(world)
    # The backend was down for two hours past the target; a fresh worker starts.
    restart = handoff.response_due_at + timedelta(hours=2)
    assert await _run_timers(world, restart) == 1
    # It says how long it was unclaimed at its instant.
    assert _bells(world, handoff.id, "Unclaimed") == [
        ("riley", "Unclaimed for 30 min: Mail flow stopped"),
        ("morgan", "Unclaimed for 30 min: Mail flow stopped"),
    ]
    # Another restart: nothing fires again.
    assert await _run_timers(world, restart + timedelta(minutes=1)) == 0
    assert len(_bells(world, handoff.id, "Unclaimed")) == 2


async def test_a_level_tells_the_psa_ticket_and_the_chat_channel(world):
    world.db.add(
        AccountIntegration(
            account_id=world.northwind.id,
            slack_webhook_url="https://hooks.slack.com/services/T0/B0/x",
            psa_type="halopsa",
            psa_url="https://psa.example",
            psa_client_id="c",
        )
    )
    world.db.commit()
    actor = world.actor("alex")
    s = create_session(db=world.db, actor=actor, problem_summary="Server down", psa_ticket_id="4711")
    add_step(db=world.db, actor=actor, session_id=s.id, tried="Pinged it", result="No answer")
    handoff = create_handoff(db=world.db, actor=actor, session_id=s.id, intent="escalate")
    await _run_timers(world, handoff.response_due_at)
    world.db.expire_all()
    jobs = world.db.exec(select(OutboxJob).where(OutboxJob.handoff_id == handoff.id)).all()
    notes = [j for j in jobs if j.kind == JobKind.PSA_NOTE and j.payload.get("note") == "clock"]
    assert len(notes) == 1
    assert notes[0].payload["text_note"].startswith("Unclaimed for 30 min: re-escalated to level 2 (")
    chats = [j for j in jobs if j.kind == JobKind.WEBHOOK and j.payload.get("title")]
    assert [(j.recipient, j.payload["title"]) for j in chats] == [
        ("slack", "Unclaimed for 30 min: Server down")
    ]


# --------------------------------------------------------------------------- policy


async def test_policy_changes_apply_to_new_escalations_only(world):
    before = _escalate(world)
    _policy(world, normal_minutes="10")
    after = _escalate(world)
    assert before.clock["target_minutes"] == 30 and after.clock["target_minutes"] == 10
    assert after.response_due_at == after.created_at + timedelta(minutes=10)
    # The open one keeps its instant: nothing fires for it at the new, shorter target.
    await _run_timers(world, before.created_at + timedelta(minutes=11))
    assert _bells(world, before.id, "Unclaimed") == []
    assert len(_bells(world, after.id, "Unclaimed")) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("urgent_minutes", "0", "Urgent target must be between 1 and 10,080 minutes"),
        ("high_minutes", "10081", "High target must be between 1 and 10,080 minutes"),
        ("normal_minutes", "ten", "Normal target must be a whole number of minutes"),
        ("low_minutes", "", "Low target is required"),
        ("normal_minutes", "-5", "whole number"),
        ("level3_after_minutes", "0", "Level 3 delay must be between"),
        ("stall_minutes", "99999", "Stalled after must be between"),
        ("time_zone", "Mars/Olympus", "is not known"),
        ("time_zone", "", "Time zone is required"),
        ("level2_user_ids", ["abc"], "choose teammates from the list"),
    ],
)
def test_bad_policy_input_is_refused_and_changes_nothing(world, field, value, message):
    _policy(world, normal_minutes="20")
    with pytest.raises(InvalidInput, match=message):
        _policy(world, **{field: value})
    world.db.expire_all()
    row = world.db.exec(select(EscalationPolicy)).one()
    assert row.normal_minutes == 20 and row.time_zone == "UTC"


def test_policy_people_must_be_active_workers_of_the_account(world):
    for outsider in ("casey", "val"):  # another account's engineer; a viewer
        with pytest.raises(InvalidInput, match="not an active owner, admin or engineer"):
            _policy(world, level2_user_ids=[str(world.users[outsider].id)])
    with pytest.raises(InvalidInput, match="Set the level 3 delay"):
        _policy(world, level3_user_ids=[str(world.users["sam"].id)])
    assert world.db.exec(select(EscalationPolicy)).first() is None


def test_only_owners_and_admins_read_or_change_the_policy(world):
    for who in ("alex", "val"):
        with pytest.raises(PermissionDenied, match="Only owners and admins"):
            clock.read_policy(db=world.db, actor=world.actor(who))
        with pytest.raises(PermissionDenied):
            clock.save_policy(
                db=world.db,
                actor=world.actor(who),
                time_zone="UTC",
                urgent_minutes="1",
                high_minutes="1",
                normal_minutes="1",
                low_minutes="1",
            )
    assert world.db.exec(select(EscalationPolicy)).first() is None
    view = clock.read_policy(db=world.db, actor=world.actor("riley"))
    assert (view.urgent_minutes, view.normal_minutes, view.stall_minutes) == (5, 30, 60)
    assert "Casey Diaz" not in {name for _, name in view.people}
    assert "Val Ortiz" not in {name for _, name in view.people}
    # Each account has its own policy.
    _policy(world, normal_minutes="7")
    jordan = clock.read_policy(db=world.db, actor=world.actor("jordan"))
    assert jordan.normal_minutes == 30


# --------------------------------------------------------------------------- claimed but stalled


async def test_a_stalled_claim_reminds_its_assignee_then_the_level_2_set(world):
    _policy(world, stall_minutes="60")
    handoff = _escalate(world)
    claimed = claim_handoff(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id).handoff
    at = claimed.claimed_at
    assert await _run_timers(world, at + timedelta(minutes=59)) == 0
    assert await _run_timers(world, at + timedelta(minutes=60)) == 1
    assert _bells(world, handoff.id, "No progress") == [("sam", "No progress for 60 min: Mail flow stopped")]
    assert await _run_timers(world, at + timedelta(minutes=119)) == 0
    assert await _run_timers(world, at + timedelta(minutes=120)) == 1
    assert [who for who, _ in _bells(world, handoff.id, "No progress")] == ["sam", "riley", "morgan"]


async def test_a_step_moves_the_stall_reminder_and_resolving_ends_it(world):
    _policy(world, stall_minutes="60")
    handoff = _escalate(world)
    claimed = claim_handoff(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id).handoff
    at = claimed.claimed_at
    add_step(
        db=world.db, actor=world.actor("sam"), session_id=handoff.session_id, tried="Checked MX", result="OK"
    )
    # The step was made 30 minutes into the claim.
    world.db.exec(
        update(SessionStep)
        .where(col(SessionStep.session_id) == handoff.session_id, col(SessionStep.tried) == "Checked MX")
        .values(created_at=at + timedelta(minutes=30))
    )
    world.db.commit()
    assert await _run_timers(world, at + timedelta(minutes=60)) == 1  # ran, and moved itself
    assert _bells(world, handoff.id, "No progress") == []
    (stall,) = [t for t in _timers(world, handoff.id) if t.payload["timer"] == "stall"]
    assert stall.status == "pending" and stall.run_at == at + timedelta(minutes=90)

    resolve_session(db=world.db, actor=world.actor("sam"), session_id=handoff.session_id)
    assert await _run_timers(world, at + timedelta(minutes=90)) == 1
    assert _bells(world, handoff.id, "No progress") == []
    assert [t.status for t in _timers(world, handoff.id) if t.payload["timer"] == "stall"] == ["skipped"]


# --------------------------------------------------------------------------- snooze


def test_wake_me_means_an_instant_in_the_accounts_time_zone():
    now = datetime(2026, 12, 2, 22, 30, tzinfo=UTC)  # 17:30 in New York
    ny = "America/New_York"
    assert clock.wake_instant("1h", None, zone=ny, now=now) == now + timedelta(hours=1)
    # Tomorrow 9:00 in New York (EST, UTC-5) is 14:00 UTC on 3 December.
    assert clock.wake_instant("tomorrow", None, zone=ny, now=now) == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    # 02:00 UTC on 3 December is still 2 December in New York: tomorrow is the 3rd there.
    late = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    assert clock.wake_instant("tomorrow", None, zone=ny, now=late) == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert clock.wake_instant("at", "2026-12-24T09:00", zone=ny, now=now) == datetime(
        2026, 12, 24, 14, 0, tzinfo=UTC
    )
    assert clock.wake_instant("none", "", zone=ny, now=now) is None
    assert clock.wake_instant("", "", zone=ny, now=now) is None


@pytest.mark.parametrize(
    ("wake", "at", "message"),
    [
        ("at", "2026-12-01T09:00", "must be in the future"),
        ("at", "2027-06-01T09:00", "within 90 days"),
        ("at", "next tuesday", "must be a date and time"),
        ("at", "", "Choose the date and time"),
        ("later", "", "Wake me must be one of"),
        ("at", "2026-12-24T09:00\x00", "control character"),
    ],
)
def test_a_bad_wake_up_is_refused(wake, at, message):
    with pytest.raises(InvalidInput, match=message):
        clock.wake_instant(wake, at, zone="UTC", now=datetime(2026, 12, 2, 12, 0, tzinfo=UTC))


def test_a_bad_wake_up_parks_nothing(world):
    sid = world.new_session()
    with pytest.raises(InvalidInput):
        clock.park(db=world.db, actor=world.actor("alex"), session_id=sid, wake="at", wake_at="yesterday")
    world.db.expire_all()
    assert world.db.exec(select(SessionHandoff).where(SessionHandoff.session_id == sid)).first() is None


async def test_a_snoozed_park_wakes_its_owner_and_comes_back_to_the_top_of_the_queue(world):
    sid = world.new_session(summary="Waiting on the customer")
    park = clock.park(
        db=world.db, actor=world.actor("alex"), session_id=sid, notes="Back Thursday", wake="1h"
    )
    wake_at = park.wake_at
    assert wake_at is not None and _timers(world, park.id)[0].run_at == wake_at
    _escalate(world, owner="sam", priority="low")  # a newer card above it (due in 2 hours)
    assert get_queue(db=world.db, actor=world.actor("riley"))[0].id != str(park.id)

    assert await _run_timers(world, wake_at - timedelta(seconds=1)) == 0
    assert await _run_timers(world, wake_at) == 1
    assert _bells(world, park.id) == [("alex", "Parked session is back: Waiting on the customer")]
    woke = _fresh(world, park.id)
    assert woke.woke_at == wake_at and woke.wake_at is None
    assert clock.snooze_of(world.db, sid).woke_at == wake_at
    queue = get_queue(db=world.db, actor=world.actor("riley"))
    assert queue[0].id == str(park.id) and card_view(queue[0])["woke_at"] == wake_at.isoformat()
    assert await _run_timers(world, wake_at + timedelta(minutes=30)) == 0
    assert len(_bells(world, park.id)) == 1


async def test_un_snooze_and_a_new_wake_up_replace_the_old_one(world):
    sid = world.new_session()
    park = clock.park(db=world.db, actor=world.actor("alex"), session_id=sid, wake="1h")
    first = park.wake_at
    clock.unsnooze(db=world.db, actor=world.actor("alex"), session_id=sid)
    assert _fresh(world, park.id).wake_at is None
    assert [t.status for t in _timers(world, park.id)] == ["skipped"]
    moved = clock.snooze(
        db=world.db,
        actor=world.actor("alex"),
        session_id=sid,
        wake="at",
        wake_at=(first + timedelta(hours=2)).isoformat(),
    )
    assert moved.wake_at == first + timedelta(hours=2)
    assert await _run_timers(world, first + timedelta(minutes=1)) == 0
    assert _bells(world, park.id) == []
    assert await _run_timers(world, moved.wake_at) == 1
    assert len(_bells(world, park.id)) == 1


async def test_a_park_picked_up_before_its_wake_up_does_not_wake(world):
    sid = world.new_session()
    park = clock.park(db=world.db, actor=world.actor("alex"), session_id=sid, wake="1h")
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=park.id)
    assert await _run_timers(world, park.wake_at) == 1
    assert _bells(world, park.id) == []


def test_only_the_owner_snoozes_a_parked_session(world):
    sid = world.new_session()
    clock.park(db=world.db, actor=world.actor("alex"), session_id=sid)
    for who in ("sam", "casey", "riley"):
        with pytest.raises(NotFound):
            clock.snooze(db=world.db, actor=world.actor(who), session_id=sid, wake="1h")
    escalated = _escalate(world)
    with pytest.raises(InvalidInput, match="Only a parked session"):
        clock.snooze(db=world.db, actor=world.actor("alex"), session_id=escalated.session_id, wake="1h")


def test_claim_race_loser_still_told_who_won(world):
    # The clock changes nothing about the claim's own contract.
    handoff = _escalate(world)
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    with pytest.raises(AlreadyClaimed):
        claim_handoff(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id)
    stall = [t for t in _timers(world, handoff.id) if t.payload["timer"] == "stall"]
    assert len(stall) == 1 and stall[0].status == JobStatus.PENDING


# --------------------------------------------------------------------------- analytics and history


def test_attainment_re_escalations_and_the_breached_filter(world):
    from escalation_app.domain.clock_analytics import response_analytics
    from escalation_app.domain.history import HistoryFilters, list_history, parse_filters

    urgent_met = _escalate(world, priority="urgent")
    urgent_late = _escalate(world, priority="urgent")
    normal_waiting = _escalate(world, priority="normal")
    normal_fresh = _escalate(world, priority="normal")
    world.db.commit()
    t = normal_fresh.created_at
    # Picked up in 3 minutes (target 5); in 9 minutes; one still waiting 40 minutes in, re-escalated.
    edits = {
        urgent_met.id: {"claimed_at": urgent_met.created_at + timedelta(minutes=3)},
        urgent_late.id: {"claimed_at": urgent_late.created_at + timedelta(minutes=9)},
        normal_waiting.id: {
            "created_at": t - timedelta(minutes=40),
            "response_due_at": t - timedelta(minutes=10),
            "re_escalated_at": t - timedelta(minutes=10),
            "escalation_level": 2,
        },
    }
    for handoff_id, values in edits.items():
        if "claimed_at" in values:
            values["claimed_by_id"] = world.users["riley"].id
        world.db.exec(update(SessionHandoff).where(col(SessionHandoff.id) == handoff_id).values(**values))
    world.db.commit()
    now = t + timedelta(minutes=1)

    result = response_analytics(db=world.db, actor=world.actor("morgan"), now=now)
    this_week = result.per_week[-1]
    # Decided: urgent met, urgent breached, normal breached (waiting past its target); the
    # fresh one is still within its target. The demo data's escalations count too.
    assert this_week["met"] >= 1 and this_week["breached"] >= 2
    assert this_week["re_escalations"] >= 1
    by_priority = {row["priority"]: row for row in result.per_priority}
    urgent = by_priority["urgent"]
    assert urgent["target_minutes"] == 5 and urgent["met"] == 1 and urgent["breached"] == 1
    assert urgent["attainment_pct"] == 50.0 and urgent["claim_p50_minutes"] == 6.0
    assert result.breached_open >= 1
    with pytest.raises(PermissionDenied):
        response_analytics(db=world.db, actor=world.actor("alex"), now=now)

    breached = list_history(
        db=world.db, actor=world.actor("morgan"), filters=parse_filters({"claimed": "breached"})
    )
    ids = {row.handoff_id for row in breached.rows}
    assert {str(urgent_late.id), str(normal_waiting.id)} <= ids
    assert str(urgent_met.id) not in ids and str(normal_fresh.id) not in ids
    with pytest.raises(InvalidInput, match="claimed, unclaimed, breached"):
        parse_filters({"claimed": "late"})
    assert HistoryFilters(claimed="breached").claimed == "breached"


# --------------------------------------------------------------------------- demo data


def test_the_demo_has_breached_and_snoozed_items_once(world):
    from escalation_app.domain.demo_clock import PARKED_SUMMARY, WOKEN_SUMMARY, load_demo_clock
    from escalation_app.domain.demo_history import load_demo_history

    load_demo_history(world.db)
    assert load_demo_clock(world.db) == 2
    assert load_demo_clock(world.db) == 0
    world.db.expire_all()
    cards = [card_view(c) for c in get_queue(db=world.db, actor=world.actor("riley"))]
    # A park that woke up is on top; waiting escalations past their target are re-escalated.
    assert cards[0]["summary"] == WOKEN_SUMMARY and cards[0]["woke_at"] != ""
    breached = [c for c in cards if c["level_label"] == "Re-escalated to level 2"]
    assert len(breached) >= 2 and all(c["due_at"] for c in breached)
    parked = next(c for c in cards if c["summary"] == PARKED_SUMMARY)
    park = _fresh(world, uuid.UUID(parked["id"]))
    assert park.wake_at is not None and park.wake_at > park.created_at
    assert [t.status for t in _timers(world, park.id)] == ["pending"]
