"""The outbox under faults: the database cut after commit, a process killed, workers racing.

(SMTP that accepts late or stalls on QUIT: tests/services/test_notifications.py.)

Real parts: PostgreSQL behind a TCP proxy the test cuts, backend processes killed with
SIGKILL, aiosmtpd counting what it accepted. Time moves by the test's clock, not sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, delete

from escalation_app.domain import outbox
from escalation_app.domain.db import make_engine
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import OutboxJob, SessionHandoff
from escalation_app.domain.types import utcnow
from escalation_app.services import notifications
from tests.conftest import ROOT
from tests.factories import World
from tests.fakes.smtp import SmtpSink, app_settings
from tests.fakes.tcp_proxy import TcpProxy
from tests.outbox_helpers import Clock, outbox_jobs, run_outbox, worker

TEAM = ("sam@northwind.example", "riley@northwind.example", "morgan@northwind.example")


def smtp_env(port: int, **extra) -> dict:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_username": "",
        "smtp_password": "",
        "smtp_starttls": "false",
        "smtp_timeout_seconds": 1,
        "smtp_data_timeout_seconds": 5,
        "anthropic_api_key": "",
        **extra,
    }


@pytest.fixture
def world(db) -> World:
    world = World(db)
    db.exec(delete(OutboxJob))  # the demo escalation's jobs are not this test's
    db.commit()
    return world


@pytest.fixture
def sink():
    with SmtpSink() as server, app_settings(**smtp_env(server.port)):
        yield server


def escalate(db: Session, world: World, summary: str = "Mail flow stopped") -> SessionHandoff:
    session_id = world.new_session(owner="alex", summary=summary)
    return create_handoff(db=db, actor=world.actor("alex"), session_id=session_id, intent="escalate")


def mails_per_recipient(sink: SmtpSink) -> Counter:
    return Counter(rcpt for item in sink.received for rcpt in item.rcpt_tos)


def assert_all_finished(engine) -> None:
    # Timers of the escalation clock wait for their instant: not unfinished work.
    unfinished = [
        (j.kind, j.status, j.last_error)
        for j in outbox_jobs(engine)
        if j.status not in ("done", "skipped") and not (j.kind == "timer" and j.status == "pending")
    ]
    assert unfinished == []


async def test_database_cut_right_after_commit_loses_no_side_effect(backend_url, world, sink):
    if not backend_url.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL")
    parts = urlsplit(backend_url)
    with TcpProxy(parts.hostname, parts.port or 5432) as proxy:
        engine = make_engine(proxy.url(backend_url))
        runner = worker(engine)
        runner.attach()  # this process commits: it hears of its own jobs at once
        try:
            with Session(engine, expire_on_commit=False) as db:
                handoffs = [escalate(db, world, f"Problem {n}") for n in range(3)]
            proxy.cut()
            # The committed process tries at once: its live pushes and the loop both hit the cut.
            with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a dead link
                await runner.run_due_once()
            assert all(j.status == "pending" for j in outbox_jobs(world.db.get_bind()))
            proxy.restore()
            await runner.drain()
        finally:
            runner.detach()
            engine.dispose()
    assert_all_finished(world.db.get_bind())
    # Every teammate got exactly one email per escalation, and every assessment is in.
    assert mails_per_recipient(sink) == Counter({address: 3 for address in TEAM})
    world.db.expire_all()
    assert {world.db.get(SessionHandoff, h.id).ai_status for h in handoffs} == {"ready"}


def _backend(mode: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.outbox_process", mode, *args],
        cwd=ROOT,
        env={**os.environ, **{k.upper(): str(v) for k, v in env.items()}},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_a_process_killed_right_after_its_commits_loses_nothing(backend_url, engine, world, sink):
    process = _backend("escalate", "4", env={"database_url": backend_url, **smtp_env(sink.port)})
    output, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, output
    assert "committed" in output
    # Killed before any side effect ran: every job waits for the next start.
    assert {j.status for j in outbox_jobs(engine)} == {"pending"}
    assert sink.received == []

    await run_outbox(engine)  # the next start's worker

    assert_all_finished(engine)
    assert mails_per_recipient(sink) == Counter(dict.fromkeys(TEAM, 4))
    assessments = outbox_jobs(engine, kind="assessment")
    assert len(assessments) == 4 and all(j.result == "stored" for j in assessments)


async def test_a_worker_killed_mid_send_is_replaced_once_its_lease_runs_out(backend_url, engine, world, sink):
    sink.stall_seconds = 30  # DATA hangs: the killed worker never gets an answer
    handoff = escalate(world.db, world)
    process = _backend("work", env={"database_url": backend_url, **smtp_env(sink.port)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(j.status == "running" for j in outbox_jobs(engine, kind="email")) == 3:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the worker did not start sending")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    sink.stall_seconds = 0
    clock = Clock()
    # Still leased to the dead worker: nobody takes its emails yet.
    assert await run_outbox(engine, kinds=["email"], clock=clock) == 0
    clock.advance(seconds=outbox.policy("email").lease().total_seconds() + 1)
    assert await run_outbox(engine, kinds=["email"], clock=clock) == 3
    emails = outbox_jobs(engine, kind="email", handoff_id=handoff.id)
    assert [(j.status, j.attempts) for j in emails] == [("done", 2)] * 3
    assert mails_per_recipient(sink) == Counter(dict.fromkeys(TEAM, 1))


async def test_two_workers_share_the_due_jobs_and_run_each_once(backend_url, engine, world, sink):
    if not backend_url.startswith("postgresql"):
        pytest.skip("several workers run on PostgreSQL")
    for n in range(10):
        escalate(world.db, world, f"Problem {n}")
    ran: Counter = Counter()

    async def counting(job, engine):
        ran[job.id] += 1
        await asyncio.sleep(0)
        return await notifications.run_email_job(job, engine)

    clock = Clock(utcnow() + timedelta(seconds=5))
    first = worker(engine, clock=clock, kinds=["email"], handlers={"email": counting}, concurrency=4)
    second = worker(engine, clock=clock, kinds=["email"], handlers={"email": counting}, concurrency=4)
    await asyncio.gather(first.drain(), second.drain())
    assert len(ran) == 30 and set(ran.values()) == {1}
    assert {j.locked_by for j in outbox_jobs(engine, kind="email")} == {first.name, second.name}
    assert mails_per_recipient(sink) == Counter(dict.fromkeys(TEAM, 10))
