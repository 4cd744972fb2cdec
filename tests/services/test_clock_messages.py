"""The escalation clock's emails against a real SMTP server (aiosmtpd), both databases:
level 2's "Unclaimed for 30 min" to the owners and admins, and a snoozed park's wake-up."""

from __future__ import annotations

import pytest

from escalation_app.domain import clock
from escalation_app.domain.outbox import JobKind
from tests.outbox_helpers import Clock, run_outbox
from tests.services.test_notifications import FRONTEND, escalate, sink, smtp_env, world  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


async def test_level_2_emails_the_owners_and_admins(world, engine, sink):  # noqa: F811
    handoff = escalate(world, priority="normal")
    await run_outbox(engine, kinds=[JobKind.EMAIL])  # the escalation's own emails
    sink.received.clear()

    at = Clock(handoff.response_due_at)
    assert await run_outbox(engine, kinds=[JobKind.TIMER], clock=at) == 1
    assert await run_outbox(engine, kinds=[JobKind.EMAIL], clock=at) == 2

    mails = sink.by_recipient()
    assert set(mails) == {"riley@northwind.example", "morgan@northwind.example"}
    for mail in mails.values():
        assert mail.message["Subject"] == "Unclaimed for 30 min: Mail flow stopped"
        text = mail.part("text/plain")
        assert "Nobody has picked this escalation up for 30 min" in text
        assert "Handed off by: Alex Kim" in text
        assert f"{FRONTEND}/handoffs/{handoff.id}" in text


async def test_a_snoozed_park_mails_its_owner_when_it_wakes(world, engine, sink):  # noqa: F811
    sid = world.new_session(summary="Waiting for the courier")
    park = clock.park(db=world.db, actor=world.actor("alex"), session_id=sid, wake="1h")
    world.db.commit()
    at = Clock(park.wake_at)
    assert await run_outbox(engine, kinds=[JobKind.TIMER], clock=at) == 1
    assert await run_outbox(engine, kinds=[JobKind.EMAIL], clock=at) == 1
    (mail,) = sink.received
    assert mail.message["Subject"] == "Parked session is back: Waiting for the courier"
    assert f"{FRONTEND}/sessions/{sid}" in mail.part("text/plain")
