"""(g) Outbox throughput: jobs per second through worker processes on PostgreSQL.

Escalations are committed first (each with its jobs: a live push, three emails, the AI
assessment, offline here), then N worker processes (`python -m
escalation_app.services.worker`) are started and timed until no job is pending or
running. Email goes to a local SMTP server that accepts at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlmodel import Session, select

from bench import infra
from bench.infra import log


def _seed(db_url: str, escalations: int) -> int:
    from escalation_app.domain.actors import Actor
    from escalation_app.domain.db import make_engine
    from escalation_app.domain.demo_data import load_demo_data
    from escalation_app.domain.handoffs import create_handoff
    from escalation_app.domain.models import OutboxJob, SessionStep, SupportSession, User
    from escalation_app.domain.outbox import JobKind

    engine = make_engine(db_url)
    try:
        with Session(engine, expire_on_commit=False) as db:
            load_demo_data(db)
            db.commit()
            alex = db.exec(select(User).where(User.email == "alex@northwind.example")).one()
            for n in range(escalations):
                support_session = SupportSession(
                    account_id=alex.account_id,
                    team_id=alex.team_id,
                    owner_id=alex.id,
                    problem_summary=f"Outbox bench {n}",
                )
                db.add(support_session)
                db.flush()
                db.add(SessionStep(session_id=support_session.id, position=1, tried="Restarted the service"))
                db.commit()
                create_handoff(
                    db=db, actor=Actor.from_user(alex), session_id=support_session.id, intent="escalate"
                )
            return db.exec(
                select(func.count())
                .select_from(OutboxJob)
                .where(OutboxJob.status == "pending", OutboxJob.kind != JobKind.TIMER)
            ).one()
    finally:
        engine.dispose()


def _span(db_url: str) -> float:
    """Seconds from the first job finished to the last: the workers' busy time, start-up excluded."""
    from escalation_app.domain.db import make_engine
    from escalation_app.domain.models import OutboxJob

    engine = make_engine(db_url)
    try:
        with Session(engine) as db:
            first, last = db.exec(
                select(func.min(OutboxJob.finished_at), func.max(OutboxJob.finished_at)).where(
                    OutboxJob.status.in_(["done", "skipped"])
                )
            ).one()
    finally:
        engine.dispose()
    return (last - first).total_seconds() if first and last else 0.0


def _left(db_url: str) -> tuple[int, int]:
    from escalation_app.domain.db import make_engine
    from escalation_app.domain.models import OutboxJob
    from escalation_app.domain.outbox import JobKind

    engine = make_engine(db_url)
    try:
        with Session(engine) as db:
            # The escalation clock's timers are due minutes to hours later: not work to drain.
            rows = dict(
                db.exec(
                    select(OutboxJob.status, func.count())
                    .where(OutboxJob.kind != JobKind.TIMER)
                    .group_by(OutboxJob.status)
                ).all()
            )
    finally:
        engine.dispose()
    return rows.get("pending", 0) + rows.get("running", 0), rows.get("failed", 0)


def _one(workers: int, escalations: int) -> dict:
    with infra.pg_database() as db_url, infra.fast_smtp() as smtp_port:
        jobs = _seed(db_url, escalations)
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "ANTHROPIC_API_KEY": "",
            "PSA_ENCRYPTION_KEY": os.environ.get("PSA_ENCRYPTION_KEY") or Fernet.generate_key().decode(),
        }
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "escalation_app.services.worker"],
                cwd=infra.ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            deadline = started + 300
            left, failed = jobs, 0
            while time.monotonic() < deadline:
                left, failed = _left(db_url)
                if left == 0:
                    break
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            busy = _span(db_url)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    row = {
        "workers": workers,
        "escalations": escalations,
        "jobs": jobs,
        "left": left,
        "failed": failed,
        "seconds_with_startup": round(elapsed, 2),
        "busy_seconds": round(busy, 2),
        "jobs_per_s": round((jobs - left) / busy, 1) if busy else None,
    }
    log(f"(g) outbox {row}")
    return row


def run_outbox_throughput(escalations: int, worker_counts: list[int]) -> dict:
    """Time the outbox draining `escalations` escalations' jobs with each worker count."""
    return {"rows": [_one(n, escalations) for n in worker_counts]}
