"""create_handoff, get_queue and list_handoffs: every rule, on both databases."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from escalation_app.domain.casework import hand_back
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import (
    claim_handoff,
    create_handoff,
    get_handoff_detail,
    get_queue,
    list_handoffs,
)
from escalation_app.domain.models import Notification, SessionHandoff, SupportSession
from tests.factories import World, resolve_session


@pytest.fixture
def world(db) -> World:
    return World(db)


def _session(world, session_id) -> SupportSession:
    world.db.expire_all()
    return world.db.get(SupportSession, session_id)


def test_escalate_moves_session_and_snapshots_steps(world):
    sid = world.new_session(steps=3)
    handoff = create_handoff(
        db=world.db,
        actor=world.actor("alex"),
        session_id=sid,
        intent="escalate",
        notes="  Need DNS help  ",
        priority="HIGH",
    )
    support_session = _session(world, sid)
    assert support_session.status == "escalated"
    assert support_session.escalation_reason == "Need DNS help"
    assert support_session.handoff_count == 1
    assert handoff.priority == "high"
    assert handoff.ai_status == "pending"
    assert handoff.snapshot["step_count"] == 3
    assert handoff.snapshot["problem_summary"] == "Mail flow stopped"
    assert "1. step 1 → result 1" in handoff.snapshot["steps_text"]
    assert handoff.created_at.tzinfo is not None


def test_park_pauses_session_without_assessment_or_notifications(world):
    sid = world.new_session()
    handoff = create_handoff(
        db=world.db, actor=world.actor("alex"), session_id=sid, intent="park", notes="waiting"
    )
    assert _session(world, sid).status == "paused"
    assert handoff.ai_status == "not_needed"
    assert handoff.priority == "normal"
    notes = world.db.exec(select(Notification).where(Notification.handoff_id == handoff.id)).all()
    assert notes == []


def test_escalate_from_paused_is_allowed(world):
    sid = world.new_session()
    alex = world.actor("alex")
    create_handoff(db=world.db, actor=alex, session_id=sid, intent="park")
    create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate")
    support_session = _session(world, sid)
    assert support_session.status == "escalated"
    assert support_session.handoff_count == 2


def test_escalation_notifies_every_eligible_teammate_but_not_viewers_or_self(world):
    sid = world.new_session()
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    rows = world.db.exec(select(Notification).where(Notification.handoff_id == handoff.id)).all()
    recipients = {world.db.get(type(world.users["sam"]), n.user_id).email for n in rows}
    assert recipients == {"sam@northwind.example", "riley@northwind.example", "morgan@northwind.example"}
    assert all(n.title.startswith("New escalation: ") for n in rows)


def test_targeted_escalation_notifies_the_target_only(world):
    sid = world.new_session()
    riley = world.users["riley"]
    handoff = create_handoff(
        db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate", target_user_id=riley.id
    )
    rows = world.db.exec(select(Notification).where(Notification.handoff_id == handoff.id)).all()
    assert [n.user_id for n in rows] == [riley.id]
    assert rows[0].title.startswith("Escalated to you: ")
    assert _session(world, sid).escalated_to_id == riley.id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"intent": "shout"}, "Intent must be one of: park, escalate."),
        ({"intent": "escalate", "priority": "asap"}, "Priority must be one of: low, normal, high, urgent."),
        ({"intent": "escalate", "notes": "x" * 5001}, "Notes must be at most 5,000 characters."),
        ({"intent": "park", "target_user_id": "riley"}, "Only escalations can be sent to a teammate."),
        ({"intent": "escalate", "target_user_id": "abc"}, "Send to must be a teammate."),
    ],
)
def test_bad_input_changes_nothing(world, kwargs, message):
    sid = world.new_session()
    if kwargs.get("target_user_id") == "riley":
        kwargs["target_user_id"] = world.users["riley"].id
    with pytest.raises(InvalidInput) as err:
        create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, **kwargs)
    assert err.value.message == message
    world.db.rollback()
    assert _session(world, sid).status == "active"
    assert world.db.exec(select(SessionHandoff).where(SessionHandoff.session_id == sid)).all() == []


def test_notes_at_the_limit_are_accepted(world):
    sid = world.new_session()
    handoff = create_handoff(
        db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate", notes="n" * 5000
    )
    assert len(handoff.engineer_notes) == 5000


def test_cannot_escalate_to_yourself(world):
    sid = world.new_session()
    alex = world.actor("alex")
    with pytest.raises(InvalidInput, match="Cannot escalate a session to yourself. Use park instead."):
        create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate", target_user_id=alex.id)


@pytest.mark.parametrize("who", ["val", "casey", "deactivated", "deleted", "missing"])
def test_target_must_be_an_active_worker_of_the_account(world, who):
    from escalation_app.domain.types import utcnow

    sid = world.new_session()
    if who == "missing":
        target_id = 999_999
    elif who in ("deactivated", "deleted"):
        actor = world.add_user(f"{who}@northwind.example", who.title(), "engineer")
        user = world.users[who]
        if who == "deactivated":
            user.is_active = False
        else:
            user.deleted_at = utcnow()
        world.db.add(user)
        world.db.commit()
        target_id = actor.id
    else:
        target_id = world.users[who].id
    with pytest.raises(InvalidInput, match="That teammate was not found or cannot take escalations."):
        create_handoff(
            db=world.db,
            actor=world.actor("alex"),
            session_id=sid,
            intent="escalate",
            target_user_id=target_id,
        )
    world.db.rollback()
    assert _session(world, sid).status == "active"


def test_only_the_owner_can_hand_off_and_other_accounts_get_not_found(world):
    sid = world.new_session(owner="alex")
    with pytest.raises(NotFound, match="Session not found."):
        create_handoff(db=world.db, actor=world.actor("sam"), session_id=sid, intent="escalate")
    with pytest.raises(NotFound, match="Session not found."):
        create_handoff(db=world.db, actor=world.actor("casey"), session_id=sid, intent="escalate")
    with pytest.raises(NotFound):
        create_handoff(db=world.db, actor=world.actor("alex"), session_id=123_456, intent="escalate")


def test_viewer_cannot_hand_off(world):
    with pytest.raises(PermissionDenied):
        create_handoff(db=world.db, actor=world.actor("val"), session_id=1, intent="park")


@pytest.mark.parametrize("status", ["resolved", "escalated"])
def test_escalate_needs_an_active_or_paused_session(world, status):
    sid = world.new_session()
    alex = world.actor("alex")
    if status == "resolved":
        resolve_session(db=world.db, actor=alex, session_id=sid)
    else:
        create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate")
    with pytest.raises(InvalidInput):
        create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate")
    world.db.rollback()
    assert _session(world, sid).status == status


def test_queue_shows_unclaimed_handoffs_of_the_account_newest_first(world):
    alex, sam = world.actor("alex"), world.actor("sam")
    first = create_handoff(
        db=world.db, actor=alex, session_id=world.new_session(summary="first"), intent="escalate"
    )
    second = create_handoff(
        db=world.db, actor=alex, session_id=world.new_session(summary="second"), intent="park", notes="later"
    )
    queue = get_queue(db=world.db, actor=sam)
    ids = [card.id for card in queue]
    assert ids.index(str(second.id)) < ids.index(str(first.id))
    card = next(c for c in queue if c.id == str(second.id))
    assert (card.problem_summary, card.intent, card.notes, card.handed_off_by_name) == (
        "second",
        "park",
        "later",
        "Alex Kim",
    )
    # Demo data: one Northwind escalation and one park were already waiting.
    assert len(queue) == 4

    claim_handoff(db=world.db, actor=sam, handoff_id=first.id)
    assert str(first.id) not in [c.id for c in get_queue(db=world.db, actor=world.actor("riley"))]


def test_queue_is_account_scoped_and_viewers_can_read_it(world):
    northwind = {c.id for c in get_queue(db=world.db, actor=world.actor("val"))}
    contoso = get_queue(db=world.db, actor=world.actor("jordan"))
    assert len(contoso) == 1 and contoso[0].handed_off_by_name == "Casey Diaz"
    assert northwind and not northwind & {c.id for c in contoso}


def test_queue_is_team_scoped(world):
    from escalation_app.domain.models import Team

    other_team = Team(account_id=world.northwind.id, name="Projects")
    world.db.add(other_team)
    world.db.commit()
    pat = world.add_user("pat@northwind.example", "Pat Q", "engineer")
    user = world.users["pat"]
    user.team_id = other_team.id
    world.db.add(user)
    world.db.commit()
    pat = world.actor("pat")
    assert get_queue(db=world.db, actor=pat) == []
    # Morgan (Service Desk) still sees the Service Desk queue.
    assert get_queue(db=world.db, actor=world.actor("morgan"))


def test_list_handoffs_newest_first_with_names(world):
    sid = world.new_session()
    alex, riley = world.actor("alex"), world.actor("riley")
    park = create_handoff(db=world.db, actor=alex, session_id=sid, intent="park")
    claim_handoff(db=world.db, actor=riley, handoff_id=park.id)
    # While Riley works it, it is Riley's to hand back before Alex escalates again.
    handback = hand_back(db=world.db, actor=riley, session_id=sid, guidance="Check the MX record")
    escalation = create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate", priority="urgent")
    rows = list_handoffs(db=world.db, actor=world.actor("morgan"), session_id=sid)
    assert [r.id for r in rows] == [str(escalation.id), str(handback.id), str(park.id)]
    assert rows[1].intent == "handback" and rows[1].handed_off_by_name == "Riley Chen"
    assert rows[2].claimed_by_name == "Riley Chen" and rows[2].claimed_at is not None
    assert rows[2].outcome == "handed_back"
    assert rows[0].claimed_by_name is None and rows[0].priority == "urgent"
    with pytest.raises(NotFound):
        list_handoffs(db=world.db, actor=world.actor("jordan"), session_id=sid)


def test_handoff_detail_is_account_scoped(world):
    sid = world.new_session(steps=2)
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    detail = get_handoff_detail(db=world.db, actor=world.actor("val"), handoff_id=str(handoff.id))
    assert [s.tried for s in detail.steps] == ["step 1", "step 2"]
    assert detail.handed_off_by_name == "Alex Kim"
    for bad in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound):
            get_handoff_detail(db=world.db, actor=world.actor("alex"), handoff_id=bad)
    with pytest.raises(NotFound):
        get_handoff_detail(db=world.db, actor=world.actor("casey"), handoff_id=str(handoff.id))
