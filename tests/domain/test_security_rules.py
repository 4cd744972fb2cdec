"""Issue 14's domain rules: one read scope, claims follow the queue, bounded and clean input."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from escalation_app.domain import validation
from escalation_app.domain.errors import InvalidInput, NotFound
from escalation_app.domain.handoffs import (
    claim_handoff,
    create_handoff,
    get_handoff_detail,
    get_readable_session,
    list_handoffs,
)
from escalation_app.domain.models import SessionStep, Team
from escalation_app.domain.psa import validate_psa_url
from escalation_app.domain.support_sessions import STEPS_MAX, add_step, create_session
from escalation_app.domain.users import EMAIL_UNAVAILABLE, add_user
from tests.factories import World


@pytest.fixture
def world(db) -> World:
    return World(db)


@pytest.fixture
def split(world):
    """Alex escalates; Sam moves to another team of the same account."""
    session_id = world.new_session("alex")
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="escalate")
    team = Team(account_id=world.northwind.id, name="Projects")
    world.db.add(team)
    world.db.flush()
    world.users["sam"].team_id = team.id
    world.db.add(world.users["sam"])
    world.db.commit()
    return session_id, handoff


def test_outside_the_team_a_handoff_and_its_session_history_are_not_found(world, split):
    session_id, handoff = split
    sam = world.actor("sam")
    with pytest.raises(NotFound):
        get_handoff_detail(db=world.db, actor=sam, handoff_id=handoff.id)
    with pytest.raises(NotFound):
        list_handoffs(db=world.db, actor=sam, session_id=session_id)
    with pytest.raises(NotFound):
        claim_handoff(db=world.db, actor=sam, handoff_id=handoff.id)
    assert world.db.get(type(handoff), handoff.id).claimed_by_id is None
    # The same account's managers and viewers, and the team, read it.
    for name in ["morgan", "riley", "val"]:
        assert get_handoff_detail(db=world.db, actor=world.actor(name), handoff_id=handoff.id)
        assert [r.id for r in list_handoffs(db=world.db, actor=world.actor(name), session_id=session_id)] == [
            str(handoff.id)
        ]
    # Another account never.
    with pytest.raises(NotFound):
        get_handoff_detail(db=world.db, actor=world.actor("jordan"), handoff_id=handoff.id)


def test_a_handoff_sent_to_someone_is_theirs_to_read_and_claim(world):
    team = Team(account_id=world.northwind.id, name="Projects")
    world.db.add(team)
    world.db.flush()
    world.users["sam"].team_id = team.id
    world.db.commit()
    session_id = world.new_session("alex")
    handoff = create_handoff(
        db=world.db,
        actor=world.actor("alex"),
        session_id=session_id,
        intent="escalate",
        target_user_id=world.users["sam"].id,
    )
    sam = world.actor("sam")
    assert get_handoff_detail(db=world.db, actor=sam, handoff_id=handoff.id)
    assert get_readable_session(db=world.db, actor=sam, session_id=session_id).id == session_id
    assert claim_handoff(db=world.db, actor=sam, handoff_id=handoff.id).newly_claimed


def test_a_manager_claims_only_from_their_team_queue(world, split):
    _session_id, handoff = split
    world.users["riley"].team_id = world.users["sam"].team_id  # riley joins Projects
    world.db.commit()
    riley = world.actor("riley")
    assert get_handoff_detail(db=world.db, actor=riley, handoff_id=handoff.id)  # reads the account
    with pytest.raises(NotFound):
        claim_handoff(db=world.db, actor=riley, handoff_id=handoff.id)


def test_parking_a_parked_session_is_refused(world):
    session_id = world.new_session("alex")
    create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="park")
    with pytest.raises(InvalidInput, match="already parked"):
        create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="park")


def test_a_session_holds_at_most_200_steps(world):
    alex = world.actor("alex")
    session = create_session(db=world.db, actor=alex, problem_summary="Long one")
    world.db.add_all(
        [SessionStep(session_id=session.id, position=i, tried=f"t{i}") for i in range(1, STEPS_MAX + 1)]
    )
    world.db.commit()
    with pytest.raises(InvalidInput, match="at most 200 steps"):
        add_step(db=world.db, actor=alex, session_id=session.id, tried="one more")
    count = world.db.exec(select(func.count()).where(SessionStep.session_id == session.id)).one()
    assert count == STEPS_MAX


@pytest.mark.parametrize("bad", ["a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b", "a\rb"])
def test_stored_text_refuses_control_characters(bad):
    with pytest.raises(InvalidInput, match="control character"):
        validation.text(bad, "Notes", max_length=100)


def test_newlines_and_tabs_stay_allowed_in_multiline_text_only():
    assert validation.text("line 1\n\tline 2", "Notes", max_length=100) == "line 1\n\tline 2"
    with pytest.raises(InvalidInput, match="single line"):
        validation.single_line("Eve\nBcc: x", "Name", max_length=100)


@pytest.mark.parametrize(
    "address",
    ["", "x", "a@b", "a b@c.example", "a@b@c.example", "a" * 250 + "@b.example", "alex@north\nwind.example"],
)
def test_email_addresses_are_parsed_not_guessed(address):
    with pytest.raises(InvalidInput):
        validation.email(address)


def test_an_email_of_another_account_cannot_be_used_and_says_nothing_more(world):
    for email in ["casey@contoso.example", "ALEX@northwind.example"]:
        with pytest.raises(InvalidInput) as refused:
            add_user(
                db=world.db,
                actor=world.actor("riley"),
                display_name="Eve",
                email=email,
                role="engineer",
                password="long enough",
            )
        assert refused.value.message == EMAIL_UNAVAILABLE


@pytest.mark.parametrize(
    "url",
    ["https://127.1:9443", "https://0x7f.1", "https://2130706433", "https://0177.0.0.1", "https://10.1"],
)
def test_psa_urls_in_address_notations_are_refused_on_save(url):
    with pytest.raises(InvalidInput, match="needs a host name"):
        validate_psa_url(url, "connectwise")
