"""Runs the escalation clock's due timers (outbox jobs of kind `timer`).

The decision and every effect of a firing (bells, email and chat jobs, the PSA note,
the live push) are one transaction of `domain.clock.fire`, under the session's row
lock; this module only gives it a thread and a database session.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from escalation_app.domain import clock, outbox
from escalation_app.domain.db import session_scope


async def run_timer_job(job: outbox.JobView, engine: Engine | None = None) -> str:
    """Fire one due timer: a re-escalation level, a stalled-claim reminder, a wake-up."""

    def run() -> str:
        with session_scope(engine) as db:
            return clock.fire(db, job)

    return await asyncio.to_thread(run)
