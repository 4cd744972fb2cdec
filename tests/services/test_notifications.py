"""Escalation email against a real SMTP server (aiosmtpd on 127.0.0.1), on both databases.

Each email is an outbox job committed with the escalation; the tests run those jobs
through the real worker and handler (`tests.outbox_helpers.run_outbox`), with an
injectable clock for retries. Each test starts its own server (or deliberately none)
and stops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from escalation_app.domain import outbox
from escalation_app.domain.db import make_engine
from escalation_app.domain.deliveries import delivery_summary
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import OutboxJob, SessionHandoff, SupportSession
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.types import utcnow
from escalation_app.services import email
from tests.factories import World
from tests.fakes.smtp import SmtpSink, app_settings, free_port
from tests.outbox_helpers import Clock, clear_outbox, outbox_jobs, run_outbox, take_and_die, worker

FRONTEND = "https://desk.example.test"
SENDER = "Escalation Desk <desk@northwind.example>"
# The SMTP sink checks logins over plain TCP on purpose (no certificates in tests).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

TEAM = {"sam@northwind.example", "riley@northwind.example", "morgan@northwind.example"}
EMAIL = [JobKind.EMAIL]
POLICY = outbox.policy(JobKind.EMAIL)


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
    # Only this test's escalations have jobs (and this ends the read transaction: on
    # SQLite every transaction holds the write lock).
    clear_outbox(db)
    return world


@pytest.fixture
def sink():
    with SmtpSink() as server, app_settings(**smtp_env(server.port)):
        yield server


@pytest.fixture
def clock() -> Clock:
    # A little ahead, so jobs the test commits after this are due at once.
    return Clock(utcnow() + timedelta(seconds=5))


def escalate(world: World, owner: str = "alex", **kwargs) -> SessionHandoff:
    session_id = world.new_session(owner=owner)
    handoff = create_handoff(
        db=world.db, actor=world.actor(owner), session_id=session_id, intent="escalate", **kwargs
    )
    world.db.commit()
    return handoff


def records(engine, handoff_id) -> dict[str, OutboxJob]:
    """The handoff's email jobs (its delivery records) by recipient, read in a fresh session."""
    rows = outbox_jobs(engine, handoff_id=handoff_id, kind=JobKind.EMAIL)
    by_recipient = {r.recipient: r for r in rows}
    assert len(by_recipient) == len(rows), "two email jobs for one recipient"
    return by_recipient


def summary_text(world: World, engine, handoff, who: str = "riley") -> str:
    with Session(engine) as s:
        return delivery_summary(db=s, actor=world.actor(who), handoff_id=handoff.id).text


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

    # The escalation committed one email job per recipient; nothing is sent until they run.
    assert set(records(engine, handoff.id)) == TEAM
    assert sink.received == []
    assert await run_outbox(engine, kinds=EMAIL) == 3

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
    assert {(r.status, r.attempts, r.last_error, r.result) for r in rows.values()} == {
        ("done", 1, None, "accepted")
    }
    assert all(r.finished_at is not None for r in rows.values())
    # One message per job, with a Message-ID of its own that a resend would repeat.
    assert {mails[r.recipient].message["Message-ID"] for r in rows.values()} == {
        f"<escalation-desk.job-{r.id}@northwind.example>" for r in rows.values()
    }
    assert summary_text(world, engine, handoff) == "Notified: 3 by email"
    # Done jobs are not run again.
    assert await run_outbox(engine, kinds=EMAIL) == 0
    assert len(sink.received) == 3


async def test_targeted_escalation_tells_the_target_and_informs_the_rest(world, engine, sink):
    riley = world.users["riley"]
    handoff = escalate(world, target_user_id=riley.id)

    await run_outbox(engine, kinds=EMAIL)

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
    assert {r.status for r in records(engine, handoff.id).values()} == {"done"}


async def test_park_sends_nothing(world, engine, sink):
    session_id = world.new_session()
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="park")
    world.db.commit()

    assert await run_outbox(engine, kinds=[JobKind.EMAIL, JobKind.WEBHOOK]) == 0

    assert sink.received == []
    assert records(engine, handoff.id) == {}
    assert summary_text(world, engine, handoff) == "No notifications sent."


async def test_rolled_back_handoff_sends_nothing(world, engine, sink, monkeypatch):
    session_id = world.new_session()

    flushed: list[SessionHandoff] = []
    jobs: list[str] = []

    def commit_fails():
        world.db.flush()
        flushed.extend(
            obj
            for obj in world.db.identity_map.values()
            if isinstance(obj, SessionHandoff) and obj.session_id == session_id
        )
        jobs.extend(world.db.exec(select(OutboxJob.kind).where(OutboxJob.handoff_id == flushed[0].id)).all())
        raise RuntimeError("database went away at commit")

    # create_handoff gets all the way to its commit (handoff, notification rows and its
    # outbox jobs flushed, the id assigned) and then the transaction is lost.
    monkeypatch.setattr(world.db, "commit", commit_fails)
    with pytest.raises(RuntimeError):
        create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="escalate")
    assert len(flushed) == 1
    assert sorted(jobs) == ["assessment", "email", "email", "email", "live", "timer"]
    lost_id = flushed[0].id
    world.db.rollback()
    monkeypatch.undo()

    # No job survived the rollback, so the worker has nothing to send.
    assert outbox_jobs(engine) == []
    assert await run_outbox(engine, kinds=[JobKind.EMAIL, JobKind.WEBHOOK, JobKind.ASSESSMENT]) == 0
    assert sink.received == []
    with Session(engine) as s:
        assert s.get(SessionHandoff, lost_id) is None


async def test_several_workers_send_each_email_once(world, engine, sink):
    handoff = escalate(world)
    workers = [worker(engine, kinds=EMAIL) for _ in range(3)]
    taken = await asyncio.gather(*(w.run_due_once() for w in workers))
    await asyncio.gather(*(w.drain() for w in workers))
    assert sum(taken) == 3
    assert set(sink.by_recipient()) == TEAM  # by_recipient fails on a duplicate
    rows = records(engine, handoff.id)
    assert {(r.status, r.attempts) for r in rows.values()} == {("done", 1)}


async def test_without_smtp_email_is_recorded_skipped(world, engine):
    handoff = escalate(world)
    with app_settings(smtp_host="", frontend_url=FRONTEND):
        assert await run_outbox(engine, kinds=EMAIL) == 3
        # Skipped is final: nothing is retried.
        assert await run_outbox(engine, kinds=EMAIL, clock=Clock(utcnow() + POLICY.backoff[-1] * 2)) == 0

    rows = records(engine, handoff.id)
    assert set(rows) == TEAM
    assert {(r.status, r.last_error) for r in rows.values()} == {("skipped", "SMTP not configured")}
    with Session(engine) as s:
        summary = delivery_summary(db=s, actor=world.actor("morgan"), handoff_id=handoff.id)
    assert summary.email_skipped == 3
    assert summary.text == "Notified: email skipped (SMTP not configured)"


async def test_refused_connection_is_recorded_and_retried_once_the_server_is_up(world, engine, clock):
    port = free_port()  # nothing listens here yet
    handoff = escalate(world)
    with app_settings(**smtp_env(port)):
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3

        assert_handoff_intact(engine, handoff)
        rows = records(engine, handoff.id)
        assert set(rows) == TEAM
        for row in rows.values():
            assert (row.status, row.attempts) == ("pending", 1)
            assert row.last_error.startswith(
                f"Connection refused: Error connecting to 127.0.0.1 on port {port}"
            )
            # The first retry waits 30 s.
            assert row.run_at == clock.now + POLICY.retry_delay(1)
        assert summary_text(world, engine, handoff) == "Notified: 0 by email (3 failed)"
        clock.advance(seconds=29)
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 0  # not due yet

        with SmtpSink(port) as sink:
            clock.advance(seconds=1)
            assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3
        assert set(sink.by_recipient()) == TEAM

    rows = records(engine, handoff.id)
    assert {(r.status, r.attempts, r.last_error) for r in rows.values()} == {("done", 2, None)}
    assert summary_text(world, engine, handoff) == "Notified: 3 by email"


async def test_rejected_login_is_recorded_and_retried_once_accepted(world, engine, clock):
    handoff = escalate(world)
    with (
        SmtpSink(username="desk", password="s3cret") as sink,
        app_settings(**smtp_env(sink.port, smtp_username="desk", smtp_password="s3cret")),
    ):
        sink.accept_logins = False
        await run_outbox(engine, kinds=EMAIL, clock=clock)

        assert sink.received == []
        assert sink.login_attempts >= 3  # each message really tried to log in
        assert_handoff_intact(engine, handoff)
        rows = records(engine, handoff.id)
        assert {(r.status, r.attempts) for r in rows.values()} == {("pending", 1)}
        assert all(r.last_error.startswith("Authentication rejected: 535") for r in rows.values())

        sink.accept_logins = True
        clock.advance(seconds=POLICY.retry_delay(1).total_seconds())
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3
        assert set(sink.by_recipient()) == TEAM
    assert {r.status for r in records(engine, handoff.id).values()} == {"done"}


async def test_slow_server_times_out_without_slowing_the_caller(world, engine, clock):
    with (
        SmtpSink() as sink,
        app_settings(**smtp_env(sink.port, smtp_timeout_seconds=1, smtp_data_timeout_seconds=1)),
    ):
        sink.stall_seconds = 4
        started = time.monotonic()
        handoff = escalate(world)
        # The click path commits the jobs and never talks to SMTP.
        assert time.monotonic() - started < 2
        assert {r.status for r in records(engine, handoff.id).values()} == {"pending"}

        started = time.monotonic()
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3
        # The three sends run concurrently, each bounded by the 1 s timeout.
        assert time.monotonic() - started < 3

        assert sink.received == []
        assert_handoff_intact(engine, handoff)
        rows = records(engine, handoff.id)
        assert {(r.status, r.last_error) for r in rows.values()} == {("pending", "Timed out after 1 s")}

        sink.stall_seconds = 0
        clock.advance(seconds=POLICY.retry_delay(1).total_seconds())
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3
        assert set(sink.by_recipient()) == TEAM


async def test_a_server_slow_to_say_goodbye_gets_each_email_once(world, engine, sink, clock, monkeypatch):
    # The message counts as sent at the 250 after DATA; a QUIT that stalls changes nothing.
    monkeypatch.setattr(email, "QUIT_SECONDS", 0.2)
    sink.quit_stall_seconds = 3
    handoff = escalate(world)

    assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3

    rows = records(engine, handoff.id)
    assert {(r.status, r.attempts, r.last_error) for r in rows.values()} == {("done", 1, None)}
    clock.advance(days=1)
    assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 0
    assert set(sink.by_recipient()) == TEAM  # by_recipient fails on a duplicate


async def test_a_late_250_inside_the_data_timeout_gets_each_email_once(world, engine, clock):
    # Each SMTP step has 0.5 s, the server's answer to the message body 5 s: a server
    # that takes 1.5 s to accept has accepted, and the email is not sent again.
    env = smtp_env(0, smtp_timeout_seconds=0.5, smtp_data_timeout_seconds=5)
    with SmtpSink() as sink, app_settings(**{**env, "smtp_port": sink.port}):
        sink.accept_after_seconds = 1.5
        handoff = escalate(world)

        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3

        rows = records(engine, handoff.id)
        assert {(r.status, r.attempts, r.last_error) for r in rows.values()} == {("done", 1, None)}
        clock.advance(days=1)
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 0
        assert set(sink.by_recipient()) == TEAM


async def test_one_refused_recipient_does_not_block_the_others(world, engine, sink, clock):
    sink.refuse_recipients = {"sam@northwind.example"}
    handoff = escalate(world)

    await run_outbox(engine, kinds=EMAIL, clock=clock)

    assert set(sink.by_recipient()) == TEAM - {"sam@northwind.example"}
    rows = records(engine, handoff.id)
    sam = rows["sam@northwind.example"]
    # A refused recipient fails at once: retrying cannot fix it.
    assert (sam.status, sam.attempts) == ("failed", 1)
    assert sam.last_error == "Recipient refused: 550 5.1.1 Mailbox unavailable"
    assert {rows[a].status for a in TEAM - {"sam@northwind.example"}} == {"done"}
    assert summary_text(world, engine, handoff) == "Notified: 2 by email (1 failed)"
    clock.advance(minutes=10)
    assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 0


async def test_retries_stop_after_three_attempts(world, engine, clock):
    handoff = escalate(world)
    with app_settings(**smtp_env(free_port())):
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3
        for attempt in range(1, POLICY.max_attempts):
            clock.advance(seconds=POLICY.retry_delay(attempt).total_seconds())
            assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 3
        clock.advance(days=1)
        assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 0

    rows = records(engine, handoff.id)
    assert POLICY.max_attempts == 3
    assert {(r.status, r.attempts) for r in rows.values()} == {("failed", 3)}
    assert all(r.last_error.startswith("Connection refused") for r in rows.values())
    with Session(engine) as s:
        summary = delivery_summary(db=s, actor=world.actor("riley"), handoff_id=handoff.id)
    assert summary.text == "Notified: 0 by email (3 failed)"
    assert all(row.can_retry for row in summary.rows)


async def test_concurrent_workers_send_each_retry_once(world, engine, clock):
    port = free_port()
    handoff = escalate(world)
    with app_settings(**smtp_env(port)):
        await run_outbox(engine, kinds=EMAIL, clock=clock)
        with SmtpSink(port) as sink:
            clock.advance(seconds=POLICY.retry_delay(1).total_seconds())
            workers = [worker(engine, clock=clock, kinds=EMAIL) for _ in range(3)]
            retried = await asyncio.gather(*(w.run_due_once() for w in workers))
            await asyncio.gather(*(w.drain() for w in workers))
    assert sum(retried) == 3
    assert set(sink.by_recipient()) == TEAM
    assert {(r.status, r.attempts) for r in records(engine, handoff.id).values()} == {("done", 2)}


async def test_an_interrupted_send_is_run_again_once_its_lease_runs_out(world, engine, sink, clock):
    handoff = escalate(world)
    # A worker took one email and died before sending it.
    [lost] = take_and_die(engine, clock=clock, kinds=EMAIL, limit=1)
    assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 2
    assert lost.recipient not in sink.by_recipient()
    # Still inside its lease, nobody else takes it.
    clock.advance(seconds=POLICY.lease().total_seconds() - 1)
    assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 0

    clock.advance(seconds=2)
    assert await run_outbox(engine, kinds=EMAIL, clock=clock) == 1
    assert set(sink.by_recipient()) == TEAM
    row = records(engine, handoff.id)[lost.recipient]
    # The dead worker's try counts as an attempt.
    assert (row.status, row.attempts, row.locked_by != lost.locked_by) == ("done", 2, True)


async def test_the_worker_loop_survives_a_missing_database(tmp_path, caplog):
    broken = make_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    loop_worker = worker(broken, poll_interval=0.05)
    try:
        with caplog.at_level(logging.WARNING, logger="escalation_app.services.worker"):
            task = asyncio.create_task(loop_worker.run_forever())

            def failures() -> int:
                return sum("could not take jobs" in r.getMessage() for r in caplog.records)

            async with asyncio.timeout(10):
                while failures() < 2:
                    await asyncio.sleep(0.01)
            # It keeps trying instead of dying with the error.
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        broken.dispose()
