"""create_session, add_step, resolve_session and the session list."""

from __future__ import annotations

import pytest

from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.support_sessions import (
    add_step,
    create_session,
    list_own_sessions,
    list_steps,
)
from tests.factories import World, resolve_session


@pytest.fixture
def world(db) -> World:
    return World(db)


def test_create_session_strips_and_defaults(world):
    alex = world.actor("alex")
    s = create_session(db=world.db, actor=alex, problem_summary="  Wi-Fi drops  ", psa_ticket_id="  ")
    assert (s.problem_summary, s.status, s.psa_ticket_id, s.confidence_tier) == (
        "Wi-Fi drops",
        "active",
        None,
        "medium",
    )
    assert s.account_id == alex.account_id and s.owner_id == alex.id and s.team_id == alex.team_id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"problem_summary": "   "}, "Problem summary is required."),
        ({"problem_summary": "x" * 201}, "Problem summary must be at most 200 characters."),
        (
            {"problem_summary": "ok", "confidence_tier": "sure"},
            "Confidence must be one of: low, medium, high.",
        ),
        ({"problem_summary": "ok", "psa_ticket_id": "9" * 65}, "PSA ticket must be at most 64 characters."),
    ],
)
def test_create_session_rejects_bad_input(world, kwargs, message):
    before = len(list_own_sessions(db=world.db, actor=world.actor("alex")))
    with pytest.raises(InvalidInput) as err:
        create_session(db=world.db, actor=world.actor("alex"), **kwargs)
    assert err.value.message == message
    world.db.rollback()
    assert len(list_own_sessions(db=world.db, actor=world.actor("alex"))) == before


def test_viewer_cannot_create_sessions(world):
    with pytest.raises(PermissionDenied):
        create_session(db=world.db, actor=world.actor("val"), problem_summary="x")


def test_steps_are_numbered_in_order(world):
    sid = world.new_session(steps=0)
    alex = world.actor("alex")
    add_step(db=world.db, actor=alex, session_id=sid, tried="Rebooted", result="No change")
    add_step(db=world.db, actor=alex, session_id=sid, tried="Reset NIC", skipped=True)
    steps = list_steps(db=world.db, session_id=sid)
    assert [(s.position, s.tried, s.result, s.skipped) for s in steps] == [
        (1, "Rebooted", "No change", False),
        (2, "Reset NIC", "", True),
    ]


def test_add_step_rules(world):
    sid = world.new_session(steps=0)
    with pytest.raises(InvalidInput, match="What I tried is required."):
        add_step(db=world.db, actor=world.actor("alex"), session_id=sid, tried="")
    for other in ("sam", "casey"):
        with pytest.raises(NotFound):
            add_step(db=world.db, actor=world.actor(other), session_id=sid, tried="sneaky")
    resolve_session(db=world.db, actor=world.actor("alex"), session_id=sid)
    with pytest.raises(InvalidInput, match="resolved"):
        add_step(db=world.db, actor=world.actor("alex"), session_id=sid, tried="late")
    assert list_steps(db=world.db, session_id=sid) == []


def test_resolve_rules(world):
    sid = world.new_session()
    with pytest.raises(NotFound):
        resolve_session(db=world.db, actor=world.actor("casey"), session_id=sid)
    assert resolve_session(db=world.db, actor=world.actor("alex"), session_id=sid).status == "resolved"
    with pytest.raises(InvalidInput, match="already resolved"):
        resolve_session(db=world.db, actor=world.actor("alex"), session_id=sid)


def test_session_list_is_own_and_newest_first(world):
    alex_sessions = list_own_sessions(db=world.db, actor=world.actor("alex"))
    assert len(alex_sessions) == 5
    assert [s.updated_at for s in alex_sessions] == sorted(
        (s.updated_at for s in alex_sessions), reverse=True
    )
    vpn = next(s for s in alex_sessions if s.problem_summary.startswith("VPN"))
    assert vpn.step_count == 4
    assert all(s.problem_summary != "New hire cannot enrol phone in Intune" for s in alex_sessions)
    assert list_own_sessions(db=world.db, actor=world.actor("jordan")) == []
