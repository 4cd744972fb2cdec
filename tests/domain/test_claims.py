"""claim_handoff: the rules, and the race that must always have exactly one winner."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session

from escalation_app.domain.errors import AlreadyClaimed, NotFound, PermissionDenied
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import SessionHandoff, SupportSession
from tests.factories import World


@pytest.fixture
def world(db) -> World:
    return World(db)


def _escalate(world: World) -> SessionHandoff:
    sid = world.new_session()
    return create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate")


def test_winner_takes_the_session(world):
    handoff = _escalate(world)
    result = claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=str(handoff.id))
    assert result.newly_claimed
    assert result.handoff.claimed_by_id == world.users["riley"].id
    assert result.handoff.claimed_at.tzinfo is not None
    world.db.expire_all()
    support_session = world.db.get(SupportSession, handoff.session_id)
    assert support_session.status == "active"
    assert support_session.escalated_to_id == world.users["riley"].id


def test_winner_claiming_again_is_a_no_op(world):
    handoff = _escalate(world)
    first = claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    again = claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    assert not again.newly_claimed
    assert again.handoff.claimed_at == first.handoff.claimed_at


def test_loser_is_told_who_won_and_when(world):
    handoff = _escalate(world)
    won = claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    with pytest.raises(AlreadyClaimed) as err:
        claim_handoff(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id)
    assert err.value.winner_name == "Riley Chen"
    assert err.value.winner_id == world.users["riley"].id
    assert err.value.claimed_at == won.handoff.claimed_at
    assert err.value.message == "Already claimed by Riley Chen"


def test_viewer_cannot_claim(world):
    handoff = _escalate(world)
    with pytest.raises(PermissionDenied):
        claim_handoff(db=world.db, actor=world.actor("val"), handoff_id=handoff.id)
    world.db.expire_all()
    assert world.db.get(SessionHandoff, handoff.id).claimed_by_id is None


def test_cannot_claim_own_handoff(world):
    handoff = _escalate(world)
    with pytest.raises(PermissionDenied, match="Cannot claim your own handoff"):
        claim_handoff(db=world.db, actor=world.actor("alex"), handoff_id=handoff.id)


def test_other_account_gets_not_found(world):
    handoff = _escalate(world)
    for actor in ("casey", "jordan"):
        with pytest.raises(NotFound, match="Handoff not found."):
            claim_handoff(db=world.db, actor=world.actor(actor), handoff_id=handoff.id)
    world.db.expire_all()
    assert world.db.get(SessionHandoff, handoff.id).claimed_by_id is None


CLAIMERS = 20
ROUNDS = 50


def test_concurrent_claims_have_exactly_one_winner(world, engine):
    claimers = [
        world.add_user(f"senior{i}@northwind.example", f"Senior {i}", "engineer") for i in range(CLAIMERS)
    ]
    names = {a.id: a.display_name for a in claimers}

    def claim(actor, handoff_id, barrier):
        with Session(engine, expire_on_commit=False) as db:
            barrier.wait()
            try:
                result = claim_handoff(db=db, actor=actor, handoff_id=handoff_id)
                return ("won", actor.id, result.handoff.claimed_at)
            except AlreadyClaimed as lost:
                return ("lost", lost.winner_id, lost.winner_name)

    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        for _ in range(ROUNDS):
            handoff = _escalate(world)
            barrier = threading.Barrier(CLAIMERS)
            outcomes = list(pool.map(claim, claimers, [handoff.id] * CLAIMERS, [barrier] * CLAIMERS))
            winners = [o for o in outcomes if o[0] == "won"]
            losers = [o for o in outcomes if o[0] == "lost"]
            assert len(winners) == 1, outcomes
            winner_id = winners[0][1]
            assert len(losers) == CLAIMERS - 1
            assert all(o[1] == winner_id and o[2] == names[winner_id] for o in losers)
            world.db.expire_all()
            assert world.db.get(SessionHandoff, handoff.id).claimed_by_id == winner_id
