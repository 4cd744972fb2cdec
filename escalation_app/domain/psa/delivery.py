"""The delivery record of every PSA note, and the handoff screen's PSA line.

Every note is a `DeliveryRecord` (channel "psa", kind "psa_escalation" or "psa_claim").
The HTTP side lives in `services/psa.py`; this module decides, in short transactions,
which notes exist and who may post them:

- queued, `next_attempt_at` set: waiting (for the AI summary, or for the escalation
  note to go first) until that time; `take_waiting` / `take_due` take it.
- queued, `next_attempt_at` empty: being posted by the worker that took it.
- failed, `next_attempt_at` set: a retry is due then; empty: given up.
- sent / skipped.

Taking a note is one conditional UPDATE, so with several workers exactly one posts
it, and there is at most one escalation note and one pick-up note per handoff.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain import deliveries
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import InvalidInput, NotFound
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.domain.integrations import integration_row
from escalation_app.domain.models import (
    AccountIntegration,
    AIStatus,
    DeliveryChannel,
    DeliveryRecord,
    DeliveryStatus,
    HandoffIntent,
    SessionHandoff,
    SessionStep,
    SupportSession,
    User,
)
from escalation_app.domain.psa.connection import PsaCredentials, PsaSecretUnreadable, load_psa_credentials
from escalation_app.domain.psa.notes import _ticket_label, claim_note, escalation_note, ticket_number
from escalation_app.domain.types import utcnow
from escalation_app.settings import get_settings

KIND_PSA_ESCALATION = "psa_escalation"
KIND_PSA_CLAIM = "psa_claim"
# The escalation note is posted before the pick-up note of the same handoff.
_KIND_ORDER = {KIND_PSA_ESCALATION: 0, KIND_PSA_CLAIM: 1}

# How long past the AI time budget an escalation note waits for the summary before
# it is posted without one (when `on_assessment_ready` never comes).
AI_WAIT_MARGIN = timedelta(seconds=30)
# A pick-up note waits this long at most for an escalation note that is being posted.
CLAIM_WAIT = timedelta(minutes=2)
# A note "being posted" for this long was interrupted (the process stopped).
STALE_SENDING_AFTER = timedelta(minutes=5)

NO_CONNECTION = "PSA connection no longer configured"
INTERRUPTED = "Interrupted before it finished; will retry."


@dataclass(frozen=True, slots=True)
class PsaJob:
    """One note to post now, taken by this worker."""

    record_id: int
    handoff_id: uuid.UUID
    kind: str
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


def _record(db: Session, handoff_id: uuid.UUID, kind: str) -> DeliveryRecord | None:
    return db.exec(
        select(DeliveryRecord).where(
            DeliveryRecord.handoff_id == handoff_id,
            DeliveryRecord.channel == DeliveryChannel.PSA,
            DeliveryRecord.kind == kind,
        )
    ).first()


def _name(db: Session, user_id: int | None) -> str | None:
    user = db.get(User, user_id) if user_id else None
    return user.display_name if user else None


def _note_text(db: Session, record: DeliveryRecord, handoff: SessionHandoff) -> str:
    if record.kind == KIND_PSA_CLAIM:
        name = record.payload.get("claimer_name") or _name(db, handoff.claimed_by_id)
        return claim_note(name or "")
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


def _jobs(db: Session, records: list[DeliveryRecord]) -> list[PsaJob]:
    """Jobs for records this worker has taken; the ones that cannot be posted are
    marked skipped or failed (not committed)."""
    jobs = []
    credentials: dict[int, PsaCredentials | PsaSecretUnreadable | None] = {}
    for record in sorted(records, key=lambda r: (str(r.handoff_id), _KIND_ORDER.get(r.kind, 9), r.id)):
        assert record.id is not None and record.handoff_id is not None
        if record.account_id not in credentials:
            try:
                credentials[record.account_id] = load_psa_credentials(db, record.account_id)
            except PsaSecretUnreadable as exc:
                credentials[record.account_id] = exc
        found = credentials[record.account_id]
        if found is None:
            deliveries.mark_skipped(db, record.id, NO_CONNECTION)
            continue
        if isinstance(found, PsaSecretUnreadable):
            deliveries.mark_failed(db, record.id, found.message, retry=False)
            continue
        handoff = db.get(SessionHandoff, record.handoff_id)
        if handoff is None:
            deliveries.mark_skipped(db, record.id, "Handoff no longer exists")
            continue
        try:
            ticket = ticket_number(record.payload.get("ticket_id"))
        except InvalidInput as exc:
            deliveries.mark_failed(db, record.id, exc.message, retry=False)
            continue
        jobs.append(
            PsaJob(record.id, record.handoff_id, record.kind, ticket, _note_text(db, record, handoff), found)
        )
    return jobs


def _add_note_record(
    db: Session, handoff: SessionHandoff, row: AccountIntegration, ticket: str, kind: str, **extra: object
) -> DeliveryRecord:
    record = deliveries.add_delivery(
        db,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        channel=DeliveryChannel.PSA,
        recipient=f"{row.psa_type}:{ticket}",
        payload={"ticket_id": ticket, "psa_type": row.psa_type, **extra},
        kind=kind,
    )
    return record


def _connected_ticket(db: Session, handoff: SessionHandoff) -> tuple[AccountIntegration, str] | None:
    if handoff.intent != HandoffIntent.ESCALATE:
        return None
    row = integration_row(db, handoff.account_id)
    if row is None or not row.psa_type:
        return None
    ticket = _ticket_of(db, handoff)
    return (row, ticket) if ticket else None


def start_escalation_note(db: Session, handoff_id: str | uuid.UUID, *, ai_wait: timedelta) -> list[PsaJob]:
    """Create the escalation note's record (once per handoff) and commit.

    Nothing for a park, an account without a PSA connection or a session without a
    ticket id. While the AI assessment is pending the note waits (until `ai_wait`
    after the handoff was created, plus a margin) and an empty list is returned;
    otherwise the note is taken by the caller, who posts the returned job.
    """
    # The lock serialises this with the assessment's own write (PostgreSQL) so either
    # we see it finished, or `take_waiting` after it sees our waiting record.
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id), with_for_update=True)
    target = _connected_ticket(db, handoff) if handoff is not None else None
    if handoff is None or target is None or _record(db, handoff.id, KIND_PSA_ESCALATION) is not None:
        db.commit()
        return []
    row, ticket = target
    record = _add_note_record(db, handoff, row, ticket, KIND_PSA_ESCALATION)
    if handoff.ai_status == AIStatus.PENDING:
        record.next_attempt_at = max(handoff.created_at + ai_wait + AI_WAIT_MARGIN, utcnow())
        db.commit()
        return []
    db.flush()
    jobs = _jobs(db, [record])
    db.commit()
    return jobs


def start_claim_note(db: Session, handoff_id: str | uuid.UUID, claimer_name: str | None) -> list[PsaJob]:
    """Create the pick-up note's record (once per handoff) and commit.

    It waits while the escalation note has not been posted yet (so the ticket reads
    in order); `take_waiting` releases it when that note is done.
    """
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id), with_for_update=True)
    target = _connected_ticket(db, handoff) if handoff is not None else None
    if (
        handoff is None
        or target is None
        or handoff.claimed_by_id is None
        or _record(db, handoff.id, KIND_PSA_CLAIM) is not None
    ):
        db.commit()
        return []
    row, ticket = target
    name = " ".join(str(claimer_name or "").split()) or _name(db, handoff.claimed_by_id) or ""
    record = _add_note_record(db, handoff, row, ticket, KIND_PSA_CLAIM, claimer_name=name[:120])
    first = _record(db, handoff.id, KIND_PSA_ESCALATION)
    if first is not None and first.status == DeliveryStatus.QUEUED:
        record.next_attempt_at = first.next_attempt_at or utcnow() + CLAIM_WAIT
        db.commit()
        return []
    db.flush()
    jobs = _jobs(db, [record])
    db.commit()
    return jobs


def _take(db: Session, record: DeliveryRecord) -> bool:
    """Move a waiting or due record to "being posted"; False when another worker did."""
    won = db.exec(
        update(DeliveryRecord)
        .where(
            col(DeliveryRecord.id) == record.id,
            DeliveryRecord.status == record.status,
            DeliveryRecord.attempts == record.attempts,
            col(DeliveryRecord.next_attempt_at).is_not(None),
        )
        .values(status=DeliveryStatus.QUEUED, next_attempt_at=None, updated_at=utcnow())
        .returning(col(DeliveryRecord.id))
    ).first()
    return won is not None


def take_waiting(
    db: Session,
    handoff_id: str | uuid.UUID,
    *,
    kinds: tuple[str, ...] = (KIND_PSA_ESCALATION, KIND_PSA_CLAIM),
) -> list[PsaJob]:
    """Take a handoff's waiting notes of `kinds` (escalation first) and commit."""
    hid = parse_handoff_id(handoff_id)
    db.get(SessionHandoff, hid, with_for_update=True)
    waiting = db.exec(
        select(DeliveryRecord).where(
            DeliveryRecord.handoff_id == hid,
            DeliveryRecord.channel == DeliveryChannel.PSA,
            col(DeliveryRecord.kind).in_(list(kinds)),
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            col(DeliveryRecord.next_attempt_at).is_not(None),
        )
    ).all()
    taken = [record for record in waiting if _take(db, record)]
    jobs = _jobs(db, taken)
    db.commit()
    return jobs


def take_due(db: Session, *, now: datetime | None = None, limit: int = 100) -> list[PsaJob]:
    """Take every note whose time has come and commit: interrupted posts become due
    failures, waiting notes past their wait, and failed notes whose retry is due."""
    now = now or utcnow()
    stale = db.exec(
        select(DeliveryRecord.id).where(
            DeliveryRecord.channel == DeliveryChannel.PSA,
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            col(DeliveryRecord.next_attempt_at).is_(None),
            col(DeliveryRecord.updated_at) <= now - STALE_SENDING_AFTER,
        )
    ).all()
    for record_id in stale:
        db.exec(
            update(DeliveryRecord)
            .where(
                col(DeliveryRecord.id) == record_id,
                DeliveryRecord.status == DeliveryStatus.QUEUED,
                col(DeliveryRecord.next_attempt_at).is_(None),
            )
            .values(
                status=DeliveryStatus.FAILED,
                attempts=DeliveryRecord.attempts + 1,
                last_error=INTERRUPTED,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    waiting = db.exec(
        select(DeliveryRecord)
        .where(
            DeliveryRecord.channel == DeliveryChannel.PSA,
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            col(DeliveryRecord.next_attempt_at).is_not(None),
            col(DeliveryRecord.next_attempt_at) <= now,
        )
        .order_by(col(DeliveryRecord.next_attempt_at), col(DeliveryRecord.id))
        .limit(limit)
    ).all()
    due = deliveries.due_for_retry(db, now=now, channels=(DeliveryChannel.PSA,), limit=limit)
    taken = [record for record in [*waiting, *due] if _take(db, record)]
    jobs = _jobs(db, taken)
    db.commit()
    return jobs


def record_outcome(
    db: Session, record_id: int, *, error: str | None = None, retry: bool = True, text: str | None = None
) -> None:
    """Write the outcome of one post onto its record and commit.

    A failure with `retry` gets the next retry time while attempts are left
    (`deliveries.MAX_ATTEMPTS`, `deliveries.RETRY_BACKOFF`). The posted text is kept
    on the record's payload.
    """
    record = db.get(DeliveryRecord, record_id, populate_existing=True)
    if record is None:
        return
    now = utcnow()
    record.attempts += 1
    if text is not None:
        record.payload = {**(record.payload or {}), "text": text}
    if error is None:
        record.status = DeliveryStatus.SENT
        record.last_error = None
        record.next_attempt_at = None
        record.sent_at = now
    else:
        record.status = DeliveryStatus.FAILED
        record.last_error = error[: deliveries.ERROR_MAX]
        record.next_attempt_at = deliveries.next_attempt_after(record.attempts, now) if retry else None
    record.updated_at = now
    db.add(record)
    db.commit()


# ---------------------------------------------------------------------------
# The handoff screen's line
# ---------------------------------------------------------------------------


def _retrying(record: DeliveryRecord) -> bool:
    return record.next_attempt_at is not None and record.attempts < deliveries.MAX_ATTEMPTS


def _escalation_part(record: DeliveryRecord) -> str:
    ticket = _ticket_label(record.payload.get("ticket_id"))
    if record.status == DeliveryStatus.SENT:
        return f"Posted to PSA ticket {ticket} ✓"
    if record.status == DeliveryStatus.QUEUED:
        if record.next_attempt_at is not None:
            return f"PSA note for ticket {ticket} waits for the AI summary"
        return f"Posting to PSA ticket {ticket}…"
    if record.status == DeliveryStatus.SKIPPED:
        return f"PSA note skipped: {record.last_error or 'not sent'}"
    return f"PSA note failed: {record.last_error or 'unknown error'}" + (
        " (will retry)" if _retrying(record) else ""
    )


def _claim_part(record: DeliveryRecord) -> str:
    if record.status == DeliveryStatus.SENT:
        return "pick-up note ✓"
    if record.status == DeliveryStatus.QUEUED:
        return "pick-up note pending"
    if record.status == DeliveryStatus.SKIPPED:
        return f"pick-up note skipped: {record.last_error or 'not sent'}"
    return f"pick-up note failed: {record.last_error or 'unknown error'}" + (
        " (will retry)" if _retrying(record) else ""
    )


def psa_status_line(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> str:
    """The handoff screen's PSA line, e.g. "Posted to PSA ticket #123 ✓ · pick-up note ✓",
    "PSA note failed: PSA ticket #123 not found", or "" when no note was made.

    Any member of the handoff's account may read it; another account's handoff is
    NotFound.
    """
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id))
    if handoff is None or handoff.account_id != actor.account_id:
        raise NotFound("Handoff not found.")
    records = db.exec(
        select(DeliveryRecord).where(
            DeliveryRecord.handoff_id == handoff.id,
            DeliveryRecord.account_id == actor.account_id,
            DeliveryRecord.channel == DeliveryChannel.PSA,
        )
    ).all()
    by_kind = {r.kind: r for r in records}
    escalation, claim = by_kind.get(KIND_PSA_ESCALATION), by_kind.get(KIND_PSA_CLAIM)
    if escalation is None and claim is None:
        return ""
    if escalation is None:
        assert claim is not None
        part = _claim_part(claim)
        return f"PSA ticket {_ticket_label(claim.payload.get('ticket_id'))}: {part}"
    parts = [_escalation_part(escalation)]
    if claim is not None:
        parts.append(_claim_part(claim))
    return " · ".join(parts)
