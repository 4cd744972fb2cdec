"""The outbox: every side effect of a change, written in the change's own transaction.

A domain verb that causes work (`create_handoff`, `claim_handoff`, a stored
assessment) calls `enqueue` before it commits. If the transaction rolls back there is
no job; once it commits, no crash can lose one. `services.worker` takes due jobs with
a lease (`take_due`), runs each through the handler of its kind, and records the
outcome here (`complete`, `fail`, `skip`, `defer`). A lease that runs out means the
worker died: the job is taken again. Every outcome write is fenced by the attempt
number and the worker's id, so a worker whose lease expired cannot overwrite the
newer attempt's result.

After a commit that added jobs, the committing process is told at once
(`set_commit_listener`); on PostgreSQL the same transaction sends a NOTIFY so other
workers wake too. Polling is only the fallback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, event, or_, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from escalation_app.domain.models import JobStatus, OutboxJob
from escalation_app.domain.types import utcnow
from escalation_app.settings import get_settings

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "escalation_outbox"
ERROR_MAX = 1000
RESULT_MAX = 500
RECIPIENT_MAX = 500
KEY_MAX = 200


class JobKind(StrEnum):
    # Push a committed change to open tabs (queue cards, bells, handoff screens).
    LIVE = "live"
    EMAIL = "email"
    WEBHOOK = "webhook"
    PSA_NOTE = "psa_note"
    ASSESSMENT = "assessment"
    # The resolved case's assessment graded against the fix by Claude (`domain.grading`).
    GRADING = "grading"
    # A due instant of the escalation clock (`domain.clock`): a re-escalation level, a
    # stalled-claim reminder, a snoozed park's wake-up.
    TIMER = "timer"


class JobSkipped(Exception):
    """A handler has nothing to do (SMTP not configured, webhook removed); the reason is kept."""


class JobRefused(Exception):
    """A failure that retrying cannot fix (ticket not found, credentials rejected)."""


class JobWaits(Exception):
    """Not yet: run again at `until`, without counting this attempt."""

    def __init__(self, until: datetime, reason: str = ""):
        super().__init__(reason or f"waiting until {until.isoformat()}")
        self.until = until


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """How one kind of job is run: lease length, attempts, waits between attempts."""

    lease: Callable[[], timedelta]
    max_attempts: int
    # Wait before attempt 2, 3, …; the last one repeats.
    backoff: tuple[timedelta, ...]

    def retry_delay(self, attempts: int) -> timedelta:
        return self.backoff[min(max(attempts, 1), len(self.backoff)) - 1]


def _fixed(seconds: float) -> Callable[[], timedelta]:
    return lambda: timedelta(seconds=seconds)


def _assessment_lease() -> timedelta:
    # The assessment enforces its own budget; the lease outlasts it and the store.
    return timedelta(seconds=get_settings().escalation_ai_assessment_timeout_seconds + 30)


POLICIES: dict[str, KindPolicy] = {
    JobKind.LIVE: KindPolicy(_fixed(15), 6, tuple(timedelta(seconds=s) for s in (1, 2, 5, 10, 30))),
    # The email handler gives up on a send well inside its lease (services.email).
    JobKind.EMAIL: KindPolicy(_fixed(60), 3, (timedelta(seconds=30), timedelta(minutes=2))),
    JobKind.WEBHOOK: KindPolicy(_fixed(30), 3, (timedelta(seconds=30), timedelta(minutes=2))),
    JobKind.PSA_NOTE: KindPolicy(_fixed(60), 3, (timedelta(seconds=30), timedelta(minutes=2))),
    JobKind.ASSESSMENT: KindPolicy(_assessment_lease, 3, (timedelta(seconds=10), timedelta(minutes=1))),
    JobKind.GRADING: KindPolicy(_assessment_lease, 3, (timedelta(seconds=30), timedelta(minutes=2))),
    JobKind.TIMER: KindPolicy(_fixed(30), 5, tuple(timedelta(seconds=s) for s in (5, 15, 60))),
}


def policy(kind: str) -> KindPolicy:
    return POLICIES.get(kind) or KindPolicy(_fixed(60), 3, (timedelta(seconds=30),))


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as its handler sees it (a plain copy, safe outside the session)."""

    id: int
    kind: str
    account_id: int | None
    handoff_id: uuid.UUID | None
    recipient: str
    payload: dict
    attempts: int
    max_attempts: int
    locked_by: str | None
    run_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, job: OutboxJob) -> JobView:
        assert job.id is not None
        return cls(
            id=job.id,
            kind=job.kind,
            account_id=job.account_id,
            handoff_id=job.handoff_id,
            recipient=job.recipient,
            payload=dict(job.payload or {}),
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            locked_by=job.locked_by,
            run_at=job.run_at,
            created_at=job.created_at,
        )


# ---------------------------------------------------------------------- enqueue

_ADDED = "outbox.added"
_COMMITTED = "outbox.flushed"
_listener: Callable[[list[JobView]], None] | None = None


def set_commit_listener(listener: Callable[[list[JobView]], None] | None) -> None:
    """Call `listener(jobs)` after every commit that added jobs (from the committing thread)."""
    global _listener
    _listener = listener


def enqueue(
    db: Session,
    *,
    kind: JobKind | str,
    account_id: int | None,
    handoff_id: uuid.UUID | None = None,
    recipient: str = "",
    payload: dict | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
    fresh: bool = False,
) -> OutboxJob | None:
    """Add a job to the caller's transaction (not committed); None if `dedupe_key` exists.

    `run_at` (UTC) delays the job: a timer. The job runs when the transaction commits
    and its time has come, at least once and, through its handler's idempotence,
    with its effect happening once. `fresh`: the key names something this transaction
    created (a new handoff), so it cannot exist yet and is not looked up (the unique
    index still guards it); this keeps the click's transaction to one batched INSERT.
    """
    kind = JobKind(kind)
    key = dedupe_key[:KEY_MAX] if dedupe_key else None
    if key is not None and not fresh:
        pending = [j for j in db.info.get(_ADDED, []) if j.dedupe_key == key]
        if pending or db.exec(select(OutboxJob.id).where(OutboxJob.dedupe_key == key)).first() is not None:
            return None
    now = now or utcnow()
    job = OutboxJob(
        kind=kind,
        account_id=account_id,
        handoff_id=handoff_id,
        recipient=(recipient or "")[:RECIPIENT_MAX],
        payload=payload or {},
        dedupe_key=key,
        status=JobStatus.PENDING,
        run_at=run_at or now,
        max_attempts=policy(kind).max_attempts,
        created_at=now,
        updated_at=now,
    )
    db.add(job)
    db.info.setdefault(_ADDED, []).append(job)
    return job


def record_finished(
    db: Session,
    *,
    kind: JobKind | str,
    account_id: int | None,
    recipient: str,
    payload: dict,
    error: str | None,
) -> OutboxJob:
    """Record an effect that was carried out on the spot (a "Send test" post), not run by a worker."""
    now = utcnow()
    job = OutboxJob(
        kind=JobKind(kind),
        account_id=account_id,
        recipient=recipient[:RECIPIENT_MAX],
        payload=payload,
        status=JobStatus.FAILED if error else JobStatus.DONE,
        attempts=1,
        max_attempts=1,
        last_error=error[:ERROR_MAX] if error else None,
        created_at=now,
        updated_at=now,
        finished_at=now,
    )
    db.add(job)
    return job


@event.listens_for(OrmSession, "before_commit")
def _notify_other_workers(session: OrmSession) -> None:
    if not (session.info.get(_ADDED) or session.info.get(_COMMITTED)):
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Delivered to listeners only when this transaction commits.
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


@event.listens_for(OrmSession, "after_flush_postexec")
def _remember_flushed(session: OrmSession, _context) -> None:
    added = session.info.pop(_ADDED, None)
    if added:
        session.info.setdefault(_COMMITTED, []).extend(JobView.of(job) for job in added if job.id is not None)


@event.listens_for(OrmSession, "after_commit")
def _tell_listener(session: OrmSession) -> None:
    jobs = session.info.pop(_COMMITTED, None)
    session.info.pop(_ADDED, None)
    if jobs is not None and _listener is not None:
        try:
            # None entries only ask for a wake-up (a released or re-run job).
            _listener([job for job in jobs if job is not None])
        except Exception:
            # The jobs are committed; polling runs them if the wake-up failed.
            logger.exception("outbox commit listener failed")


@event.listens_for(OrmSession, "after_rollback")
def _forget_rolled_back(session: OrmSession) -> None:
    session.info.pop(_ADDED, None)
    session.info.pop(_COMMITTED, None)


# ---------------------------------------------------------------------- taking and recording


def take_due(
    db: Session,
    *,
    worker_id: str,
    now: datetime | None = None,
    limit: int = 20,
    kinds: Iterable[str] | None = None,
) -> list[JobView]:
    """Lease up to `limit` due jobs to `worker_id` and commit; oldest due first.

    Due: pending with `run_at` passed, or running with an expired lease (its worker
    died; that counts as an attempt). PostgreSQL skips rows another worker is taking
    (`FOR UPDATE SKIP LOCKED`); SQLite's `BEGIN IMMEDIATE` lets one taker in at a time.
    """
    now = now or utcnow()
    due = or_(
        and_(col(OutboxJob.status) == JobStatus.PENDING, col(OutboxJob.run_at) <= now),
        and_(col(OutboxJob.status) == JobStatus.RUNNING, col(OutboxJob.lease_until) < now),
    )
    query = select(OutboxJob).where(due)
    if kinds is not None:
        query = query.where(col(OutboxJob.kind).in_(list(kinds)))
    rows = db.exec(
        query.order_by(col(OutboxJob.run_at), col(OutboxJob.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    taken: list[JobView] = []
    for job in rows:
        if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
            # Its last attempt died with its worker.
            job.status = JobStatus.FAILED
            job.last_error = (job.last_error or "Interrupted before it finished")[:ERROR_MAX]
            job.lease_until = None
            job.finished_at = now
            job.updated_at = now
            db.add(job)
            continue
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.locked_by = worker_id[:64]
        job.lease_until = now + policy(job.kind).lease()
        job.updated_at = now
        db.add(job)
        taken.append(JobView.of(job))
    db.commit()
    return taken


def next_run_at(db: Session) -> datetime | None:
    """When the next pending job is due (for the worker's sleep), or None."""
    return db.exec(
        select(OutboxJob.run_at)
        .where(OutboxJob.status == JobStatus.PENDING)
        .order_by(col(OutboxJob.run_at))
        .limit(1)
    ).first()


def _fenced(job: JobView):
    return update(OutboxJob).where(
        col(OutboxJob.id) == job.id,
        col(OutboxJob.status) == JobStatus.RUNNING,
        col(OutboxJob.locked_by) == job.locked_by,
        col(OutboxJob.attempts) == job.attempts,
    )


def _apply(db: Session, statement) -> bool:
    changed = db.exec(statement.returning(col(OutboxJob.id))).first() is not None
    db.commit()
    return changed


def complete(db: Session, job: JobView, *, result: str | None = None, now: datetime | None = None) -> bool:
    """Record success and commit; False if this attempt no longer owns the job."""
    now = now or utcnow()
    return _apply(
        db,
        _fenced(job).values(
            status=JobStatus.DONE,
            result=result[:RESULT_MAX] if result else None,
            last_error=None,
            lease_until=None,
            finished_at=now,
            updated_at=now,
        ),
    )


def fail(db: Session, job: JobView, error: str, *, retry: bool = True, now: datetime | None = None) -> bool:
    """Record a failed attempt and commit: due again after the kind's backoff, or failed for good."""
    now = now or utcnow()
    message = (error or "Unknown error")[:ERROR_MAX]
    if retry and job.attempts < job.max_attempts:
        values = {
            "status": JobStatus.PENDING,
            "run_at": now + policy(job.kind).retry_delay(job.attempts),
        }
    else:
        values = {"status": JobStatus.FAILED, "finished_at": now}
    return _apply(db, _fenced(job).values(last_error=message, lease_until=None, updated_at=now, **values))


def skip(db: Session, job: JobView, reason: str, *, now: datetime | None = None) -> bool:
    """Record that the job has nothing to do, and why; commit."""
    now = now or utcnow()
    return _apply(
        db,
        _fenced(job).values(
            status=JobStatus.SKIPPED,
            last_error=reason[:ERROR_MAX],
            lease_until=None,
            finished_at=now,
            updated_at=now,
        ),
    )


def defer(db: Session, job: JobView, until: datetime, *, now: datetime | None = None) -> bool:
    """Put the job back until `until` without counting this attempt (it was waiting, not failing)."""
    now = now or utcnow()
    return _apply(
        db,
        _fenced(job).values(
            status=JobStatus.PENDING,
            attempts=OutboxJob.attempts - 1,
            run_at=until,
            lease_until=None,
            updated_at=now,
        ),
    )


def complete_unleased(db: Session, job_id: int, *, now: datetime | None = None) -> bool:
    """Mark a pending job done that the committing process ran straight away (live pushes)."""
    now = now or utcnow()
    return _apply(
        db,
        update(OutboxJob)
        .where(col(OutboxJob.id) == job_id, col(OutboxJob.status) == JobStatus.PENDING)
        .values(status=JobStatus.DONE, attempts=1, finished_at=now, updated_at=now),
    )


def release(db: Session, dedupe_key: str, *, now: datetime | None = None) -> bool:
    """Make a waiting job due now (not committed): e.g. the PSA note once the assessment is in."""
    now = now or utcnow()
    result = db.exec(
        update(OutboxJob)
        .where(
            col(OutboxJob.dedupe_key) == dedupe_key,
            col(OutboxJob.status) == JobStatus.PENDING,
            col(OutboxJob.run_at) > now,
        )
        .values(run_at=now, updated_at=now)
    )
    if result.rowcount:
        _wake_only(db)
    return bool(result.rowcount)


def _wake_only(db: Session) -> None:
    """Wake the workers at commit, as for a new job (NOTIFY and the commit listener)."""
    marker = db.info.setdefault(_COMMITTED, [])
    if not marker:
        marker.append(None)


def rerun(db: Session, job: OutboxJob, *, now: datetime | None = None) -> None:
    """Run a finished or failed job again from its first attempt (not committed): "Retry"."""
    now = now or utcnow()
    job.status = JobStatus.PENDING
    job.attempts = 0
    job.run_at = now
    job.lease_until = None
    job.locked_by = None
    job.last_error = None
    job.finished_at = None
    job.updated_at = now
    db.add(job)
    _wake_only(db)


def find(db: Session, dedupe_key: str) -> OutboxJob | None:
    return db.exec(select(OutboxJob).where(OutboxJob.dedupe_key == dedupe_key)).first()


def jobs_of_handoff(db: Session, handoff_id: uuid.UUID, kinds: Iterable[str]) -> list[OutboxJob]:
    """A handoff's jobs of `kinds`, in a stable order (kind, recipient, id)."""
    return list(
        db.exec(
            select(OutboxJob)
            .where(col(OutboxJob.handoff_id) == handoff_id, col(OutboxJob.kind).in_(list(kinds)))
            .order_by(col(OutboxJob.kind), col(OutboxJob.recipient), col(OutboxJob.id))
        ).all()
    )
