"""Delivery records: what was sent for a handoff (email, webhook, PSA), and how it went.

A record is written `queued` before anything leaves the building and then moved to
`sent`, `failed` (with the reason, and when to try again) or `skipped`. The retry
sweep picks up failed records that are due; `claim_for_retry` makes sure that only one
worker retries a record even when several run the sweep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import NotFound
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.domain.integrations import WebhookChannel
from escalation_app.domain.models import DeliveryChannel, DeliveryRecord, DeliveryStatus, SessionHandoff
from escalation_app.domain.types import utcnow

MAX_ATTEMPTS = 3
# Wait before attempt 2 and attempt 3.
RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2))
# A record still `queued` this long after its last touch was interrupted (the process
# died mid-send); the sweep turns it into a failure so it is retried, not stuck.
STALE_QUEUED_AFTER = timedelta(minutes=10)
ERROR_MAX = 1000
KIND_ESCALATION = "escalation"
KIND_TEST = "test"


def next_attempt_after(attempts: int, now: datetime) -> datetime | None:
    """When to retry after `attempts` failed attempts, or None when out of attempts."""
    if attempts >= MAX_ATTEMPTS:
        return None
    index = min(max(attempts, 1), len(RETRY_BACKOFF)) - 1
    return now + RETRY_BACKOFF[index]


def add_delivery(
    db: Session,
    *,
    account_id: int,
    handoff_id: uuid.UUID | None,
    channel: DeliveryChannel | str,
    recipient: str,
    payload: dict,
    kind: str = KIND_ESCALATION,
    status: DeliveryStatus | str = DeliveryStatus.QUEUED,
    last_error: str | None = None,
) -> DeliveryRecord:
    """Add (not commit) a delivery record; the caller commits a batch at once."""
    now = utcnow()
    record = DeliveryRecord(
        account_id=account_id,
        handoff_id=handoff_id,
        channel=DeliveryChannel(channel),
        kind=kind,
        recipient=recipient[:500],
        status=DeliveryStatus(status),
        last_error=last_error[:ERROR_MAX] if last_error else None,
        payload=payload,
        created_at=now,
        updated_at=now,
    )
    db.add(record)
    return record


def has_deliveries(db: Session, *, handoff_id: uuid.UUID, kind: str = KIND_ESCALATION) -> bool:
    """Whether a handoff's notifications were already dispatched (dispatch is once only)."""
    return (
        db.exec(
            select(DeliveryRecord.id).where(
                DeliveryRecord.handoff_id == handoff_id, DeliveryRecord.kind == kind
            )
        ).first()
        is not None
    )


def mark_sent(db: Session, record_id: int) -> None:
    """Record a successful attempt (not committed)."""
    now = utcnow()
    db.exec(
        update(DeliveryRecord)
        .where(col(DeliveryRecord.id) == record_id)
        .values(
            status=DeliveryStatus.SENT,
            attempts=DeliveryRecord.attempts + 1,
            last_error=None,
            next_attempt_at=None,
            sent_at=now,
            updated_at=now,
        )
    )


def mark_failed(db: Session, record_id: int, error: str, *, retry: bool = True) -> None:
    """Record a failed attempt and, if `retry` and attempts are left, when to retry (not committed)."""
    record = db.get(DeliveryRecord, record_id, populate_existing=True)
    if record is None:
        return
    now = utcnow()
    record.attempts += 1
    record.status = DeliveryStatus.FAILED
    record.last_error = (error or "Unknown error")[:ERROR_MAX]
    record.next_attempt_at = next_attempt_after(record.attempts, now) if retry else None
    record.updated_at = now
    db.add(record)


def mark_skipped(db: Session, record_id: int, reason: str) -> None:
    """Record that a delivery will not be made, and why (not committed)."""
    db.exec(
        update(DeliveryRecord)
        .where(col(DeliveryRecord.id) == record_id)
        .values(
            status=DeliveryStatus.SKIPPED,
            last_error=reason[:ERROR_MAX],
            next_attempt_at=None,
            updated_at=utcnow(),
        )
    )


def fail_stale_queued(db: Session, *, now: datetime | None = None) -> int:
    """Turn long-`queued` records (an interrupted send) into due failures (not committed)."""
    now = now or utcnow()
    result = db.exec(
        update(DeliveryRecord)
        .where(
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            DeliveryRecord.kind != KIND_TEST,
            col(DeliveryRecord.channel).in_([DeliveryChannel.EMAIL, DeliveryChannel.WEBHOOK]),
            col(DeliveryRecord.updated_at) <= now - STALE_QUEUED_AFTER,
        )
        .values(
            status=DeliveryStatus.FAILED,
            last_error="Interrupted before it finished; will retry.",
            next_attempt_at=now,
            updated_at=now,
        )
    )
    return result.rowcount


def due_for_retry(
    db: Session,
    *,
    now: datetime | None = None,
    channels: tuple[DeliveryChannel, ...] = (DeliveryChannel.EMAIL, DeliveryChannel.WEBHOOK),
    limit: int = 100,
) -> list[DeliveryRecord]:
    """Failed deliveries with attempts left whose retry time has come, oldest first."""
    now = now or utcnow()
    return list(
        db.exec(
            select(DeliveryRecord)
            .where(
                DeliveryRecord.status == DeliveryStatus.FAILED,
                # A "Send test" post is answered on the spot, never retried.
                DeliveryRecord.kind != KIND_TEST,
                col(DeliveryRecord.channel).in_(list(channels)),
                DeliveryRecord.attempts < MAX_ATTEMPTS,
                col(DeliveryRecord.next_attempt_at).is_not(None),
                col(DeliveryRecord.next_attempt_at) <= now,
            )
            .order_by(col(DeliveryRecord.next_attempt_at), col(DeliveryRecord.id))
            .limit(limit)
        ).all()
    )


def claim_for_retry(db: Session, record: DeliveryRecord) -> bool:
    """Take a due record for retrying; False if another worker took it first.

    Like a handoff claim, one conditional UPDATE decides: only the worker that still
    sees it failed with the same attempt count moves it back to `queued`.
    """
    won = db.exec(
        update(DeliveryRecord)
        .where(
            col(DeliveryRecord.id) == record.id,
            DeliveryRecord.status == DeliveryStatus.FAILED,
            DeliveryRecord.attempts == record.attempts,
        )
        .values(status=DeliveryStatus.QUEUED, updated_at=utcnow())
        .returning(col(DeliveryRecord.id))
    ).first()
    db.commit()
    return won is not None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as the handoff screen lists it."""

    channel: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    """A handoff's notification outcome: counts, the rows, and a one-line text."""

    email_sent: int
    email_failed: int
    email_pending: int
    email_skipped: int
    # Channel label ("Slack", "Teams") → status of its post.
    webhooks: dict[str, str]
    rows: list[DeliveryRow]
    text: str


_WEBHOOK_MARK = {
    DeliveryStatus.SENT: "✓",
    DeliveryStatus.FAILED: "✗",
    DeliveryStatus.QUEUED: "…",
    DeliveryStatus.SKIPPED: "skipped",
}


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


def delivery_summary(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> DeliverySummary:
    """What was sent for a handoff of the actor's account, e.g. "Notified: 4 by email, Slack ✓".

    Another account's handoff is not found. Emails and webhook posts of the
    escalation are counted; test posts are not part of any handoff.
    """
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id))
    if handoff is None or handoff.account_id != actor.account_id:
        raise NotFound("Handoff not found.")
    records = db.exec(
        select(DeliveryRecord)
        .where(
            DeliveryRecord.handoff_id == handoff.id,
            DeliveryRecord.account_id == actor.account_id,
            DeliveryRecord.kind == KIND_ESCALATION,
        )
        .order_by(col(DeliveryRecord.channel), col(DeliveryRecord.recipient), col(DeliveryRecord.id))
    ).all()
    emails = [r for r in records if r.channel == DeliveryChannel.EMAIL]

    def count(status: DeliveryStatus) -> int:
        return sum(1 for r in emails if r.status == status)

    skip_reason = next((r.last_error for r in emails if r.status == DeliveryStatus.SKIPPED), None)
    webhooks = {
        _webhook_label(r.recipient): r.status for r in records if r.channel == DeliveryChannel.WEBHOOK
    }
    sent, failed = count(DeliveryStatus.SENT), count(DeliveryStatus.FAILED)
    pending, skipped = count(DeliveryStatus.QUEUED), count(DeliveryStatus.SKIPPED)
    return DeliverySummary(
        email_sent=sent,
        email_failed=failed,
        email_pending=pending,
        email_skipped=skipped,
        webhooks=webhooks,
        rows=[
            DeliveryRow(
                channel=r.channel,
                recipient=r.recipient,
                status=r.status,
                attempts=r.attempts,
                last_error=r.last_error,
                sent_at=r.sent_at,
                updated_at=r.updated_at,
            )
            for r in records
        ],
        text=_summary_text(sent, failed, pending, skipped, skip_reason, webhooks),
    )
