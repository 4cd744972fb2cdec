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
from escalation_app.domain.actors import Actor
from escalation_app.domain.integrations import WebhookChannel, integration_row
from escalation_app.domain.models import (
    CaseEvent,
    HandoffIntent,
    Notification,
    SessionHandoff,
    SupportSession,
    User,
)
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


def grading_requested(db: Session, *, account_id: int, handoff_id: uuid.UUID, now: datetime) -> None:
    """A resolved case's assessment is graded against the fix by Claude (`domain.grading`)."""
    outbox.enqueue(
        db,
        kind=JobKind.GRADING,
        account_id=account_id,
        handoff_id=handoff_id,
        dedupe_key=f"grading:{handoff_id}",
        run_at=now + AFTER_LIVE,
        now=now,
    )


# ---------------------------------------------------------------------------
# After the pick-up (`domain.casework`): resolve, hand back, escalate onward,
# release, reassign.
# ---------------------------------------------------------------------------

# A handoff changed (ended, released, reassigned): queues re-read, its open screens update.
UPDATED = "updated"
# Bell entries were written for `user_ids`: their bells update.
NOTIFIED = "notified"
BELL_BODY_MAX = 300


def case_changed(db: Session, *, account_id: int, handoff_id: uuid.UUID, now: datetime) -> None:
    """A handoff ended or moved: every queue tab and its open screens converge."""
    live(db, account_id=account_id, event=UPDATED, handoff_id=handoff_id, now=now)


def notify_users(
    db: Session,
    *,
    handoff: SessionHandoff,
    users: list[User],
    title: str,
    body: str,
    link: str,
    email_payload: dict,
    email_key: str,
    now: datetime,
) -> None:
    """Bell entries (rows of this transaction), one email job each, and the bells' live push.

    Each email job's payload is `email_payload` with the user's id; `email_key` and the
    user make its dedupe key. `title` and `body` are stored as given (already bounded).
    """
    if not users:
        return
    for user in users:
        db.add(
            Notification(
                account_id=handoff.account_id,
                user_id=user.id,
                handoff_id=handoff.id,
                title=title,
                body=body,
                link=link,
                created_at=now,
            )
        )
        outbox.enqueue(
            db,
            kind=JobKind.EMAIL,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            recipient=user.email,
            payload={"user_id": user.id, **email_payload},
            dedupe_key=f"email:{email_key}:{user.id}",
            now=now,
        )
    outbox.enqueue(
        db,
        kind=JobKind.LIVE,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        payload={"event": NOTIFIED, "handoff_id": str(handoff.id), "user_ids": [u.id for u in users]},
        run_at=now + LIVE_FALLBACK_AFTER,
        now=now,
    )


def _notify(
    db: Session,
    *,
    handoff: SessionHandoff,
    users: list[User],
    message: str,
    event: CaseEvent,
    title: str,
    body: str,
    link: str,
    now: datetime,
) -> None:
    """A case message's bells, emails and live push (`notify_users`)."""
    notify_users(
        db,
        handoff=handoff,
        users=users,
        title=title[:300],
        body=body if len(body) <= BELL_BODY_MAX else body[: BELL_BODY_MAX - 1] + "…",
        link=link,
        email_payload={"message": message, "event_id": event.id},
        email_key=f"{message}:{event.id}",
        now=now,
    )


def case_resolved(
    db: Session,
    support_session: SupportSession,
    handoff: SessionHandoff,
    event: CaseEvent,
    *,
    resolver: Actor,
    told: list[User],
    now: datetime,
) -> None:
    """Resolved: screens and queues update; whoever handed it off hears how it was fixed."""
    from escalation_app.domain.case_events import root_cause_label
    from escalation_app.domain.psa.delivery import enqueue_case_note

    case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    _notify(
        db,
        handoff=handoff,
        users=told,
        message="resolved",
        event=event,
        title=f"Resolved: {support_session.problem_summary}",
        body=f"{resolver.display_name} · {root_cause_label(event.root_cause)}: {event.note}",
        link=f"/sessions/{support_session.id}/history",
        now=now,
    )
    enqueue_case_note(db, handoff, "resolved", event, now=now)


def handed_back(
    db: Session,
    support_session: SupportSession,
    worked: SessionHandoff | None,
    handback: SessionHandoff,
    event: CaseEvent,
    *,
    by: Actor,
    owner: User,
    now: datetime,
) -> None:
    """Handed back: the owner hears it (bell, email) with the guidance; the ticket is told."""
    from escalation_app.domain.psa.delivery import enqueue_case_note

    if worked is not None:
        case_changed(db, account_id=worked.account_id, handoff_id=worked.id, now=now)
    _notify(
        db,
        handoff=handback,
        users=[owner],
        message="handed_back",
        event=event,
        title=f"Handed back to you: {support_session.problem_summary}",
        body=f"{by.display_name}: {event.note}",
        link=f"/sessions/{support_session.id}",
        now=now,
    )
    if worked is not None:
        enqueue_case_note(db, worked, "handback", event, now=now, name=owner.display_name)


def released(db: Session, handoff: SessionHandoff, event: CaseEvent, *, by: Actor, now: datetime) -> None:
    """Released: the card is back in every queue tab, live; the ticket is told."""
    from escalation_app.domain.psa.delivery import enqueue_case_note

    case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    enqueue_case_note(db, handoff, "released", event, now=now, name=by.display_name)


def reassigned(
    db: Session,
    support_session: SupportSession,
    handoff: SessionHandoff,
    event: CaseEvent,
    *,
    by: Actor,
    to: User,
    now: datetime,
) -> None:
    """Reassigned: the new assignee hears it (bell, email); open screens update; the ticket is told."""
    from escalation_app.domain.psa.delivery import enqueue_case_note

    case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    _notify(
        db,
        handoff=handoff,
        users=[to],
        message="reassigned",
        event=event,
        title=f"Assigned to you: {support_session.problem_summary}",
        body=f"{by.display_name} reassigned it to you" + (f": {event.note}" if event.note else ""),
        link=f"/handoffs/{handoff.id}",
        now=now,
    )
    enqueue_case_note(db, handoff, "reassigned", event, now=now, name=to.display_name)
