"""Escalation email against a real SMTP server (aiosmtpd on 127.0.0.1), on both databases.

Each test starts its own server (or deliberately none) and stops it; the service opens
its own database sessions on the test engine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain.db import make_engine
from escalation_app.domain.deliveries import MAX_ATTEMPTS, delivery_summary
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import (
    DeliveryRecord,
    SessionHandoff,
    SupportSession,
)
from escalation_app.domain.types import utcnow
from escalation_app.services.notifications import (
    notify_escalation,
    retry_due_deliveries,
    schedule_escalation_notifications,
)
from tests.factories import World
from tests.fakes.smtp import SmtpSink, app_settings, free_port

FRONTEND = "https://desk.example.test"
SENDER = "Escalation Desk <desk@northwind.example>"
# The SMTP sink checks logins over plain TCP on purpose (no certificates in tests).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

TEAM = {"sam@northwind.example", "riley@northwind.example", "morgan@northwind.example"}


def smtp_env(port: int, **extra) -> dict:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_username": "",
        "smtp_password": "",
        "smtp_starttls": "false",
        "smtp_from": SENDER,
        "smtp_timeout_seconds": 2,
        # The trailing slash must not double up in links.
        "frontend_url": FRONTEND + "/",
        **extra,
    }


@pytest.fixture
def world(db) -> World:
    world = World(db)
    # End the read transaction: on SQLite every transaction holds the write lock.
    db.commit()
    return world


@pytest.fixture
def sink():
    with SmtpSink() as server, app_settings(**smtp_env(server.port)):
        yield server


def escalate(world: World, owner: str = "alex", **kwargs) -> SessionHandoff:
    session_id = world.new_session(owner=owner)
    handoff = create_handoff(
        db=world.db, actor=world.actor(owner), session_id=session_id, intent="escalate", **kwargs
    )
    world.db.commit()
    return handoff


def records(engine, handoff_id) -> dict[str, DeliveryRecord]:
    """The handoff's delivery records by recipient, read in a fresh session."""
    with Session(engine) as s:
        rows = s.exec(select(DeliveryRecord).where(DeliveryRecord.handoff_id == handoff_id)).all()
    return {r.recipient: r for r in rows}


def make_due(engine) -> None:
    """Bring every failed record's retry time to now, instead of sleeping through backoff."""
    with Session(engine) as s:
        s.exec(
            update(DeliveryRecord)
            .where(DeliveryRecord.status == "failed", col(DeliveryRecord.next_attempt_at).is_not(None))
            .values(next_attempt_at=utcnow())
        )
        s.commit()


def assert_handoff_intact(engine, handoff: SessionHandoff) -> None:
    with Session(engine) as s:
        stored = s.get(SessionHandoff, handoff.id)
        assert stored is not None and stored.intent == "escalate"
        assert s.get(SupportSession, handoff.session_id).status == "escalated"


async def test_escalation_mails_every_eligible_teammate_with_both_bodies(world, engine, sink):
    # Not recipients: the escalator (alex), the viewer (val), a deactivated and a deleted
    # engineer, and everyone at Contoso.
    world.add_user("dana@northwind.example", "Dana Gone", "engineer")
    world.add_user("eli@northwind.example", "Eli Deleted", "admin")
    dana, eli = world.users["dana"], world.users["eli"]
    dana.is_active = False
    eli.deleted_at = utcnow()
    world.db.add_all([dana, eli])
    world.db.commit()
    handoff = escalate(world, notes="DNS is <b>broken</b> & MX gone", priority="high")

    await notify_escalation(handoff.id, engine=engine)

    mails = sink.by_recipient()
    assert set(mails) == TEAM
    link = f"{FRONTEND}/handoffs/{handoff.id}"
    for address, mail in mails.items():
        message = mail.message
        assert message["Subject"] == "New escalation: Mail flow stopped"
        assert message["From"] == SENDER
        assert message["To"].addresses[0].addr_spec == address
        text = mail.part("text/plain")
        assert "Alex Kim escalated a session to the team." in text
        assert "Reason: DNS is <b>broken</b> & MX gone" in text
        assert "Priority: High" in text
        assert "Escalated by: Alex Kim" in text
        assert "Client: Acme" in text
        assert f"Open the handoff: {link}" in text
        body_html = mail.part("text/html")
        # User text is escaped in HTML: the engineer's notes cannot inject markup.
        assert "DNS is &lt;b&gt;broken&lt;/b&gt; &amp; MX gone" in body_html
        assert "<b>broken</b>" not in body_html
        assert f'<a href="{link}">' in body_html
        assert "High" in body_html and "Alex Kim" in body_html and "Acme" in body_html

    rows = records(engine, handoff.id)
    assert set(rows) == TEAM
    assert {(r.channel, r.status, r.attempts, r.last_error) for r in rows.values()} == {
        ("email", "sent", 1, None)
    }
    assert all(r.sent_at is not None for r in rows.values())
    with Session(engine) as s:
        summary = delivery_summary(db=s, actor=world.actor("riley"), handoff_id=handoff.id)
    assert summary.text == "Notified: 3 by email"


async def test_targeted_escalation_tells_the_target_and_informs_the_rest(world, engine, sink):
    riley = world.users["riley"]
    handoff = escalate(world, target_user_id=riley.id)

    await notify_escalation(str(handoff.id), engine=engine)

    mails = sink.by_recipient()
    assert set(mails) == TEAM
    assert mails[riley.email].message["Subject"] == "Escalated to you: Mail flow stopped"
    assert "Alex Kim escalated a session to you." in mails[riley.email].part("text/plain")
    for address in TEAM - {riley.email}:
        assert mails[address].message["Subject"] == "New escalation: Mail flow stopped"
        assert "Alex Kim escalated a session to Riley Chen." in mails[address].part("text/plain")
    for mail in mails.values():
        assert "Reason: No reason provided." in mail.part("text/plain")
        assert "No reason provided." in mail.part("text/html")


async def test_park_sends_nothing(world, engine, sink):
    session_id = world.new_session()
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="park")
    world.db.commit()

    await notify_escalation(handoff.id, engine=engine)

    assert sink.received == []
    assert records(engine, handoff.id) == {}


async def test_rolled_back_handoff_sends_nothing(world, engine, sink, monkeypatch):
    session_id = world.new_session()

    flushed: list[SessionHandoff] = []

    def commit_fails():
        flushed.extend(
            obj
            for obj in world.db.identity_map.values()
            if isinstance(obj, SessionHandoff) and obj.session_id == session_id
        )
        raise RuntimeError("database went away at commit")

    # create_handoff gets all the way to its commit (handoff and notification rows
    # flushed, the id assigned) and then the transaction is lost.
    monkeypatch.setattr(world.db, "commit", commit_fails)
    with pytest.raises(RuntimeError):
        create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="escalate")
    assert len(flushed) == 1
    lost_id = flushed[0].id
    world.db.rollback()
    monkeypatch.undo()

    await notify_escalation(lost_id, engine=engine)
    await notify_escalation(uuid.uuid4(), engine=engine)
    await notify_escalation("not-a-uuid", engine=engine)

    assert sink.received == []
    with Session(engine) as s:
        assert s.get(SessionHandoff, lost_id) is None
        assert s.exec(select(DeliveryRecord).where(DeliveryRecord.handoff_id == lost_id)).all() == []


async def test_notifying_twice_sends_once(world, engine, sink):
    handoff = escalate(world)
    await asyncio.gather(
        notify_escalation(handoff.id, engine=engine), notify_escalation(handoff.id, engine=engine)
    )
    await notify_escalation(handoff.id, engine=engine)
    assert set(sink.by_recipient()) == TEAM  # by_recipient fails on a duplicate
    assert len(records(engine, handoff.id)) == 3


async def test_without_smtp_email_is_recorded_skipped(world, engine):
    handoff = escalate(world)
    with app_settings(smtp_host="", frontend_url=FRONTEND):
        await notify_escalation(handoff.id, engine=engine)
        assert await retry_due_deliveries(engine=engine) == 0

    rows = records(engine, handoff.id)
    assert set(rows) == TEAM
    assert {(r.status, r.attempts, r.last_error) for r in rows.values()} == {
        ("skipped", 0, "SMTP not configured")
    }
    with Session(engine) as s:
        summary = delivery_summary(db=s, actor=world.actor("morgan"), handoff_id=handoff.id)
    assert summary.email_skipped == 3
    assert summary.text == "Notified: email skipped (SMTP not configured)"


async def test_refused_connection_is_recorded_and_the_sweep_sends_once_the_server_is_up(world, engine):
    port = free_port()  # nothing listens here yet
    handoff = escalate(world)
    with app_settings(**smtp_env(port)):
        started = utcnow()
        await notify_escalation(handoff.id, engine=engine)

        assert_handoff_intact(engine, handoff)
        rows = records(engine, handoff.id)
        assert set(rows) == TEAM
        for row in rows.values():
            assert (row.status, row.attempts) == ("failed", 1)
            assert row.last_error.startswith(
                f"Connection refused: Error connecting to 127.0.0.1 on port {port}"
            )
            # The first retry waits about 30 s.
            assert started + timedelta(seconds=25) < row.next_attempt_at < utcnow() + timedelta(seconds=35)
        assert await retry_due_deliveries(engine=engine) == 0  # not due yet

        with SmtpSink(port) as sink:
            make_due(engine)
            assert await retry_due_deliveries(engine=engine) == 3
        assert set(sink.by_recipient()) == TEAM

    rows = records(engine, handoff.id)
    assert {(r.status, r.attempts, r.last_error, r.next_attempt_at) for r in rows.values()} == {
        ("sent", 2, None, None)
    }


async def test_rejected_login_is_recorded_and_retried_once_accepted(world, engine):
    handoff = escalate(world)
    with (
        SmtpSink(username="desk", password="s3cret") as sink,
        app_settings(**smtp_env(sink.port, smtp_username="desk", smtp_password="s3cret")),
    ):
        sink.accept_logins = False
        await notify_escalation(handoff.id, engine=engine)

        assert sink.received == []
        assert sink.login_attempts >= 3  # each message really tried to log in
        assert_handoff_intact(engine, handoff)
        rows = records(engine, handoff.id)
        assert {r.status for r in rows.values()} == {"failed"}
        assert all(r.last_error.startswith("Authentication rejected: 535") for r in rows.values())

        sink.accept_logins = True
        make_due(engine)
        assert await retry_due_deliveries(engine=engine) == 3
        assert set(sink.by_recipient()) == TEAM
    assert {r.status for r in records(engine, handoff.id).values()} == {"sent"}


async def test_slow_server_times_out_without_slowing_the_caller(world, engine):
    handoff = escalate(world)
    with SmtpSink() as sink, app_settings(**smtp_env(sink.port, smtp_timeout_seconds=1)):
        sink.stall_seconds = 4
        clock = time.monotonic()
        task = schedule_escalation_notifications(handoff.id, engine=engine)
        # Scheduling returns at once: the click path never waits for SMTP.
        assert time.monotonic() - clock < 0.1
        await asyncio.wait_for(task, timeout=10)
        # The three sends run concurrently, each bounded by the 1 s timeout.
        assert time.monotonic() - clock < 3

        assert sink.received == []
        assert_handoff_intact(engine, handoff)
        rows = records(engine, handoff.id)
        assert {(r.status, r.last_error) for r in rows.values()} == {("failed", "Timed out after 1 s")}

        sink.stall_seconds = 0
        make_due(engine)
        assert await retry_due_deliveries(engine=engine) == 3
        assert set(sink.by_recipient()) == TEAM


async def test_one_refused_recipient_does_not_block_the_others(world, engine, sink):
    sink.refuse_recipients = {"sam@northwind.example"}
    handoff = escalate(world)

    await notify_escalation(handoff.id, engine=engine)

    assert set(sink.by_recipient()) == TEAM - {"sam@northwind.example"}
    rows = records(engine, handoff.id)
    assert rows["sam@northwind.example"].status == "failed"
    assert rows["sam@northwind.example"].last_error == "Recipient refused: 550 5.1.1 Mailbox unavailable"
    assert {rows[a].status for a in TEAM - {"sam@northwind.example"}} == {"sent"}
    with Session(engine) as s:
        summary = delivery_summary(db=s, actor=world.actor("riley"), handoff_id=handoff.id)
    assert summary.text == "Notified: 2 by email (1 failed)"


async def test_retries_stop_after_three_attempts(world, engine):
    handoff = escalate(world)
    with app_settings(**smtp_env(free_port())):
        await notify_escalation(handoff.id, engine=engine)
        for _ in range(MAX_ATTEMPTS - 1):
            make_due(engine)
            assert await retry_due_deliveries(engine=engine) == 3
        make_due(engine)
        assert await retry_due_deliveries(engine=engine) == 0

    rows = records(engine, handoff.id)
    assert {(r.status, r.attempts, r.next_attempt_at) for r in rows.values()} == {
        ("failed", MAX_ATTEMPTS, None)
    }


async def test_concurrent_sweeps_send_each_retry_once(world, engine):
    port = free_port()
    handoff = escalate(world)
    with app_settings(**smtp_env(port)):
        await notify_escalation(handoff.id, engine=engine)
        with SmtpSink(port) as sink:
            make_due(engine)
            retried = await asyncio.gather(*(retry_due_deliveries(engine=engine) for _ in range(3)))
    assert sum(retried) == 3
    assert set(sink.by_recipient()) == TEAM


async def test_an_interrupted_send_is_picked_up_by_the_sweep(world, engine, sink):
    handoff = escalate(world)
    await notify_escalation(handoff.id, engine=engine)
    sink.received.clear()
    # As if the process died between writing the records and sending.
    with Session(engine) as s:
        s.exec(
            update(DeliveryRecord)
            .where(
                DeliveryRecord.handoff_id == handoff.id, DeliveryRecord.recipient == "sam@northwind.example"
            )
            .values(status="queued", attempts=0, updated_at=utcnow() - timedelta(minutes=11))
        )
        s.commit()

    assert await retry_due_deliveries(engine=engine) == 1
    assert set(sink.by_recipient()) == {"sam@northwind.example"}
    assert records(engine, handoff.id)["sam@northwind.example"].status == "sent"


async def test_dispatch_never_raises_even_without_a_database(tmp_path):
    broken = make_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    try:
        await notify_escalation(uuid.uuid4(), engine=broken)
        assert await retry_due_deliveries(engine=broken) == 0
    finally:
        broken.dispose()
