"""/admin/policy over the real state handlers: managers only, bounded input, nothing half-saved.

Also "Wake me" on Park and Un-snooze through the session page's handlers.
"""

from __future__ import annotations

from sqlmodel import select

from escalation_app.domain.models import EscalationPolicy, OutboxJob, SessionHandoff
from escalation_app.state.policy import PolicyState, person_field
from escalation_app.state.sessions import SessionDetailState
from tests.state.test_state_authorisation import assert_refused, fingerprint, signed_in_tab

PATH = "/admin/policy"
REFUSED = "Only owners and admins can change the escalation policy."


def _form(**fields) -> dict:
    return {
        "time_zone": "Europe/London",
        "urgent_minutes": "1",
        "high_minutes": "10",
        "normal_minutes": "20",
        "low_minutes": "60",
        "level3_after_minutes": "",
        "stall_minutes": "45",
        **fields,
    }


async def test_engineers_and_viewers_are_refused_and_change_nothing(browser, world, read):
    for who in ("alex", "val"):
        tab = await signed_in_tab(browser, world, who)
        outcome = await tab.fire(PolicyState, "load", path=PATH)
        state = await tab.get(PolicyState)
        assert state.loaded and not state.allowed and state.people == [], who
        assert "Riley Chen" not in outcome.wire_text(), who
        before = fingerprint(read)
        saved = await tab.fire(PolicyState, "save", path=PATH, form_data=_form())
        assert_refused(saved, REFUSED, who)
        assert fingerprint(read) == before, who


async def test_an_admin_sets_the_policy_and_bad_input_changes_nothing(browser, world, read):
    tab = await signed_in_tab(browser, world, "riley")
    await tab.fire(PolicyState, "load", path=PATH)
    state = await tab.get(PolicyState)
    assert state.allowed and state.urgent_minutes == "5" and state.normal_minutes == "30"
    assert {p["name"] for p in state.people} >= {"Alex Kim", "Morgan Lee"}
    assert "Casey Diaz" not in {p["name"] for p in state.people}

    before = fingerprint(read)
    for bad, message in [
        ({"urgent_minutes": "0"}, "Urgent target must be between 1 and 10,080 minutes (a week)."),
        ({"time_zone": "Nowhere/Special"}, "Time zone “Nowhere/Special” is not known"),
        # A crafted checkbox naming another account's engineer.
        (
            {person_field(2, world.users["casey"].id): "on"},
            "Level 2 people: one of them is not an active owner, admin or engineer of this account.",
        ),
    ]:
        outcome = await tab.fire(PolicyState, "save", path=PATH, form_data=_form(**bad))
        assert outcome.successes == [] and len(outcome.errors) == 1, outcome.toasts
        assert outcome.errors[0].startswith(message), outcome.errors
        assert fingerprint(read) == before, bad

    sam = world.users["sam"].id
    outcome = await tab.fire(PolicyState, "save", path=PATH, form_data=_form(**{person_field(2, sam): "on"}))
    assert outcome.successes == ["Escalation policy saved; it applies to new escalations"]
    row = read(lambda db: db.exec(select(EscalationPolicy)).one())
    assert (row.urgent_minutes, row.normal_minutes, row.stall_minutes, row.time_zone) == (
        1,
        20,
        45,
        "Europe/London",
    )
    assert row.level2_user_ids == [sam] and row.level3_after_minutes is None
    state = await tab.get(PolicyState)
    assert state.level2_ids == [str(sam)] and state.updated_by == "Riley Chen"


async def test_park_with_wake_me_and_un_snooze_from_the_session_page(browser, world, read):
    tab = await signed_in_tab(browser, world, "alex")
    sid = world.new_session("alex")
    path = f"/sessions/{sid}"
    await tab.fire(SessionDetailState, "load", path=path)

    before = fingerprint(read)
    bad = await tab.fire(
        SessionDetailState, "park", path=path, form_data={"notes": "", "wake": "at", "wake_at": "soon"}
    )
    assert bad.errors == ["Wake-up time must be a date and time like 2026-12-24T09:00."]
    assert fingerprint(read) == before

    parked = await tab.fire(SessionDetailState, "park", path=path, form_data={"notes": "", "wake": "1h"})
    assert parked.successes == ["Session parked"]
    state = await tab.get(SessionDetailState)
    assert state.parked and state.wake_at != ""
    handoff = read(lambda db: db.exec(select(SessionHandoff).where(SessionHandoff.session_id == sid)).one())
    assert handoff.wake_at is not None
    timer = read(
        lambda db: db.exec(
            select(OutboxJob).where(OutboxJob.kind == "timer", OutboxJob.handoff_id == handoff.id)
        ).one()
    )
    assert timer.status == "pending" and timer.run_at == handoff.wake_at

    # Someone else cannot un-snooze it.
    sam = await signed_in_tab(browser, world, "sam")
    assert_refused(await sam.fire(SessionDetailState, "unsnooze", path=path), "Session not found.")

    outcome = await tab.fire(SessionDetailState, "unsnooze", path=path)
    assert outcome.successes == ["Snooze cancelled"]
    assert (await tab.get(SessionDetailState)).wake_at == ""
    assert read(lambda db: db.get(OutboxJob, timer.id)).status == "skipped"
