"""The Escalate dialog's completeness check: its rules (pure), what an escalation stores,
and this account's "complete escalations were picked up in … vs …" (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from escalation_app.domain import completeness
from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import SessionHandoff, SupportSession
from escalation_app.domain.types import utcnow
from tests.factories import World

GOOD_NOTES = "Relay rejects mail since the firewall swap; I need rights on the smart host."
SEES = "Bounce 550 5.7.1 relaying denied"


def _check(**overrides) -> completeness.Completeness:
    values = {
        "step_count": 2,
        "client_name": "Acme",
        "psa_ticket_id": None,
        "notes": GOOD_NOTES,
        "customer_sees": SEES,
    }
    values.update(overrides)
    return completeness.check(**values)


def _missing(result: completeness.Completeness) -> list[str]:
    return [item.key for item in result.items if not item.ok]


def test_a_complete_escalation_has_nothing_missing():
    result = _check()
    assert result.complete and result.missing == 0
    assert [item.key for item in result.items] == ["steps", "customer_sees", "client_ticket", "notes"]


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"step_count": 0}, ["steps"]),
        ({"step_count": -3}, ["steps"]),
        ({"customer_sees": "   error  "}, ["customer_sees"]),
        ({"customer_sees": ""}, ["customer_sees"]),
        ({"client_name": "", "psa_ticket_id": None}, ["client_ticket"]),
        ({"client_name": "  ", "psa_ticket_id": "  "}, ["client_ticket"]),
        # Seven words are not enough, nor are eight very short ones under 40 characters.
        ({"notes": "Mail is stuck and I need some help"}, ["notes"]),
        ({"notes": "a b c d e f g h i j"}, ["notes"]),
        (
            {"step_count": 0, "customer_sees": "", "client_name": "", "notes": ""},
            ["steps", "customer_sees", "client_ticket", "notes"],
        ),
    ],
)
def test_each_missing_item_is_a_hint(overrides, missing):
    result = _check(**overrides)
    assert _missing(result) == missing
    assert result.missing == len(missing) and not result.complete
    assert all(item.hint for item in result.items if not item.ok)


def test_a_ticket_alone_names_the_case_and_eight_words_are_enough():
    assert _check(client_name="", psa_ticket_id="48277").complete
    assert _check(notes="Relay rejects all outbound mail since yesterday's firewall change").complete


def test_anything_the_browser_sends_is_accepted_without_error():
    result = completeness.check(
        step_count="3", client_name=None, psa_ticket_id=None, notes=None, customer_sees=7
    )  # type: ignore[arg-type]
    assert _missing(result) == ["steps", "customer_sees", "client_ticket", "notes"]


@pytest.fixture
def world(db) -> World:
    return World(db)


def test_an_escalation_stores_what_was_missing_and_what_the_customer_sees(world):
    alex = world.actor("alex")
    complete_sid = world.new_session(steps=2)
    handoff = create_handoff(
        db=world.db,
        actor=alex,
        session_id=complete_sid,
        intent="escalate",
        notes=GOOD_NOTES,
        customer_sees=SEES,
    )
    assert handoff.completeness_missing == 0
    assert handoff.snapshot["customer_sees"] == SEES

    # Nothing logged, no notes, nothing seen: sent anyway (a hint is never a block).
    bare_sid = world.new_session(steps=0)
    bare = create_handoff(db=world.db, actor=alex, session_id=bare_sid, intent="escalate")
    assert bare.completeness_missing == 3  # the session names its client
    assert "customer_sees" not in bare.snapshot

    # A park is not checked.
    park_sid = world.new_session()
    park = create_handoff(db=world.db, actor=alex, session_id=park_sid, intent="park", notes="Waiting")
    assert park.completeness_missing is None


def test_what_the_customer_sees_is_bounded(world):
    sid = world.new_session()
    with pytest.raises(InvalidInput, match="What the customer sees"):
        create_handoff(
            db=world.db,
            actor=world.actor("alex"),
            session_id=sid,
            intent="escalate",
            customer_sees="x" * (completeness.CUSTOMER_SEES_MAX + 1),
        )
    world.db.rollback()
    assert world.db.exec(select(SessionHandoff).where(SessionHandoff.session_id == sid)).all() == []
    world.db.expire_all()
    assert world.db.get(SupportSession, sid).status == "active"


def _escalate_and_claim(world: World, *, complete: bool, waited_minutes: float) -> None:
    sid = world.new_session(steps=1 if complete else 0)
    handoff = create_handoff(
        db=world.db,
        actor=world.actor("alex"),
        session_id=sid,
        intent="escalate",
        notes=GOOD_NOTES if complete else "",
        customer_sees=SEES if complete else "",
    )
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    created = utcnow() - timedelta(hours=2)
    world.db.exec(
        update(SessionHandoff)
        .where(col(SessionHandoff.id) == handoff.id)
        .values(created_at=created, claimed_at=created + timedelta(minutes=waited_minutes))
    )
    world.db.commit()


def test_pickup_comparison_medians_from_this_accounts_history(world):
    account = world.northwind.id
    for minutes in (10, 12, 14, 11, 13):
        _escalate_and_claim(world, complete=True, waited_minutes=minutes)
    for minutes in (30, 41, 50, 41):
        _escalate_and_claim(world, complete=False, waited_minutes=minutes)
    # Four incomplete ones are too few to compare.
    assert completeness.pickup_comparison(db=world.db, account_id=account) is None

    _escalate_and_claim(world, complete=False, waited_minutes=60)
    result = completeness.pickup_comparison(db=world.db, account_id=account)
    assert result is not None
    assert (result.complete_count, result.incomplete_count) == (5, 5)
    assert (result.complete_seconds, result.incomplete_seconds) == (12 * 60, 41 * 60)
    # Another account's history is its own.
    assert completeness.pickup_comparison(db=world.db, account_id=world.contoso.id) is None
