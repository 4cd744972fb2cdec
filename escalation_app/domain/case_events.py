"""The record of a case after its handoff: one `CaseEvent` row per transition, and how
each handoff ended.

`handoffs` (claim, escalate onward) and `casework` (resolve, hand back, release,
reassign) write through these helpers inside their own transactions; the session
history, the CSV export and the analytics read the rows back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.models import CaseEvent, CaseEventKind, SessionHandoff, SupportSession, User

NOTE_MAX = 2000


class RootCause(StrEnum):
    """What was behind a fixed problem: the one list of root-cause categories."""

    CONFIGURATION = "configuration"
    SOFTWARE = "software"
    HARDWARE = "hardware"
    NETWORK = "network"
    PERMISSIONS = "permissions"
    THIRD_PARTY = "third_party"
    USER = "user"
    OTHER = "other"


ROOT_CAUSE_LABELS: dict[str, str] = {
    RootCause.CONFIGURATION: "Configuration",
    RootCause.SOFTWARE: "Software bug or update",
    RootCause.HARDWARE: "Hardware failure",
    RootCause.NETWORK: "Network or connectivity",
    RootCause.PERMISSIONS: "Permissions or access",
    RootCause.THIRD_PARTY: "Vendor or third party",
    RootCause.USER: "User error or training",
    RootCause.OTHER: "Other",
}


def root_cause_label(value: str | None) -> str:
    return ROOT_CAUSE_LABELS.get(value or "", value or "")


def record(
    db: Session,
    *,
    support_session: SupportSession,
    kind: CaseEventKind,
    actor_id: int,
    now: datetime,
    handoff_id: uuid.UUID | None = None,
    subject_user_id: int | None = None,
    note: str = "",
    root_cause: str | None = None,
) -> CaseEvent:
    """Add the history row of one transition to the caller's transaction (flushed: it has an id)."""
    event = CaseEvent(
        account_id=support_session.account_id,
        session_id=support_session.id,
        handoff_id=handoff_id,
        kind=kind,
        actor_id=actor_id,
        subject_user_id=subject_user_id,
        note=(note or "")[:NOTE_MAX],
        root_cause=root_cause,
        created_at=now,
    )
    db.add(event)
    db.flush()
    return event


def open_handoff(db: Session, session_id: int) -> SessionHandoff | None:
    """The session's newest handoff that has not ended (waiting, or being worked)."""
    return db.exec(
        select(SessionHandoff)
        .where(SessionHandoff.session_id == session_id, col(SessionHandoff.outcome).is_(None))
        .order_by(col(SessionHandoff.created_at).desc())
    ).first()


def close_open_handoffs(db: Session, session_id: int, outcome: str, now: datetime) -> None:
    """End every open handoff of a session (the worked one, and any stale card of it)."""
    db.exec(
        update(SessionHandoff)
        .where(col(SessionHandoff.session_id) == session_id, col(SessionHandoff.outcome).is_(None))
        .values(outcome=outcome, outcome_at=now)
    )


def lock_session(db: Session, session_id: int) -> SupportSession | None:
    """Load a session and lock its row (PostgreSQL; SQLite serialises writers anyway).

    Every transition of a session takes this lock first, so two people acting at the
    same moment run one after the other and the second sees what the first did.
    """
    # Read the row afresh under the lock (not the copy this session may already hold).
    # Only this row: expiring everything would reach objects the caller still holds.
    return db.exec(
        select(SupportSession)
        .where(SupportSession.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


_DID = {
    CaseEventKind.CLAIMED: "picked it up",
    CaseEventKind.RESOLVED: "resolved it",
    CaseEventKind.HANDED_BACK: "handed it back",
    CaseEventKind.ESCALATED_ON: "escalated it onward",
    CaseEventKind.RELEASED: "released it to the queue",
    CaseEventKind.REASSIGNED: "reassigned it",
}


def last_change(db: Session, session_id: int) -> str:
    """What happened to the session last, for the person who was too late:
    "Morgan Lee resolved it" / "Riley Chen reassigned it to Sam Patel"."""
    row = db.exec(
        select(CaseEvent, User.display_name)
        .join(User, col(User.id) == CaseEvent.actor_id)
        .where(CaseEvent.session_id == session_id)
        .order_by(col(CaseEvent.created_at).desc(), col(CaseEvent.id).desc())
    ).first()
    if row is None:
        return "Someone changed it"
    event, name = row
    text = f"{name} {_DID.get(event.kind, 'changed it')}"
    if event.kind == CaseEventKind.REASSIGNED and event.subject_user_id:
        subject = db.get(User, event.subject_user_id)
        if subject is not None:
            text += f" to {subject.display_name}"
    return text


def held_by(db: Session, session_id: int, user_id: int) -> bool:
    """Whether the user ever held this case (picked it up, or had it reassigned to them)."""
    return (
        db.exec(
            select(CaseEvent.id)
            .where(
                CaseEvent.session_id == session_id,
                CaseEvent.subject_user_id == user_id,
                col(CaseEvent.kind).in_([CaseEventKind.CLAIMED.value, CaseEventKind.REASSIGNED.value]),
            )
            .limit(1)
        ).first()
        is not None
    )


def too_late(db: Session, support_session: SupportSession, what: str) -> InvalidInput:
    """The message for someone whose click came after another person's change (the
    caller's transaction is rolled back): "Morgan Lee resolved it, so you cannot hand it
    back any more. Nothing was changed." """
    change = last_change(db, support_session.id)
    resolved = support_session.status == "resolved"
    db.rollback()
    if resolved:
        return InvalidInput(f"This session is already resolved ({change}). Nothing was changed.")
    return InvalidInput(f"{change}, so you cannot {what} any more. Nothing was changed.")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of a session's case timeline."""

    kind: str
    actor_name: str
    subject_name: str | None
    note: str
    root_cause: str | None
    handoff_id: str | None
    created_at: datetime

    @property
    def text(self) -> str:
        subject = self.subject_name or "someone"
        match self.kind:
            case CaseEventKind.CLAIMED:
                return f"{self.actor_name} picked it up"
            case CaseEventKind.RESOLVED:
                return f"{self.actor_name} resolved it ({root_cause_label(self.root_cause)})"
            case CaseEventKind.HANDED_BACK:
                return f"{self.actor_name} handed it back to {subject}"
            case CaseEventKind.ESCALATED_ON:
                to = f" to {self.subject_name}" if self.subject_name else " to the team"
                return f"{self.actor_name} escalated it onward{to}"
            case CaseEventKind.RELEASED:
                return f"{self.actor_name} released it to the queue"
            case CaseEventKind.REASSIGNED:
                return f"{self.actor_name} reassigned it to {subject}"
        return f"{self.actor_name}: {self.kind}"


def timeline(db: Session, support_session: SupportSession) -> list[TimelineEntry]:
    """The session's case events, oldest first (the caller has checked access)."""
    users = dict(
        db.exec(select(User.id, User.display_name).where(User.account_id == support_session.account_id)).all()
    )
    rows = db.exec(
        select(CaseEvent)
        .where(CaseEvent.session_id == support_session.id, CaseEvent.account_id == support_session.account_id)
        .order_by(col(CaseEvent.created_at), col(CaseEvent.id))
    ).all()
    return [
        TimelineEntry(
            kind=e.kind,
            actor_name=users.get(e.actor_id, "Unknown"),
            subject_name=users.get(e.subject_user_id) if e.subject_user_id else None,
            note=e.note,
            root_cause=e.root_cause,
            handoff_id=str(e.handoff_id) if e.handoff_id else None,
            created_at=e.created_at,
        )
        for e in rows
    ]


def chain(
    db: Session, support_session: SupportSession, entries: list[TimelineEntry] | None = None
) -> list[str]:
    """Who held the case, in order: ["Alex Kim", "Riley Chen", "Alex Kim", "Morgan Lee"]."""
    owner = db.get(User, support_session.owner_id)
    people = [owner.display_name if owner else "Unknown"]
    for entry in entries if entries is not None else timeline(db, support_session):
        holder = None
        if entry.kind == CaseEventKind.CLAIMED:
            holder = entry.actor_name
        elif entry.kind in (CaseEventKind.REASSIGNED, CaseEventKind.HANDED_BACK):
            holder = entry.subject_name
        if holder and holder != people[-1]:
            people.append(holder)
    return people


@dataclass(frozen=True, slots=True)
class Guidance:
    """What the senior said when handing the session back (shown atop the owner's screen)."""

    by_name: str
    text: str
    created_at: datetime


def current_guidance(db: Session, support_session: SupportSession) -> Guidance | None:
    """The hand-back guidance while the owner works the session again after it, else None."""
    if support_session.status != "active" or support_session.assignee_id is not None:
        return None
    last = db.exec(
        select(CaseEvent)
        .where(CaseEvent.session_id == support_session.id)
        .order_by(col(CaseEvent.created_at).desc(), col(CaseEvent.id).desc())
    ).first()
    if last is None or last.kind != CaseEventKind.HANDED_BACK:
        return None
    by = db.get(User, last.actor_id)
    return Guidance(
        by_name=by.display_name if by else "A teammate", text=last.note, created_at=last.created_at
    )
