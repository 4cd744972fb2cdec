"""What each committed change causes: the outbox jobs a domain verb adds to its transaction.

One place to read "what happens after an escalation": the live push, an email per
teammate, a post per chat webhook, the PSA note and the AI assessment. Each is a job
in the same transaction as the change (`domain.outbox`), run by `services.worker`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel import Session

from escalation_app.domain import outbox
from escalation_app.domain.integrations import WebhookChannel, integration_row
from escalation_app.domain.models import HandoffIntent, SessionHandoff, User
from escalation_app.domain.outbox import JobKind

# Live events, as `services.realtime` delivers them.
CREATED, CLAIMED, ASSESSED = "created", "claimed", "assessed"
# The committing process pushes at once; another worker takes the job only if the
# committing one has not marked it done by then (it died in between).
LIVE_FALLBACK_AFTER = timedelta(seconds=2)
# Everything else of a click starts a moment later, so the live push has the process
# (and the database) to itself: cards first, then mail, chat, PSA and the AI.
AFTER_LIVE = timedelta(milliseconds=500)


def live(db: Session, *, account_id: int, event: str, handoff_id: uuid.UUID, now: datetime) -> None:
    """Push `event` of a handoff to the open tabs of its account, after commit."""
    outbox.enqueue(
        db,
        kind=JobKind.LIVE,
        account_id=account_id,
        handoff_id=handoff_id,
        payload={"event": event, "handoff_id": str(handoff_id)},
        run_at=now + LIVE_FALLBACK_AFTER,
        now=now,
    )


def handoff_created(db: Session, handoff: SessionHandoff, *, recipients: list[User], now: datetime) -> None:
    """A park or escalation: live push; for an escalation also emails, webhooks, PSA note, assessment.

    `recipients` are the teammates emailed (every active owner, admin and engineer but
    the escalator).
    """
    from escalation_app.domain.psa.delivery import enqueue_escalation_note

    live(db, account_id=handoff.account_id, event=CREATED, handoff_id=handoff.id, now=now)
    if handoff.intent != HandoffIntent.ESCALATE:
        return
    # One read of the account's integrations serves the webhooks and the PSA note.
    integrations = integration_row(db, handoff.account_id)
    later = now + AFTER_LIVE
    for user in recipients:
        outbox.enqueue(
            db,
            kind=JobKind.EMAIL,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            recipient=user.email,
            payload={"user_id": user.id},
            dedupe_key=f"email:{handoff.id}:{user.id}",
            run_at=later,
            now=now,
            fresh=True,
        )
    webhooks = (
        [c for c in WebhookChannel if getattr(integrations, f"{c.value}_webhook_url")] if integrations else []
    )
    for channel in webhooks:
        outbox.enqueue(
            db,
            kind=JobKind.WEBHOOK,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            recipient=channel.value,
            payload={"channel": channel.value},
            dedupe_key=f"webhook:{handoff.id}:{channel.value}",
            run_at=later,
            now=now,
            fresh=True,
        )
    enqueue_escalation_note(db, handoff, now=now, integrations=integrations)
    outbox.enqueue(
        db,
        kind=JobKind.ASSESSMENT,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        dedupe_key=assessment_key(handoff.id),
        run_at=later,
        now=now,
        fresh=True,
    )


def handoff_claimed(db: Session, handoff: SessionHandoff, *, claimer_name: str, now: datetime) -> None:
    """A claim: the card leaves every other queue, open screens update, the PSA ticket is told."""
    from escalation_app.domain.psa.delivery import enqueue_claim_note

    live(db, account_id=handoff.account_id, event=CLAIMED, handoff_id=handoff.id, now=now)
    enqueue_claim_note(db, handoff, claimer_name, now=now + AFTER_LIVE)


def assessment_key(handoff_id: uuid.UUID) -> str:
    return f"assessment:{handoff_id}"


def assessment_requested(db: Session, handoff: SessionHandoff, *, now: datetime) -> None:
    """Ask for the AI assessment again ("Retry"): the handoff's one assessment job runs again."""
    existing = outbox.find(db, assessment_key(handoff.id))
    if existing is not None:
        outbox.rerun(db, existing, now=now)
        return
    outbox.enqueue(
        db,
        kind=JobKind.ASSESSMENT,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        dedupe_key=assessment_key(handoff.id),
        now=now,
    )


def assessment_finished(db: Session, *, account_id: int, handoff_id: uuid.UUID, now: datetime) -> None:
    """The assessment is stored (ready or failed): open screens update; the PSA note goes out."""
    from escalation_app.domain.psa.delivery import release_escalation_note

    live(db, account_id=account_id, event=ASSESSED, handoff_id=handoff_id, now=now)
    release_escalation_note(db, handoff_id)
