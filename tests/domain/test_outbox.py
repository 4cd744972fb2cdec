"""The outbox on both databases: jobs commit with their change, leases, retries, fencing, races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, col, delete, select

from escalation_app.domain import outbox
from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import JobStatus, OutboxJob, SessionHandoff
from escalation_app.domain.types import utcnow
from tests.factories import World


@pytest.fixture
def world(db) -> World:
    world = World(db)
    # The demo data's own escalation has jobs; each test starts from an empty outbox.
    db.exec(delete(OutboxJob))
    db.commit()
    return world


@pytest.fixture
def heard():
    """What the commit listener was told, commit by commit."""
    calls: list[list[outbox.JobView]] = []
    outbox.set_commit_listener(calls.append)
    yield calls
    outbox.set_commit_listener(None)


def jobs(db: Session, **where) -> list[OutboxJob]:
    db.expire_all()
    query = select(OutboxJob).order_by(col(OutboxJob.id))
    for name, value in where.items():
        query = query.where(getattr(OutboxJob, name) == value)
    return list(db.exec(query).all())


def escalate(world: World, intent: str = "escalate", owner: str = "alex") -> SessionHandoff:
    session_id = world.new_session(owner=owner)
    return create_handoff(db=world.db, actor=world.actor(owner), session_id=session_id, intent=intent)


def test_an_escalation_commits_with_all_of_its_jobs(world, heard):
    handoff = escalate(world)
    kinds = sorted((j.kind, j.recipient) for j in jobs(world.db, handoff_id=handoff.id))
    assert kinds == [
        ("assessment", ""),
        ("email", "morgan@northwind.example"),
        ("email", "riley@northwind.example"),
        ("email", "sam@northwind.example"),
        ("live", ""),
        # The escalation clock's level 2, due at the response target (`domain.clock`).
        ("timer", "level"),
    ]
    assert all(j.status == JobStatus.PENDING and j.attempts == 0 for j in jobs(world.db))
    # The committing process heard of exactly these jobs, once.
    assert len(heard) == 1
    assert sorted(j.kind for j in heard[0]) == ["assessment", "email", "email", "email", "live", "timer"]
    live = next(j for j in heard[0] if j.kind == "live")
    assert live.payload == {"event": "created", "handoff_id": str(handoff.id)}
    # Another worker runs the live push only if the committing process has not by then.
    assert live.run_at > live.created_at


def test_a_park_only_pushes_live(world):
    handoff = escalate(world, intent="park")
    assert [j.kind for j in jobs(world.db, handoff_id=handoff.id)] == ["live"]


def test_a_change_that_fails_leaves_no_job(world, heard):
    session_id = world.new_session(owner="alex")
    before = len(jobs(world.db))
    heard.clear()
    with pytest.raises(InvalidInput):
        create_handoff(
            db=world.db,
            actor=world.actor("alex"),
            session_id=session_id,
            intent="escalate",
            target_user_id=9999,
        )
    world.db.rollback()
    outbox.enqueue(world.db, kind="email", account_id=None, recipient="x@example.com")
    world.db.flush()
    world.db.rollback()
    assert len(jobs(world.db)) == before
    assert heard == []


def test_a_claim_pushes_once_and_a_repeated_claim_adds_nothing(world, heard):
    handoff = escalate(world)
    heard.clear()
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id)
    live = [j for j in jobs(world.db, kind="live") if j.payload["event"] == "claimed"]
    assert len(live) == 1 and len(heard) == 1


def test_a_dedupe_key_makes_a_job_once(world):
    first = outbox.enqueue(world.db, kind="email", account_id=None, recipient="a", dedupe_key="k")
    again = outbox.enqueue(world.db, kind="email", account_id=None, recipient="a", dedupe_key="k")
    world.db.commit()
    later = outbox.enqueue(world.db, kind="email", account_id=None, recipient="a", dedupe_key="k")
    world.db.commit()
    assert first is not None and again is None and later is None
    assert len(jobs(world.db, dedupe_key="k")) == 1


def _one_job(db: Session, now, kind: str = "webhook", run_at=None) -> int:
    job = outbox.enqueue(db, kind=kind, account_id=None, recipient="r", run_at=run_at, now=now)
    db.commit()
    return job.id


def test_a_leased_job_is_not_taken_twice_until_its_lease_runs_out(world):
    now = utcnow()
    job_id = _one_job(world.db, now)
    taken = outbox.take_due(world.db, worker_id="w1", now=now)
    assert [(j.id, j.attempts, j.locked_by) for j in taken] == [(job_id, 1, "w1")]
    lease = outbox.policy("webhook").lease()
    assert outbox.take_due(world.db, worker_id="w2", now=now + lease - timedelta(seconds=1)) == []
    # w1 died: its lease runs out and w2 runs the job again, as attempt 2.
    again = outbox.take_due(world.db, worker_id="w2", now=now + lease + timedelta(seconds=1))
    assert [(j.id, j.attempts, j.locked_by) for j in again] == [(job_id, 2, "w2")]
    # w1 comes back and reports: it no longer owns the job, nothing changes.
    assert not outbox.complete(world.db, taken[0], result="late", now=now)
    assert outbox.complete(world.db, again[0], result="ok", now=now)
    row = jobs(world.db)[0]
    assert (row.status, row.result, row.attempts, row.lease_until) == ("done", "ok", 2, None)


def test_timers_wait_for_their_time(world):
    now = utcnow()
    _one_job(world.db, now, run_at=now + timedelta(minutes=5))
    assert outbox.take_due(world.db, worker_id="w", now=now) == []
    assert outbox.next_run_at(world.db) == now + timedelta(minutes=5)
    assert len(outbox.take_due(world.db, worker_id="w", now=now + timedelta(minutes=5))) == 1


def test_failures_back_off_then_give_up_and_keep_the_error(world):
    now = utcnow()
    _one_job(world.db, now, kind="email")
    policy = outbox.policy("email")
    when = now
    for attempt in range(1, policy.max_attempts + 1):
        [job] = outbox.take_due(world.db, worker_id="w", now=when)
        assert job.attempts == attempt
        assert outbox.fail(world.db, job, f"refused {attempt}", now=when)
        row = jobs(world.db)[0]
        if attempt < policy.max_attempts:
            assert row.status == "pending"
            assert row.run_at == when + policy.retry_delay(attempt)
            assert outbox.take_due(world.db, worker_id="w", now=row.run_at - timedelta(seconds=1)) == []
            when = row.run_at
    row = jobs(world.db)[0]
    assert (row.status, row.last_error, row.finished_at) == ("failed", "refused 3", when)
    assert outbox.take_due(world.db, worker_id="w", now=when + timedelta(days=1)) == []


def test_a_refusal_fails_at_once_and_a_skip_keeps_its_reason(world):
    now = utcnow()
    _one_job(world.db, now)
    _one_job(world.db, now)
    first, second = outbox.take_due(world.db, worker_id="w", now=now)
    outbox.fail(world.db, first, "HTTP 404", retry=False, now=now)
    outbox.skip(world.db, second, "Webhook no longer configured", now=now)
    assert [(j.status, j.last_error) for j in jobs(world.db)] == [
        ("failed", "HTTP 404"),
        ("skipped", "Webhook no longer configured"),
    ]


def test_waiting_does_not_use_up_attempts(world):
    now = utcnow()
    _one_job(world.db, now, kind="psa_note")
    for _ in range(5):
        [job] = outbox.take_due(world.db, worker_id="w", now=now)
        outbox.defer(world.db, job, now + timedelta(seconds=2), now=now)
        now += timedelta(seconds=2)
    row = jobs(world.db)[0]
    assert (row.status, row.attempts) == ("pending", 0)


def test_a_job_whose_last_attempt_died_fails_instead_of_running_forever(world):
    now = utcnow()
    _one_job(world.db, now)
    lease = outbox.policy("webhook").lease()
    for _ in range(outbox.policy("webhook").max_attempts):
        assert len(outbox.take_due(world.db, worker_id="w", now=now)) == 1
        now += lease + timedelta(seconds=1)
    assert outbox.take_due(world.db, worker_id="w", now=now) == []
    row = jobs(world.db)[0]
    assert row.status == "failed" and "Interrupted" in row.last_error


def test_released_and_rerun_jobs_wake_the_workers(world, heard):
    now = utcnow()
    job = outbox.enqueue(
        world.db, kind="psa_note", account_id=None, run_at=now + timedelta(hours=1), dedupe_key="p", now=now
    )
    world.db.commit()
    heard.clear()
    assert outbox.release(world.db, "p", now=now)
    world.db.commit()
    assert heard == [[]]
    assert jobs(world.db)[0].run_at == now
    [taken] = outbox.take_due(world.db, worker_id="w", now=now)
    outbox.fail(world.db, taken, "boom", retry=False, now=now)
    outbox.rerun(world.db, world.db.get(OutboxJob, job.id), now=now)
    world.db.commit()
    row = jobs(world.db)[0]
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)


def test_concurrent_takers_run_every_job_exactly_once(engine, world):
    for _ in range(60):
        outbox.enqueue(world.db, kind="webhook", account_id=None, recipient="r")
    world.db.commit()
    taken: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def taker(name: str) -> None:
        try:
            with Session(engine, expire_on_commit=False) as db:
                while True:
                    batch = outbox.take_due(db, worker_id=name, limit=3)
                    if not batch:
                        return
                    for job in batch:
                        assert outbox.complete(db, job, result=name)
                    with lock:
                        taken.extend(job.id for job in batch)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=taker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(taken) == sorted(j.id for j in jobs(world.db))
    assert len(taken) == len(set(taken)) == 60
    assert all(j.status == "done" and j.attempts == 1 for j in jobs(world.db))
