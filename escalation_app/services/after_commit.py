"""What happens after a handoff commits: scheduled here, awaited nowhere on the click path.

Every side effect is best-effort and records its own outcome; none of them can undo or
fail the handoff that triggered it.
"""

from __future__ import annotations

import logging

from escalation_app.domain.models import HandoffIntent, SessionHandoff
from escalation_app.services import realtime

logger = logging.getLogger(__name__)


def handoff_created(handoff: SessionHandoff) -> None:
    """A park or escalation committed: push it live, notify, assess."""
    realtime.schedule_publish(handoff.account_id, "created", handoff.id)
    if handoff.intent == HandoffIntent.ESCALATE:
        _schedule_escalation_side_effects(handoff)


def handoff_claimed(handoff: SessionHandoff) -> None:
    """A claim committed: take the card out of every other queue."""
    realtime.schedule_publish(handoff.account_id, "claimed", handoff.id)


def assessment_finished(account_id: int, handoff_id) -> None:
    """An AI assessment (or its failure) committed: open handoff screens refresh."""
    realtime.schedule_publish(account_id, "assessed", handoff_id)


def _schedule_escalation_side_effects(handoff: SessionHandoff) -> None:
    # Wired to the notification and assessment services as they land.
    pass
