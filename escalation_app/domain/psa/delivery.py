"""Which PSA notes a handoff gets, what they say when posted, and the handoff screen's line.

Every note is an outbox job (kind `psa_note`) written in the transaction of the change
that causes it: the escalation note with the handoff, the pick-up note with the claim.
`services/psa.py` posts them (`prepare_note` gives it the ticket, text and
credentials); retries, leases and outcomes are the outbox's.

- The escalation note carries the AI summary, so while the assessment is pending it
  waits (until the AI time budget plus a margin); storing the assessment releases it.
- The pick-up note waits while the escalation note is not finished, so the ticket
  reads in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from escalation_app.domain import outbox
from escalation_app.domain.actors import Actor
from escalation_app.domain.case_events import root_cause_label
from escalation_app.domain.errors import InvalidInput, NotFound
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.domain.integrations import integration_row
from escalation_app.domain.models import (
    AccountIntegration,
    AIStatus,
    CaseEvent,
    HandoffIntent,
    JobStatus,
    OutboxJob,
    SessionHandoff,
    SessionStep,
    SupportSession,
    User,
)
from escalation_app.domain.psa.connection import PsaCredentials, PsaSecretUnreadable, load_psa_credentials
from escalation_app.domain.psa.notes import (
    _ticket_label,
    case_note,
    claim_note,
    escalation_note,
    ticket_number,
)
from escalation_app.domain.types import utcnow
from escalation_app.settings import get_settings

KIND_PSA_ESCALATION = "escalation"
KIND_PSA_CLAIM = "claim"
# After the pick-up (`domain.casework`): one note per transition.
KIND_PSA_HANDBACK = "handback"
KIND_PSA_REASSIGNED = "reassigned"
KIND_PSA_RESOLVED = "resolved"
KIND_PSA_RELEASED = "released"
CASE_NOTES = (KIND_PSA_HANDBACK, KIND_PSA_REASSIGNED, KIND_PSA_RESOLVED, KIND_PSA_RELEASED)
# The escalation clock (`domain.clock`): "Unclaimed for 30 min: re-escalated to level 2 …".
KIND_PSA_CLOCK = "clock"

# How long past the AI time budget an escalation note waits for the summary before
# it is posted without one.
AI_WAIT_MARGIN = timedelta(seconds=30)
# How often a pick-up note looks again while the escalation note is still going out.
CLAIM_RECHECK = timedelta(seconds=2)

NO_CONNECTION = "PSA connection no longer configured"
# The reason, guidance or fix a case note quotes (the note itself is bounded again).
NOTE_FIELD_MAX = 2000


def escalation_key(handoff_id: uuid.UUID) -> str:
    return f"psa:escalation:{handoff_id}"


def claim_key(handoff_id: uuid.UUID) -> str:
    return f"psa:claim:{handoff_id}"


@dataclass(frozen=True, slots=True)
class PsaNote:
    """One note to post now."""

    ticket: int
    text: str
    credentials: PsaCredentials


def _ticket_of(db: Session, handoff: SessionHandoff) -> str | None:
    snapshot = handoff.snapshot if isinstance(handoff.snapshot, dict) else {}
    ticket = snapshot.get("psa_ticket_id")
    if not ticket:
        support_session = db.get(SupportSession, handoff.session_id)
        ticket = support_session.psa_ticket_id if support_session else None
    ticket = str(ticket or "").strip()
    return ticket or None


def _name(db: Session, user_id: int | None) -> str | None:
    user = db.get(User, user_id) if user_id else None
    return user.display_name if user else None


_UNREAD = object()


def _connected_ticket(
    db: Session, handoff: SessionHandoff, row: AccountIntegration | object | None = _UNREAD
) -> tuple[AccountIntegration, str] | None:
    if handoff.intent != HandoffIntent.ESCALATE:
        return None
    if row is _UNREAD:
        row = integration_row(db, handoff.account_id)
    if row is None or not row.psa_type:
        return None
    ticket = _ticket_of(db, handoff)
    return (row, ticket) if ticket else None


def _enqueue_note(
    db: Session,
    handoff: SessionHandoff,
    note: str,
    key: str,
    run_at: datetime,
    *,
    integrations: AccountIntegration | object | None = _UNREAD,
    fresh: bool = False,
    **extra: object,
) -> None:
    target = _connected_ticket(db, handoff, integrations)
    if target is None:
        return
    row, ticket = target
    outbox.enqueue(
        db,
        kind=outbox.JobKind.PSA_NOTE,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        recipient=f"{row.psa_type}:{ticket}",
        payload={"note": note, "ticket_id": ticket, "psa_type": row.psa_type, **extra},
        run_at=run_at,
        dedupe_key=key,
        fresh=fresh,
    )


def enqueue_escalation_note(
    db: Session,
    handoff: SessionHandoff,
    *,
    now: datetime,
    integrations: AccountIntegration | object | None = _UNREAD,
) -> None:
    """In the escalation's transaction: the ticket's escalation note, if the account has a PSA
    connection and the session a ticket id. It waits for the AI summary while that is pending."""
    run_at = now
    if handoff.ai_status == AIStatus.PENDING:
        budget = timedelta(seconds=get_settings().escalation_ai_assessment_timeout_seconds)
        run_at = now + budget + AI_WAIT_MARGIN
    _enqueue_note(
        db,
        handoff,
        KIND_PSA_ESCALATION,
        escalation_key(handoff.id),
        run_at,
        integrations=integrations,
        fresh=True,
    )


def enqueue_claim_note(db: Session, handoff: SessionHandoff, claimer_name: str, *, now: datetime) -> None:
    """In the claim's transaction: "Picked up by {name}" on the ticket."""
    name = " ".join(claimer_name.split())[:120]
    _enqueue_note(db, handoff, KIND_PSA_CLAIM, claim_key(handoff.id), now, claimer_name=name)


def enqueue_case_note(
    db: Session,
    handoff: SessionHandoff,
    note: str,
    event: CaseEvent,
    *,
    now: datetime,
    name: str | None = None,
) -> None:
    """In a transition's transaction: "Handed back to …", "Reassigned to …", "Resolved: …" or
    "Released to the queue …" on the escalation's ticket (one note per transition)."""
    if note not in CASE_NOTES:
        raise ValueError(f"unknown PSA note {note!r}")
    extra: dict[str, object] = {"event_id": event.id, "text_note": event.note[:NOTE_FIELD_MAX]}
    if name:
        extra["name"] = " ".join(name.split())[:120]
    if event.root_cause:
        extra["root_cause"] = event.root_cause
    _enqueue_note(db, handoff, note, f"psa:{note}:{event.id}", now, **extra)


def enqueue_clock_note(db: Session, handoff: SessionHandoff, text: str, *, key: str, now: datetime) -> None:
    """In a fired timer's transaction: what the escalation clock did, on the ticket."""
    _enqueue_note(db, handoff, KIND_PSA_CLOCK, key, now, text_note=" ".join(text.split())[:NOTE_FIELD_MAX])


def release_escalation_note(db: Session, handoff_id: uuid.UUID) -> None:
    """In the assessment's transaction: the waiting escalation note goes out now, with the summary.

    A pick-up note deferred behind it (until the AI wait was over) looks again now too,
    so it follows the escalation note within seconds, not a minute later.
    """
    if outbox.release(db, escalation_key(handoff_id)):
        outbox.release(db, claim_key(handoff_id))


def _note_text(db: Session, job: outbox.JobView, handoff: SessionHandoff) -> str:
    kind = job.payload.get("note")
    if kind == KIND_PSA_CLAIM:
        name = job.payload.get("claimer_name") or _name(db, handoff.claimed_by_id)
        return claim_note(name or "")
    if kind == KIND_PSA_CLOCK:
        return str(job.payload.get("text_note") or "")[:NOTE_FIELD_MAX]
    if kind in CASE_NOTES:
        return case_note(
            kind,
            name=str(job.payload.get("name") or ""),
            text=str(job.payload.get("text_note") or ""),
            root_cause=root_cause_label(job.payload.get("root_cause")),
        )
    snapshot = handoff.snapshot if isinstance(handoff.snapshot, dict) else {}
    steps = snapshot.get("steps")
    if not isinstance(steps, list):
        steps = list(
            db.exec(
                select(SessionStep)
                .where(SessionStep.session_id == handoff.session_id)
                .order_by(col(SessionStep.position))
            ).all()
        )
    ai_summary = handoff.ai_assessment if handoff.ai_status == AIStatus.READY else None
    return escalation_note(
        handoff,
        db.get(SupportSession, handoff.session_id),
        steps,
        ai_summary,
        escalated_by=_name(db, handoff.handed_off_by_id),
        link=f"{get_settings().frontend_url}/handoffs/{handoff.id}",
    )


def prepare_note(db: Session, job: outbox.JobView, *, now: datetime | None = None) -> PsaNote:
    """What to post for a taken `psa_note` job.

    Raises `outbox.JobSkipped` (connection removed, handoff gone), `outbox.JobRefused`
    (secret unreadable, bad ticket id) or `outbox.JobWaits` (a pick-up note while the
    escalation note is still going out).
    """
    now = now or utcnow()
    handoff = db.get(SessionHandoff, job.handoff_id) if job.handoff_id else None
    if handoff is None:
        raise outbox.JobSkipped("Handoff no longer exists")
    if job.payload.get("note") != KIND_PSA_ESCALATION:
        first = outbox.find(db, escalation_key(handoff.id))
        if first is not None and first.status in (JobStatus.PENDING, JobStatus.RUNNING):
            raise outbox.JobWaits(max(first.run_at, now) + CLAIM_RECHECK, "waits for the escalation note")
    try:
        credentials = load_psa_credentials(db, handoff.account_id)
    except PsaSecretUnreadable as exc:
        raise outbox.JobRefused(exc.message) from exc
    if credentials is None:
        raise outbox.JobSkipped(NO_CONNECTION)
    try:
        ticket = ticket_number(job.payload.get("ticket_id"))
    except InvalidInput as exc:
        raise outbox.JobRefused(exc.message) from exc
    return PsaNote(ticket=ticket, text=_note_text(db, job, handoff), credentials=credentials)


# ---------------------------------------------------------------------------
# The handoff screen's line
# ---------------------------------------------------------------------------


def _escalation_part(job: OutboxJob, now: datetime) -> str:
    ticket = _ticket_label(job.payload.get("ticket_id"))
    if job.status == JobStatus.DONE:
        return f"Posted to PSA ticket {ticket} ✓"
    if job.status == JobStatus.SKIPPED:
        return f"PSA note skipped: {job.last_error or 'not sent'}"
    if job.status == JobStatus.FAILED:
        return f"PSA note failed: {job.last_error or 'unknown error'}"
    if job.last_error:
        return f"PSA note failed: {job.last_error} (will retry)"
    if job.status == JobStatus.PENDING and job.run_at > now:
        return f"PSA note for ticket {ticket} waits for the AI summary"
    return f"Posting to PSA ticket {ticket}…"


def _claim_part(job: OutboxJob) -> str:
    if job.status == JobStatus.DONE:
        return "pick-up note ✓"
    if job.status == JobStatus.SKIPPED:
        return f"pick-up note skipped: {job.last_error or 'not sent'}"
    if job.status == JobStatus.FAILED:
        return f"pick-up note failed: {job.last_error or 'unknown error'}"
    if job.last_error and job.attempts:
        return f"pick-up note failed: {job.last_error} (will retry)"
    return "pick-up note pending"


def psa_status_line(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> str:
    """The handoff screen's PSA line, e.g. "Posted to PSA ticket #123 ✓ · pick-up note ✓",
    "PSA note failed: PSA ticket #123 not found", or "" when no note was made.

    Any member of the handoff's account may read it; another account's handoff is
    NotFound.
    """
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id))
    if handoff is None or handoff.account_id != actor.account_id:
        raise NotFound("Handoff not found.")
    jobs = outbox.jobs_of_handoff(db, handoff.id, [outbox.JobKind.PSA_NOTE])
    by_note = {j.payload.get("note"): j for j in jobs if j.account_id == actor.account_id}
    escalation, claim = by_note.get(KIND_PSA_ESCALATION), by_note.get(KIND_PSA_CLAIM)
    if escalation is None and claim is None:
        return ""
    if escalation is None:
        assert claim is not None
        return f"PSA ticket {_ticket_label(claim.payload.get('ticket_id'))}: {_claim_part(claim)}"
    parts = [_escalation_part(escalation, utcnow())]
    if claim is not None:
        parts.append(_claim_part(claim))
    return " · ".join(parts)
