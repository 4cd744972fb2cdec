"""After the pick-up: the assignee works the case to an end (domain, both databases).

Every transition, who may do it (owner, assignee, other engineer, admin, viewer,
another account), bad input that changes nothing, and two people acting on one case
at the same moment: one wins, the other is told what happened, nothing half-done.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain import case_events
from escalation_app.domain.casework import hand_back, reassign, release, resolve_case
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import (
    claim_handoff,
    create_handoff,
    get_handoff_detail,
    get_queue,
    next_best_card,
)
from escalation_app.domain.models import (
    CaseEvent,
    Notification,
    OutboxJob,
    SessionHandoff,
    SessionStep,
    SupportSession,
)
from escalation_app.domain.support_sessions import add_step, list_own_sessions
from tests.factories import World


@pytest.fixture
def world(db) -> World:
    return World(db)


def _claimed(world: World, claimer: str = "riley", **kwargs) -> tuple[int, SessionHandoff]:
    """Alex escalates a new session; `claimer` picks it up."""
    sid = world.new_session()
    handoff = create_handoff(
        db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate", notes="Stuck", **kwargs
    )
    claim_handoff(db=world.db, actor=world.actor(claimer), handoff_id=handoff.id)
    return sid, handoff


def _session(world: World, sid: int) -> SupportSession:
    world.db.expire_all()
    return world.db.get(SupportSession, sid)


def _handoff(world: World, handoff_id) -> SessionHandoff:
    world.db.expire_all()
    return world.db.get(SessionHandoff, handoff_id)


def _events(world: World, sid: int) -> list[str]:
    world.db.expire_all()
    return list(
        world.db.exec(
            select(CaseEvent.kind).where(CaseEvent.session_id == sid).order_by(col(CaseEvent.id))
        ).all()
    )


def _jobs(world: World, **where) -> list[OutboxJob]:
    world.db.expire_all()
    query = select(OutboxJob).order_by(col(OutboxJob.id))
    for name, value in where.items():
        query = query.where(getattr(OutboxJob, name) == value)
    return list(world.db.exec(query).all())


def _bells(world: World, user: str) -> list[Notification]:
    world.db.expire_all()
    return list(
        world.db.exec(
            select(Notification)
            .where(Notification.user_id == world.users[user].id)
            .order_by(col(Notification.id))
        ).all()
    )


def _snapshot_state(world: World, sid: int) -> tuple:
    """Everything a refused transition must leave as it was."""
    world.db.expire_all()
    s = world.db.get(SupportSession, sid)
    handoffs = world.db.exec(
        select(SessionHandoff.id, SessionHandoff.claimed_by_id, SessionHandoff.outcome)
        .where(SessionHandoff.session_id == sid)
        .order_by(col(SessionHandoff.created_at))
    ).all()
    counts = (
        len(world.db.exec(select(CaseEvent.id)).all()),
        len(world.db.exec(select(Notification.id)).all()),
        len(world.db.exec(select(OutboxJob.id)).all()),
    )
    return (s.status, s.assignee_id, s.resolution, s.root_cause, s.handoff_count, tuple(handoffs), counts)


# ------------------------------------------------------------------ the claim


def test_claim_makes_the_claimer_assignee_and_the_owner_keeps_reading(world):
    sid, handoff = _claimed(world)
    riley, alex = world.users["riley"], world.actor("alex")
    assert _session(world, sid).assignee_id == riley.id
    assert _events(world, sid) == ["claimed"]
    # The assignee works it: adds a step, sees it among their sessions.
    add_step(db=world.db, actor=world.actor("riley"), session_id=sid, tried="Flushed DNS", result="No change")
    assert sid in [s.id for s in list_own_sessions(db=world.db, actor=world.actor("riley"))]
    # The owner keeps reading it (and may still log a step).
    detail = get_handoff_detail(db=world.db, actor=alex, handoff_id=handoff.id)
    assert detail.assignee_name == "Riley Chen" and detail.owner_name == "Alex Kim"
    assert [s.tried for s in detail.steps][-1] == "Flushed DNS"
    add_step(db=world.db, actor=alex, session_id=sid, tried="Customer rebooted")
    # Anyone else may not.
    for other in ("sam", "morgan", "casey"):
        with pytest.raises(NotFound):
            add_step(db=world.db, actor=world.actor(other), session_id=sid, tried="sneaky")


def test_owner_cannot_pick_up_an_escalation_of_their_own_session(world):
    sid, _ = _claimed(world)
    onward = create_handoff(db=world.db, actor=world.actor("riley"), session_id=sid, intent="escalate")
    with pytest.raises(PermissionDenied, match="your own session"):
        claim_handoff(db=world.db, actor=world.actor("alex"), handoff_id=onward.id)
    assert _handoff(world, onward.id).claimed_by_id is None


# ------------------------------------------------------------------ resolve


def test_assignee_resolves_with_the_fix_and_the_escalator_is_told(world):
    sid, handoff = _claimed(world)
    resolve_case(
        db=world.db,
        actor=world.actor("riley"),
        session_id=sid,
        fix="  Re-issued the SSL certificate on the connector  ",
        root_cause="configuration",
    )
    s = _session(world, sid)
    assert (s.status, s.assignee_id, s.root_cause) == ("resolved", None, "configuration")
    assert s.resolution == "Re-issued the SSL certificate on the connector"
    assert s.resolved_by_id == world.users["riley"].id and s.resolved_at is not None
    h = _handoff(world, handoff.id)
    assert h.outcome == "resolved" and h.outcome_at is not None
    assert _events(world, sid) == ["claimed", "resolved"]
    bell = _bells(world, "alex")[-1]
    assert bell.title == "Resolved: Mail flow stopped"
    assert "Re-issued the SSL certificate" in bell.body and "Configuration" in bell.body
    emails = [j for j in _jobs(world, kind="email") if j.payload.get("message") == "resolved"]
    assert [j.recipient for j in emails] == [world.users["alex"].email]
    live = [j.payload for j in _jobs(world, kind="live")]
    assert {"event": "updated", "handoff_id": str(handoff.id)} in live
    assert any(p["event"] == "notified" and p["user_ids"] == [world.users["alex"].id] for p in live)
    timeline = case_events.timeline(world.db, s)
    assert timeline[-1].text == "Riley Chen resolved it (Configuration)"


def test_owner_may_resolve_a_waiting_escalation_which_leaves_the_queue(world):
    sid = world.new_session()
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    resolve_case(
        db=world.db, actor=world.actor("alex"), session_id=sid, fix="Customer fixed it", root_cause="user"
    )
    assert _handoff(world, handoff.id).outcome == "resolved"
    assert str(handoff.id) not in [c.id for c in get_queue(db=world.db, actor=world.actor("riley"))]
    with pytest.raises(InvalidInput, match="ended"):
        claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    # Nobody else was told: the owner resolved it themselves.
    assert not [j for j in _jobs(world, kind="email") if j.payload.get("message") == "resolved"]


@pytest.mark.parametrize(
    ("actor", "error"),
    [
        ("sam", NotFound),
        ("morgan", PermissionDenied),
        ("val", PermissionDenied),
        ("casey", NotFound),
        ("jordan", NotFound),
    ],
)
def test_only_owner_or_assignee_resolves(world, actor, error):
    sid, _ = _claimed(world)
    before = _snapshot_state(world, sid)
    with pytest.raises(error):
        resolve_case(db=world.db, actor=world.actor(actor), session_id=sid, fix="x", root_cause="other")
    assert _snapshot_state(world, sid) == before


@pytest.mark.parametrize(
    ("fix", "cause", "message"),
    [
        ("", "other", "What fixed it is required."),
        ("   ", "other", "What fixed it is required."),
        ("x" * 2001, "other", "What fixed it must be at most 2,000 characters."),
        ("Patched", "gremlins", "Root cause must be one of:"),
        ("Patched", "", "Root cause must be one of:"),
    ],
)
def test_resolve_bad_input_changes_nothing(world, fix, cause, message):
    sid, _ = _claimed(world)
    before = _snapshot_state(world, sid)
    with pytest.raises(InvalidInput) as err:
        resolve_case(db=world.db, actor=world.actor("riley"), session_id=sid, fix=fix, root_cause=cause)
    assert err.value.message.startswith(message)
    assert _snapshot_state(world, sid) == before


def test_resolve_bad_session_ids_are_not_found(world):
    for bad in ("abc", 0, -1, 2**40, 999999):
        with pytest.raises(NotFound):
            resolve_case(db=world.db, actor=world.actor("alex"), session_id=bad, fix="x", root_cause="other")


def test_a_second_resolve_is_told_who_resolved_it(world):
    sid, _ = _claimed(world)
    resolve_case(
        db=world.db, actor=world.actor("riley"), session_id=sid, fix="Patched", root_cause="software"
    )
    before = _snapshot_state(world, sid)
    with pytest.raises(InvalidInput) as err:
        resolve_case(db=world.db, actor=world.actor("alex"), session_id=sid, fix="Me too", root_cause="other")
    assert (
        err.value.message == "This session is already resolved (Riley Chen resolved it). Nothing was changed."
    )
    assert _snapshot_state(world, sid) == before


# ------------------------------------------------------------------ hand back


def test_hand_back_returns_the_session_to_its_owner_with_guidance(world):
    sid, handoff = _claimed(world)
    handback = hand_back(
        db=world.db, actor=world.actor("riley"), session_id=sid, guidance="Check the SPF record first"
    )
    s = _session(world, sid)
    assert (s.status, s.assignee_id) == ("active", None)
    assert _handoff(world, handoff.id).outcome == "handed_back"
    hb = _handoff(world, handback.id)
    assert hb.intent == "handback" and hb.engineer_notes == "Check the SPF record first"
    assert hb.claimed_by_id == world.users["alex"].id and hb.target_user_id == world.users["alex"].id
    # Never a queue card.
    assert str(hb.id) not in [c.id for c in get_queue(db=world.db, actor=world.actor("sam"))]
    guidance = case_events.current_guidance(world.db, s)
    assert guidance is not None and guidance.by_name == "Riley Chen"
    assert guidance.text == "Check the SPF record first"
    assert _bells(world, "alex")[-1].title == "Handed back to you: Mail flow stopped"
    emails = [j for j in _jobs(world, kind="email") if j.payload.get("message") == "handed_back"]
    assert [j.recipient for j in emails] == [world.users["alex"].email]
    # The owner works it again, alone: Riley can no longer add steps.
    add_step(db=world.db, actor=world.actor("alex"), session_id=sid, tried="SPF fixed")
    with pytest.raises(NotFound):
        add_step(db=world.db, actor=world.actor("riley"), session_id=sid, tried="late")
    # Escalating again clears the guidance.
    create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    assert case_events.current_guidance(world.db, _session(world, sid)) is None


@pytest.mark.parametrize(
    ("actor", "error"),
    [
        ("alex", PermissionDenied),
        ("sam", PermissionDenied),
        ("morgan", PermissionDenied),
        ("val", PermissionDenied),
        ("casey", NotFound),
    ],
)
def test_only_the_assignee_hands_back(world, actor, error):
    sid, _ = _claimed(world)
    before = _snapshot_state(world, sid)
    with pytest.raises(error):
        hand_back(db=world.db, actor=world.actor(actor), session_id=sid, guidance="Try this")
    assert _snapshot_state(world, sid) == before


@pytest.mark.parametrize(
    ("guidance", "message"), [("", "Guidance is required."), ("g" * 5001, "Guidance must be at most 5,000")]
)
def test_hand_back_bad_input_changes_nothing(world, guidance, message):
    sid, _ = _claimed(world)
    before = _snapshot_state(world, sid)
    with pytest.raises(InvalidInput, match=message):
        hand_back(db=world.db, actor=world.actor("riley"), session_id=sid, guidance=guidance)
    assert _snapshot_state(world, sid) == before


# ------------------------------------------------------------------ escalate onward


def test_escalate_onward_and_the_chain(world):
    sid, first = _claimed(world)
    riley = world.actor("riley")
    add_step(
        db=world.db, actor=riley, session_id=sid, tried="Rebuilt the mail profile", result="Still failing"
    )
    onward = create_handoff(
        db=world.db,
        actor=riley,
        session_id=sid,
        intent="escalate",
        notes="Needs Exchange admin",
        priority="high",
    )
    s = _session(world, sid)
    assert (s.status, s.assignee_id, s.owner_id) == ("escalated", None, world.users["alex"].id)
    assert _handoff(world, first.id).outcome == "escalated_on"
    new = _handoff(world, onward.id)
    assert new.handed_off_by_id == riley.id and new.outcome is None
    # The snapshot holds what both tried and what each said.
    assert [st["tried"] for st in new.snapshot["steps"]] == ["step 1", "step 2", "Rebuilt the mail profile"]
    assert [(e["by"], e["notes"]) for e in new.snapshot["earlier_handoffs"]] == [("Alex Kim", "Stuck")]
    assert str(onward.id) in [c.id for c in get_queue(db=world.db, actor=world.actor("morgan"))]
    claim_handoff(db=world.db, actor=world.actor("morgan"), handoff_id=onward.id)
    assert case_events.chain(world.db, _session(world, sid)) == ["Alex Kim", "Riley Chen", "Morgan Lee"]
    assert _events(world, sid) == ["claimed", "escalated_on", "claimed"]


def test_escalate_onward_rules(world):
    sid, _ = _claimed(world)
    riley, alex = world.actor("riley"), world.actor("alex")
    before = _snapshot_state(world, sid)
    with pytest.raises(InvalidInput, match="Riley Chen is working on this session"):
        create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate")
    with pytest.raises(InvalidInput, match="Only the session's owner can park"):
        create_handoff(db=world.db, actor=riley, session_id=sid, intent="park")
    with pytest.raises(InvalidInput, match="use Hand back"):
        create_handoff(
            db=world.db, actor=riley, session_id=sid, intent="escalate", target_user_id=world.users["alex"].id
        )
    with pytest.raises(InvalidInput, match="Intent must be one of: park, escalate."):
        create_handoff(db=world.db, actor=riley, session_id=sid, intent="handback")
    for other in ("sam", "casey"):
        with pytest.raises(NotFound):
            create_handoff(db=world.db, actor=world.actor(other), session_id=sid, intent="escalate")
    with pytest.raises(PermissionDenied):
        create_handoff(db=world.db, actor=world.actor("val"), session_id=sid, intent="escalate")
    assert _snapshot_state(world, sid) == before


def test_escalate_onward_to_a_named_teammate(world):
    sid, _ = _claimed(world)
    onward = create_handoff(
        db=world.db,
        actor=world.actor("riley"),
        session_id=sid,
        intent="escalate",
        target_user_id=world.users["morgan"].id,
    )
    assert _handoff(world, onward.id).target_user_id == world.users["morgan"].id
    assert _bells(world, "morgan")[-1].title.startswith("Escalated to you")


# ------------------------------------------------------------------ release


def test_release_puts_the_card_back_in_every_queue(world):
    sid, handoff = _claimed(world)
    release(db=world.db, actor=world.actor("riley"), session_id=sid, reason="Out sick this afternoon")
    s = _session(world, sid)
    assert (s.status, s.assignee_id) == ("escalated", None)
    h = _handoff(world, handoff.id)
    assert (h.claimed_by_id, h.claimed_at, h.outcome) == (None, None, None)
    assert str(handoff.id) in [c.id for c in get_queue(db=world.db, actor=world.actor("sam"))]
    assert _events(world, sid) == ["claimed", "released"]
    assert {"event": "updated", "handoff_id": str(handoff.id)} in [
        j.payload for j in _jobs(world, kind="live")
    ]
    # Someone picks it up again.
    claim_handoff(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id)
    assert _session(world, sid).assignee_id == world.users["sam"].id


@pytest.mark.parametrize(
    ("actor", "error"),
    [
        ("alex", PermissionDenied),
        ("sam", PermissionDenied),
        ("morgan", PermissionDenied),
        ("val", PermissionDenied),
        ("jordan", NotFound),
    ],
)
def test_only_the_assignee_releases(world, actor, error):
    sid, _ = _claimed(world)
    before = _snapshot_state(world, sid)
    with pytest.raises(error):
        release(db=world.db, actor=world.actor(actor), session_id=sid, reason="no")
    assert _snapshot_state(world, sid) == before


def test_release_needs_a_reason(world):
    sid, _ = _claimed(world)
    before = _snapshot_state(world, sid)
    for reason, message in (("", "Reason is required."), ("r" * 2001, "Reason must be at most 2,000")):
        with pytest.raises(InvalidInput, match=message):
            release(db=world.db, actor=world.actor("riley"), session_id=sid, reason=reason)
    assert _snapshot_state(world, sid) == before


# ------------------------------------------------------------------ reassign


def test_admin_reassigns_and_the_new_assignee_is_told(world):
    sid, handoff = _claimed(world, claimer="sam")
    reassign(
        db=world.db,
        actor=world.actor("riley"),
        session_id=sid,
        to_user_id=world.users["morgan"].id,
        note="Exchange",
    )
    s = _session(world, sid)
    assert s.assignee_id == world.users["morgan"].id
    assert _handoff(world, handoff.id).claimed_by_id == world.users["morgan"].id
    assert _bells(world, "morgan")[-1].title == "Assigned to you: Mail flow stopped"
    emails = [j for j in _jobs(world, kind="email") if j.payload.get("message") == "reassigned"]
    assert [j.recipient for j in emails] == [world.users["morgan"].email]
    # The new assignee works it; the old one no longer can.
    add_step(db=world.db, actor=world.actor("morgan"), session_id=sid, tried="Checked connectors")
    with pytest.raises(
        InvalidInput, match="Riley Chen reassigned it to Morgan Lee, so you cannot hand it back"
    ):
        hand_back(db=world.db, actor=world.actor("sam"), session_id=sid, guidance="too late")
    assert case_events.chain(world.db, s) == ["Alex Kim", "Sam Patel", "Morgan Lee"]


@pytest.mark.parametrize(
    ("actor", "target", "error", "message"),
    [
        ("sam", "morgan", PermissionDenied, "Only account owners and admins"),
        ("val", "morgan", PermissionDenied, "Only account owners and admins"),
        ("jordan", "morgan", NotFound, "Session not found."),
        ("morgan", "val", InvalidInput, "cannot take escalations"),
        ("morgan", "casey", InvalidInput, "cannot take escalations"),
        ("morgan", "alex", InvalidInput, "owns this session"),
        ("morgan", "sam", InvalidInput, "already working on it"),
    ],
)
def test_reassign_rules(world, actor, target, error, message):
    sid, _ = _claimed(world, claimer="sam")
    before = _snapshot_state(world, sid)
    with pytest.raises(error, match=message):
        reassign(db=world.db, actor=world.actor(actor), session_id=sid, to_user_id=world.users[target].id)
    assert _snapshot_state(world, sid) == before


def test_reassign_needs_a_claimed_case_and_a_teammate(world):
    sid = world.new_session()
    create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    with pytest.raises(InvalidInput, match="Nobody has picked this session up"):
        reassign(db=world.db, actor=world.actor("morgan"), session_id=sid, to_user_id=world.users["sam"].id)
    for bad in ("", "abc", 2**40):
        with pytest.raises(InvalidInput):
            reassign(db=world.db, actor=world.actor("morgan"), session_id=sid, to_user_id=bad)


# ------------------------------------------------------------------ the race loser's next card


def test_next_best_card_is_highest_priority_then_oldest_never_own(world):
    # Only this test's cards wait (the demo's own escalations have ended).
    world.db.exec(update(SessionHandoff).values(outcome="resolved"))
    world.db.commit()
    alex, sam = world.actor("alex"), world.actor("sam")
    made = {}
    for owner, priority, summary in [
        ("alex", "high", "older high"),
        ("sam", "urgent", "sam's urgent"),
        ("alex", "high", "newer high"),
        ("alex", "low", "low"),
    ]:
        sid = world.new_session(owner=owner, summary=summary, steps=0)
        made[summary] = create_handoff(
            db=world.db,
            actor=alex if owner == "alex" else sam,
            session_id=sid,
            intent="escalate",
            priority=priority,
        )
    assert next_best_card(db=world.db, actor=sam).id == str(made["older high"].id)
    assert next_best_card(db=world.db, actor=world.actor("riley")).id == str(made["sam's urgent"].id)
    assert next_best_card(db=world.db, actor=world.actor("val")) is None
    assert next_best_card(db=world.db, actor=world.actor("casey")) is None


# ------------------------------------------------------------------ races

RACERS = 2
ROUNDS = 5


def _race(world: World, engine, *calls):
    """Run each call in its own thread and session, all released at once; their outcomes."""
    # The test's own session lets go of the database first (on SQLite every transaction
    # holds the write lock, reads included).
    world.db.rollback()
    barrier = threading.Barrier(len(calls))

    def run(call):
        with Session(engine, expire_on_commit=False) as db:
            barrier.wait()
            try:
                call(db=db)
                return "ok"
            except (InvalidInput, PermissionDenied) as refused:
                return refused.message

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_people_resolving_at_once(world, engine):
    for _ in range(ROUNDS):
        sid, _ = _claimed(world)
        alex, riley = world.actor("alex"), world.actor("riley")
        outcomes = _race(
            world,
            engine,
            partial(resolve_case, actor=alex, session_id=sid, fix="Alex's fix", root_cause="user"),
            partial(resolve_case, actor=riley, session_id=sid, fix="Riley's fix", root_cause="network"),
        )
        assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
        loser = next(o for o in outcomes if o != "ok")
        assert loser.startswith("This session is already resolved (")
        s = _session(world, sid)
        winner = "alex" if outcomes[0] == "ok" else "riley"
        assert s.resolved_by_id == world.users[winner].id
        assert s.resolution == ("Alex's fix" if winner == "alex" else "Riley's fix")
        assert _events(world, sid).count("resolved") == 1


def test_release_and_reassign_at_once(world, engine):
    for _ in range(ROUNDS):
        sid, handoff = _claimed(world, claimer="sam")
        sam, morgan = world.actor("sam"), world.actor("morgan")
        outcomes = _race(
            world,
            engine,
            partial(release, actor=sam, session_id=sid, reason="Going home"),
            partial(reassign, actor=morgan, session_id=sid, to_user_id=world.users["riley"].id),
        )
        assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
        s, h = _session(world, sid), _handoff(world, handoff.id)
        if outcomes[0] == "ok":  # released first: nothing left to reassign
            assert (s.status, s.assignee_id, h.claimed_by_id) == ("escalated", None, None)
            assert outcomes[1].startswith("Sam Patel released it to the queue, so you cannot reassign it")
            assert _events(world, sid) == ["claimed", "released"]
        else:  # reassigned first: no longer Sam's to release
            assert (s.status, s.assignee_id, h.claimed_by_id) == (
                "active",
                world.users["riley"].id,
                world.users["riley"].id,
            )
            assert outcomes[0].startswith("Morgan Lee reassigned it to Riley Chen, so you cannot release it")
            assert _events(world, sid) == ["claimed", "reassigned"]


def test_hand_back_and_escalate_onward_at_once(world, engine):
    for _ in range(ROUNDS):
        sid, handoff = _claimed(world)
        riley = world.actor("riley")
        handoffs_before = world.db.exec(
            select(SessionHandoff.id).where(SessionHandoff.session_id == sid)
        ).all()
        outcomes = _race(
            world,
            engine,
            partial(hand_back, actor=riley, session_id=sid, guidance="Over to you"),
            partial(create_handoff, actor=riley, session_id=sid, intent="escalate", notes="Onward"),
        )
        assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
        world.db.expire_all()
        new = world.db.exec(
            select(SessionHandoff).where(
                SessionHandoff.session_id == sid, col(SessionHandoff.id).not_in(handoffs_before)
            )
        ).all()
        assert len(new) == 1  # exactly one of the two wrote a handoff
        s = _session(world, sid)
        if outcomes[0] == "ok":
            assert new[0].intent == "handback" and s.status == "active" and s.assignee_id is None
            assert _handoff(world, handoff.id).outcome == "handed_back"
            assert _events(world, sid) == ["claimed", "handed_back"]
        else:
            assert new[0].intent == "escalate" and s.status == "escalated"
            assert _handoff(world, handoff.id).outcome == "escalated_on"
            assert _events(world, sid) == ["claimed", "escalated_on"]
            assert "hand it back" in outcomes[0]


def test_steps_are_numbered_once_when_owner_and_assignee_add_at_once(world, engine):
    sid, _ = _claimed(world)
    alex, riley = world.actor("alex"), world.actor("riley")
    outcomes = _race(
        world,
        engine,
        partial(add_step, actor=alex, session_id=sid, tried="Alex tried"),
        partial(add_step, actor=riley, session_id=sid, tried="Riley tried"),
    )
    assert outcomes == ["ok", "ok"]
    world.db.expire_all()
    positions = world.db.exec(select(SessionStep.position).where(SessionStep.session_id == sid)).all()
    assert sorted(positions) == [1, 2, 3, 4]
