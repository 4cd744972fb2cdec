"""What happens after a handoff commits: scheduled here, awaited nowhere on the click path.

Every side effect is best-effort and records its own outcome; none of them can undo or
fail the handoff that triggered it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from escalation_app.domain.db import session_scope
from escalation_app.domain.models import HandoffIntent, SessionHandoff
from escalation_app.services import assessment, notifications, psa, realtime
from escalation_app.services.tasks import spawn
from escalation_app.settings import get_settings

logger = logging.getLogger(__name__)
SWEEP_INTERVAL_SECONDS = 60


# The live push goes first: the other side effects start once it is out (or after this
# long), so their database reads and threads do not slow the cards down.
LIVE_FIRST_SECONDS = 1.0


def handoff_created(handoff: SessionHandoff) -> None:
    """A park or escalation committed: push it live; for an escalation, then notify and assess."""
    published = realtime.schedule_publish(handoff.account_id, "created", handoff.id)
    if handoff.intent != HandoffIntent.ESCALATE:
        return
    account_id, handoff_id = handoff.account_id, handoff.id

    async def after_live_push() -> None:
        await asyncio.wait({published}, timeout=LIVE_FIRST_SECONDS)
        notifications.schedule_escalation_notifications(handoff_id)
        psa.schedule_escalation_note(handoff_id)
        schedule_assessment(account_id, handoff_id)

    spawn(after_live_push(), name=f"escalated-{handoff_id}")


def handoff_claimed(handoff: SessionHandoff) -> None:
    """A claim committed: take the card out of every other queue; note the owner in the PSA ticket."""
    realtime.schedule_publish(handoff.account_id, "claimed", handoff.id)
    psa.schedule_claim_note(handoff.id)


def schedule_assessment(account_id: int, handoff_id: uuid.UUID) -> None:
    """Ask for the AI assessment in the background; open handoff screens refresh when it lands."""

    async def assessed(finished_id: uuid.UUID) -> None:
        await realtime.publish(account_id, "assessed", finished_id)
        # A PSA note held back for the AI summary goes out now.
        await psa.on_assessment_ready(finished_id)

    assessment.schedule_assessment(handoff_id, on_ready=assessed)


async def assessment_sweep() -> None:
    """Finish assessments nobody is working on (a Reflex lifespan task, runs for the server's life).

    At start-up nothing in this process is working on any assessment, so every pending
    one is taken (a stop left them behind). After that, every minute, only those
    pending for longer than the AI time budget: their task was lost. With several
    workers an assessment can be picked up twice; the first result to commit wins.
    """

    def account_of(handoff_id: uuid.UUID) -> int | None:
        with session_scope() as db:
            row = db.get(SessionHandoff, handoff_id)
            return row.account_id if row else None

    async def assessed(finished_id: uuid.UUID) -> None:
        account_id = await asyncio.to_thread(account_of, finished_id)
        if account_id is not None:
            await realtime.publish(account_id, "assessed", finished_id)
        await psa.on_assessment_ready(finished_id)

    older_than = timedelta(0)
    while True:
        count = await assessment.sweep_stale_pending(older_than=older_than, on_ready=assessed)
        if count:
            logger.info("assessment sweep completed %d pending assessments", count)
        older_than = timedelta(seconds=get_settings().escalation_ai_assessment_timeout_seconds + 30)
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
