# ruff: noqa: F811 - `targets` is the imported fixture, requested by name
"""Security rules at the state layer (issue 14): read scope, input bounds, bounded pushes.

Driven like the server drives the handlers, with crafted events; every refusal must
leave the database exactly as it was (fingerprint), and positive controls show the same
calls succeed for someone allowed.
"""

from __future__ import annotations

import uuid

import pytest
from reflex_base.utils.format import json_dumps
from sqlmodel import func, select

from escalation_app.domain.models import SessionHandoff, SessionStep, SupportSession, Team, User
from escalation_app.domain.support_sessions import STEPS_MAX
from escalation_app.domain.users import EMAIL_UNAVAILABLE
from escalation_app.state.admin import UsersAdminState
from escalation_app.state.handoff import HandoffState
from escalation_app.state.history import HistoryState
from escalation_app.state.queue import QueueState
from escalation_app.state.sessions import STEP_CHUNK, SessionDetailState, SessionHistoryState, SessionsState
from tests.state.test_state_authorisation import (
    HANDOFF_NOT_FOUND,
    assert_refused,
    fingerprint,
    signed_in_tab,
)
from tests.state.test_state_authorisation import ids as targets  # noqa: F401 - the records crafted events aim at

pytestmark = pytest.mark.usefixtures("side_effects")


@pytest.fixture
def other_team_engineer(world):
    """Sam, moved to another team of Northwind: outside the team queue of alex's handoffs."""
    team = Team(account_id=world.northwind.id, name="Projects")
    world.db.add(team)
    world.db.flush()
    sam = world.users["sam"]
    sam.team_id = team.id
    world.db.add(sam)
    world.db.commit()
    return sam


async def test_an_engineer_outside_the_team_cannot_open_claim_or_read_the_history(
    browser, world, targets, read, other_team_engineer
):
    sam = await signed_in_tab(browser, world, "sam")
    before = fingerprint(read)
    outcome = await sam.fire(HandoffState, "load", path=f"/handoffs/{targets.nw_escalated}")
    handoff = await sam.get(HandoffState)
    assert handoff.loaded and not handoff.found and handoff.summary == ""
    assert "Mail flow" not in outcome.wire_text()
    outcome = await sam.fire(QueueState, "pick_up", path="/escalations", handoff_id=targets.nw_escalated)
    assert_refused(outcome, HANDOFF_NOT_FOUND, "queue")
    outcome = await sam.fire(HandoffState, "pick_up", path=f"/handoffs/{targets.nw_escalated}")
    assert_refused(outcome, HANDOFF_NOT_FOUND, "handoff screen")
    session_id = read(lambda db: db.get(SessionHandoff, uuid.UUID(targets.nw_escalated)).session_id)
    await sam.fire(SessionHistoryState, "load", path=f"/sessions/{session_id}/history")
    history = await sam.get(SessionHistoryState)
    assert history.loaded and not history.found and history.rows == []
    await sam.fire(HistoryState, "load", path="/history")
    assert targets.nw_escalated not in json_dumps(await sam.snapshot())
    assert fingerprint(read) == before

    # Positive control: a teammate of the same team reads all three and picks it up.
    riley = await signed_in_tab(browser, world, "riley")
    await riley.fire(HandoffState, "load", path=f"/handoffs/{targets.nw_escalated}")
    assert (await riley.get(HandoffState)).found
    await riley.fire(SessionHistoryState, "load", path=f"/sessions/{session_id}/history")
    assert (await riley.get(SessionHistoryState)).found
    outcome = await riley.fire(QueueState, "pick_up", path="/escalations", handoff_id=targets.nw_escalated)
    assert outcome.errors == [] and outcome.redirects == [f"/handoffs/{targets.nw_escalated}"]


async def test_a_handoff_sent_to_someone_outside_the_team_is_theirs_to_open_and_claim(
    browser, world, targets, read, other_team_engineer
):
    def send_to_sam(db):
        handoff = db.get(SessionHandoff, uuid.UUID(targets.nw_escalated))
        handoff.target_user_id = other_team_engineer.id
        db.add(handoff)
        db.commit()

    read(send_to_sam)
    sam = await signed_in_tab(browser, world, "sam")
    await sam.fire(HandoffState, "load", path=f"/handoffs/{targets.nw_escalated}")
    assert (await sam.get(HandoffState)).found
    outcome = await sam.fire(QueueState, "pick_up", path="/escalations", handoff_id=targets.nw_escalated)
    assert outcome.errors == []


CONTROL_INPUTS = ["before\x00after", "bell\x07", "escape\x1b[31m", "del\x7f", "c1\x85", "sep\u2028x"]


@pytest.mark.parametrize("bad", CONTROL_INPUTS)
async def test_control_characters_are_refused_with_a_clear_message(browser, world, targets, read, bad):
    alex = await signed_in_tab(browser, world, "alex")
    before = fingerprint(read)
    form = {
        "problem_summary": f"Printer {bad} jammed",
        "problem_domain": "",
        "client_name": "",
        "psa_ticket_id": "",
    }
    outcome = await alex.fire(SessionsState, "create", path="/sessions", form_data=form)
    assert outcome.errors == ["Problem summary contains a control character; remove it and try again."]
    assert not (await alex.get(SessionsState)).creating
    path = f"/sessions/{targets.alex_session}"
    await alex.fire(SessionDetailState, "load", path=path)
    outcome = await alex.fire(
        SessionDetailState, "add_step", path=path, form_data={"tried": f"Tried {bad} this", "result": ""}
    )
    assert outcome.errors == ["What I tried contains a control character; remove it and try again."]
    outcome = await alex.fire(
        SessionDetailState, "park", path=path, form_data={"notes": f"Notes {bad} here", "priority": "normal"}
    )
    assert outcome.errors == ["Notes contains a control character; remove it and try again."]
    assert fingerprint(read) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("display_name", "Eve\r\nBcc: x", "Name must be a single line."),
        ("display_name", "Eve\x00", "Name contains a control character; remove it and try again."),
        ("email", "eve@northwind.example\r\nBcc: x@evil.example", "Email must be a single line."),
        ("email", "e" * 300 + "@northwind.example", "Email must be at most 254 characters."),
        ("email", "not an email", "Enter a valid email address."),
        ("email", "casey@contoso.example", EMAIL_UNAVAILABLE),  # another account's user
        ("email", "alex@northwind.example", EMAIL_UNAVAILABLE),  # this account's: the same words
    ],
)
async def test_adding_a_user_checks_every_field(browser, world, targets, read, field, value, message):
    riley = await signed_in_tab(browser, world, "riley")
    before = fingerprint(read)
    form = {"display_name": "Eve Adams", "email": "eve@northwind.example", "role": "engineer"}
    form["password"] = "long enough password"
    form[field] = value
    outcome = await riley.fire(UsersAdminState, "add_user", path="/admin/users", form_data=form)
    assert outcome.errors == [message]
    assert fingerprint(read) == before


def _fill_steps(read, session_id: int, count: int, width: int) -> None:
    def fill(db):
        existing = db.exec(select(func.count()).where(SessionStep.session_id == session_id)).one()
        for position in range(existing + 1, count + 1):
            db.add(
                SessionStep(
                    session_id=session_id,
                    position=position,
                    tried=f"step {position} " + "t" * width,
                    result="r",
                )
            )
        db.commit()

    read(fill)


async def test_adding_a_step_pushes_one_chunk_not_the_whole_log(browser, world, targets, read):
    _fill_steps(read, targets.alex_session, 59, 3_900)
    alex = await signed_in_tab(browser, world, "alex")
    path = f"/sessions/{targets.alex_session}"
    await alex.fire(SessionDetailState, "load", path=path)
    assert (await alex.get(SessionDetailState)).step_count == 59
    outcome = await alex.fire(
        SessionDetailState, "add_step", path=path, form_data={"tried": "x" * 1_999, "result": "y" * 1_999}
    )
    assert outcome.successes == ["Step added"]
    wire = outcome.wire_text()
    assert "x" * 1_999 in wire and "step 60" not in wire
    assert "step 1 " not in wire and "step 40 " not in wire  # earlier chunks stay put
    # The push carries the step's chunk only: at most STEP_CHUNK steps of ≤ 4,000 characters.
    assert len(wire) < STEP_CHUNK * 4_400
    detail = await alex.get(SessionDetailState)
    assert detail.step_count == 60 and detail.steps_2[-1]["tried"] == "x" * 1_999


async def test_a_session_holds_at_most_200_steps(browser, world, targets, read):
    _fill_steps(read, targets.alex_session, STEPS_MAX, 10)
    alex = await signed_in_tab(browser, world, "alex")
    path = f"/sessions/{targets.alex_session}"
    await alex.fire(SessionDetailState, "load", path=path)
    before = fingerprint(read)
    outcome = await alex.fire(SessionDetailState, "add_step", path=path, form_data={"tried": "one more"})
    assert outcome.errors == [
        f"A session can have at most {STEPS_MAX} steps. Resolve it or start a new session."
    ]
    assert fingerprint(read) == before


async def test_parking_a_parked_session_is_refused(browser, world, targets, read):
    alex = await signed_in_tab(browser, world, "alex")
    path = f"/sessions/{targets.alex_session}"
    await alex.fire(SessionDetailState, "load", path=path)
    form = {"notes": "waiting for the customer", "priority": "normal"}
    assert (await alex.fire(SessionDetailState, "park", path=path, form_data=form)).successes == [
        "Session parked"
    ]
    before = fingerprint(read)
    outcome = await alex.fire(SessionDetailState, "park", path=path, form_data=form)
    assert outcome.errors == ["This session is already parked."]
    assert fingerprint(read) == before
    count = read(lambda db: db.exec(select(func.count()).select_from(SessionHandoff)).one())
    assert read(lambda db: db.get(SupportSession, targets.alex_session)).handoff_count == 1
    assert count >= 1


async def test_the_session_list_never_gets_another_users_email_check(browser, world, read):
    # Positive control for the add-user tests: a clean form adds the user.
    riley = await signed_in_tab(browser, world, "riley")
    form = {
        "display_name": "Eve Adams",
        "email": "eve@northwind.example",
        "role": "engineer",
        "password": "long enough password",
    }
    outcome = await riley.fire(UsersAdminState, "add_user", path="/admin/users", form_data=form)
    assert outcome.successes == ["User added"]
    assert read(lambda db: db.exec(select(User).where(User.email == "eve@northwind.example")).one())
