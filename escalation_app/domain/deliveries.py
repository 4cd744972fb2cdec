"""What was sent for a handoff (email, webhook), read from its outbox jobs, and Retry.

An email or webhook job is its own delivery record: pending (sending, or retrying
after a failure), done (sent), failed (out of attempts, or refused) or skipped (with
the reason). Managers read the summary on the handoff screen and can run a failed
delivery again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from escalation_app.domain import outbox
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.domain.integrations import WebhookChannel
from escalation_app.domain.models import JobStatus, OutboxJob, SessionHandoff

DELIVERY_KINDS = (outbox.JobKind.EMAIL, outbox.JobKind.WEBHOOK)
MAX_ATTEMPTS = outbox.POLICIES[outbox.JobKind.EMAIL].max_attempts

# What the screen calls each state.
SENT, SENDING, RETRYING, FAILED, SKIPPED = "sent", "sending", "retrying", "failed", "skipped"


def delivery_state(job: OutboxJob) -> str:
    """sent, sending, retrying (failed, another attempt is due), failed, or skipped."""
    if job.status == JobStatus.DONE:
        return SENT
    if job.status == JobStatus.SKIPPED:
        return SKIPPED
    if job.status == JobStatus.FAILED:
        return FAILED
    return RETRYING if job.last_error else SENDING


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as the handoff screen lists it."""

    id: int
    channel: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime

    @property
    def can_retry(self) -> bool:
        return self.status == FAILED


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    """A handoff's notification outcome: counts, the rows, and a one-line text."""

    email_sent: int
    email_failed: int
    email_pending: int
    email_skipped: int
    # Channel label ("Slack", "Teams") → state of its post.
    webhooks: dict[str, str]
    rows: list[DeliveryRow]
    text: str


_WEBHOOK_MARK = {SENT: "✓", FAILED: "✗", RETRYING: "✗ (retrying)", SENDING: "…", SKIPPED: "skipped"}


def _webhook_label(recipient: str) -> str:
    try:
        return WebhookChannel(recipient).label
    except ValueError:
        return recipient


def _summary_text(sent: int, failed: int, pending: int, skipped: int, skip_reason, webhooks) -> str:
    parts = []
    if sent or failed or pending:
        extras = [
            f"{n} {what}" for n, what in ((failed, "failed"), (pending, "sending"), (skipped, "skipped")) if n
        ]
        parts.append(f"{sent} by email" + (f" ({', '.join(extras)})" if extras else ""))
    elif skipped:
        parts.append("email skipped" + (f" ({skip_reason})" if skip_reason else ""))
    parts += [f"{label} {_WEBHOOK_MARK.get(status, status)}" for label, status in webhooks.items()]
    return "Notified: " + ", ".join(parts) if parts else "No notifications sent."


def _handoff_of(db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> SessionHandoff:
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id))
    if handoff is None or handoff.account_id != actor.account_id:
        raise NotFound("Handoff not found.")
    return handoff


def delivery_summary(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> DeliverySummary:
    """What was sent for a handoff of the actor's account, e.g. "Notified: 4 by email, Slack ✓".

    Another account's handoff is not found. A failed email that will be retried
    counts as failed until it goes through.
    """
    handoff = _handoff_of(db, actor, handoff_id)
    jobs = [
        j for j in outbox.jobs_of_handoff(db, handoff.id, DELIVERY_KINDS) if j.account_id == actor.account_id
    ]
    rows = [
        DeliveryRow(
            id=j.id or 0,
            channel=j.kind,
            recipient=j.recipient,
            status=delivery_state(j),
            attempts=j.attempts,
            last_error=j.last_error,
            sent_at=j.finished_at if j.status == JobStatus.DONE else None,
            updated_at=j.updated_at,
        )
        for j in jobs
    ]
    emails = [r for r in rows if r.channel == outbox.JobKind.EMAIL]

    def count(*states: str) -> int:
        return sum(1 for r in emails if r.status in states)

    skip_reason = next((r.last_error for r in emails if r.status == SKIPPED), None)
    webhooks = {_webhook_label(r.recipient): r.status for r in rows if r.channel == outbox.JobKind.WEBHOOK}
    sent, failed = count(SENT), count(FAILED, RETRYING)
    pending, skipped = count(SENDING), count(SKIPPED)
    return DeliverySummary(
        email_sent=sent,
        email_failed=failed,
        email_pending=pending,
        email_skipped=skipped,
        webhooks=webhooks,
        rows=rows,
        text=_summary_text(sent, failed, pending, skipped, skip_reason, webhooks),
    )


def retry_delivery(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID, delivery_id: object) -> None:
    """Run a failed email or webhook delivery of a handoff again ("Retry"), and commit.

    Owners and admins only; another account's handoff or delivery is not found; only a
    delivery that has given up can be retried (a second click finds it pending).
    """
    if not actor.is_manager:
        raise PermissionDenied("Only owners and admins can retry deliveries.")
    handoff = _handoff_of(db, actor, handoff_id)
    try:
        wanted = int(delivery_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise NotFound("Delivery not found.") from None
    job = db.get(OutboxJob, wanted, with_for_update=True) if 0 < wanted <= 2**31 - 1 else None
    if job is None or job.handoff_id != handoff.id or job.kind not in DELIVERY_KINDS:
        raise NotFound("Delivery not found.")
    if job.status != JobStatus.FAILED:
        raise InvalidInput("Only a failed delivery can be retried.")
    outbox.rerun(db, job)
    db.commit()
