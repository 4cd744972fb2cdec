"""Run the outbox in tests: the real worker and handlers, on the test's engine and clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select

from escalation_app.domain import outbox
from escalation_app.domain.models import OutboxJob
from escalation_app.domain.types import utcnow
from escalation_app.services.worker import Worker


class Clock:
    """An injectable clock: time moves only when the test says so."""

    def __init__(self, start: datetime | None = None):
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def worker(
    engine: Engine, *, clock: Clock | None = None, kinds: Iterable[str] | None = None, **kwargs
) -> Worker:
    """A worker on `engine` (nothing else runs it: tests decide when jobs run)."""
    return Worker(
        engine=engine,
        clock=clock or Clock(utcnow() + timedelta(seconds=5)),
        kinds=list(kinds) if kinds is not None else None,
        record_retry_seconds=2,
        **kwargs,
    )


async def run_outbox(
    engine: Engine, *, kinds: Iterable[str] | None = None, clock: Clock | None = None, timeout: float = 30
) -> int:
    """Run every due job (of `kinds`) to its outcome, as the app's worker would; how many ran.

    Without a clock, "now" is a few seconds ahead, so live pushes (due shortly after
    commit, when the committing process has not run them) count as due too.
    """
    return await worker(engine, clock=clock, kinds=kinds).drain(timeout=timeout)


def outbox_jobs(engine: Engine, **where) -> list[OutboxJob]:
    """Jobs matching `where` (column=value), read in a fresh session, oldest first."""
    with Session(engine) as s:
        query = select(OutboxJob).order_by(col(OutboxJob.id))
        for name, value in where.items():
            query = query.where(getattr(OutboxJob, name) == value)
        return list(s.exec(query).all())


def clear_outbox(db: Session) -> None:
    """Drop every job (the demo data's escalation has its own), so a test sees only its jobs."""
    db.exec(delete(OutboxJob))
    db.commit()


def take_and_die(
    engine: Engine, *, clock: Clock, kinds: Iterable[str], limit: int = 20
) -> list[outbox.JobView]:
    """A worker takes due jobs (a lease, an attempt) and dies before running them."""
    with Session(engine) as db:
        return outbox.take_due(db, worker_id="dead-worker", now=clock(), limit=limit, kinds=list(kinds))
