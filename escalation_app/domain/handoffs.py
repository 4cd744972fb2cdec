"""Handoffs: park or escalate a session, claim it, and read the queue and history.

This module is where a claim is decided; see `claim_handoff`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import case, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from escalation_app.domain import case_events, clock, completeness, effects, validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import AlreadyClaimed, InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.models import (
    AccountRole,
    AIStatus,
    CaseEventKind,
    HandoffIntent,
    HandoffOutcome,
    Notification,
    Priority,
    SessionHandoff,
    SessionStatus,
    SessionStep,
    SupportSession,
    User,
)
from escalation_app.domain.support_sessions import list_steps
from escalation_app.domain.types import utcnow

NOTES_MAX = 5000


class HandOffIntent(StrEnum):
    """What `create_handoff` accepts (a hand-back is `casework.hand_back`)."""

    PARK = HandoffIntent.PARK.value
    ESCALATE = HandoffIntent.ESCALATE.value


QUEUE_LIMIT = 200
WORKER_ROLES = (AccountRole.OWNER, AccountRole.ADMIN, AccountRole.ENGINEER)


def parse_handoff_id(handoff_id: str | uuid.UUID) -> uuid.UUID:
    """Parse a handoff id; a malformed one is simply not found."""
    if isinstance(handoff_id, uuid.UUID):
        return handoff_id
    try:
        return uuid.UUID(str(handoff_id))
    except ValueError:
        raise NotFound("Handoff not found.") from None


def eligible_recipients(
    db: Session, *, account_id: int, exclude_user_id: int | None, team_id: int | None = None
) -> list[User]:
    """Active, non-deleted owners, admins and engineers of an account (never viewers).

    With `team_id` (the handoff's team), only those who may read it: owners and admins,
    the team's engineers and engineers without a team (who see the whole account).
    """
    query = select(User).where(
        User.account_id == account_id,
        col(User.is_active).is_(True),
        col(User.deleted_at).is_(None),
        col(User.account_role).in_([r.value for r in WORKER_ROLES]),
    )
    if team_id is not None:
        query = query.where(
            or_(
                col(User.account_role).in_([AccountRole.OWNER.value, AccountRole.ADMIN.value]),
                col(User.team_id).is_(None),
                User.team_id == team_id,
            )
        )
    if exclude_user_id is not None:
        query = query.where(User.id != exclude_user_id)
    return list(db.exec(query.order_by(col(User.id))).all())


def _resolve_target(db: Session, actor: Actor, target_user_id: int | None) -> User | None:
    if target_user_id in (None, "", 0):
        return None
    try:
        target_id = int(target_user_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput("Send to must be a teammate.") from None
    if not 0 < target_id <= 2**31 - 1:
        raise InvalidInput("That teammate was not found or cannot take escalations.")
    if target_id == actor.id:
        raise InvalidInput("Cannot escalate a session to yourself. Use park instead.")
    target = db.get(User, target_id)
    if (
        target is None
        or target.account_id != actor.account_id
        or not target.is_active
        or target.deleted_at is not None
        or target.account_role not in WORKER_ROLES
    ):
        raise InvalidInput("That teammate was not found or cannot take escalations.")
    return target


def build_snapshot(
    support_session: SupportSession, steps: list[SessionStep], earlier: list[dict] | None = None
) -> dict:
    """Freeze what the session looked like at handoff time.

    `earlier`: the session's previous handoffs ({"by", "intent", "notes"}, oldest first),
    so a senior taking an onward escalation reads what everyone before them said.
    """
    lines = []
    for step in steps:
        marker = " (skipped)" if step.skipped else ""
        outcome = f" → {step.result}" if step.result else ""
        lines.append(f"{step.position}. {step.tried}{marker}{outcome}")
    return {
        "problem_summary": support_session.problem_summary,
        "problem_domain": support_session.problem_domain,
        "client_name": support_session.client_name,
        "psa_ticket_id": support_session.psa_ticket_id,
        "status": support_session.status,
        "confidence_tier": support_session.confidence_tier,
        "step_count": len(steps),
        "steps_text": "\n".join(lines),
        "steps": [
            {"position": s.position, "tried": s.tried, "result": s.result, "skipped": s.skipped}
            for s in steps
        ],
        "earlier_handoffs": earlier or [],
    }


EARLIER_NOTES_MAX = 1000


def _earlier_handoffs(db: Session, session_id: int) -> list[dict]:
    rows = db.exec(
        select(SessionHandoff.intent, SessionHandoff.engineer_notes, User.display_name)
        .join(User, col(User.id) == SessionHandoff.handed_off_by_id)
        .where(SessionHandoff.session_id == session_id)
        .order_by(col(SessionHandoff.created_at))
    ).all()
    return [
        {"by": name, "intent": intent, "notes": (notes or "")[:EARLIER_NOTES_MAX]}
        for intent, notes, name in rows
    ]


def create_handoff(
    *,
    db: Session,
    actor: Actor,
    session_id: int,
    intent: str,
    notes: str = "",
    priority: str | None = None,
    target_user_id: int | None = None,
    customer_sees: str = "",
    wake_at: datetime | None = None,
) -> SessionHandoff:
    """Park or escalate a session, in one transaction.

    The session's owner parks or escalates it while nobody else works it; the senior
    who picked it up (its assignee) can escalate it onward (to the team or a named
    teammate): their handoff ends (`escalated_on`), the new one waits in the queue with
    a snapshot of every step tried so far and of what everyone before said.

    Validates everything first, snapshots the session, moves its status (park →
    paused, escalate → escalated), inserts the handoff and, for an escalation, the
    in-app notification rows of its recipients, and its outbox jobs (live push; for an
    escalation also emails, webhooks, the PSA note and the AI assessment: see
    `domain.effects`), and its timers (`domain.clock`: an escalation's response target
    and re-escalation levels; a park's wake-up at `wake_at`, see `clock.park`). Nothing
    is sent unless this commits. An escalation also keeps "what the customer sees" in
    its snapshot and how many items of the completeness check (`domain.completeness`)
    were missing: a hint, never a refusal.
    """
    if not actor.can_work_handoffs:
        raise PermissionDenied("Viewers have read-only access.")
    chosen_intent = validation.choice(intent, HandOffIntent, "Intent")
    chosen_priority = validation.choice(priority, Priority, "Priority", default=Priority.NORMAL)
    notes_text = validation.text(notes, "Notes", max_length=NOTES_MAX)
    sees_text = validation.text(
        customer_sees, "What the customer sees", max_length=completeness.CUSTOMER_SEES_MAX
    )

    support_session = case_events.lock_session(db, session_id)
    if support_session is None or support_session.account_id != actor.account_id:
        raise NotFound("Session not found.")
    if actor.id not in (support_session.owner_id, support_session.assignee_id):
        if case_events.held_by(db, support_session.id, actor.id):
            raise case_events.too_late(db, support_session, "escalate it")
        raise NotFound("Session not found.")
    onward = support_session.assignee_id == actor.id and support_session.owner_id != actor.id

    if support_session.status == SessionStatus.RESOLVED:
        raise InvalidInput("This session is resolved and cannot be handed off.")
    if support_session.status == SessionStatus.ESCALATED:
        raise InvalidInput("This session is already escalated and waiting for a senior.")
    if support_session.status == SessionStatus.PAUSED and chosen_intent == HandoffIntent.PARK:
        raise InvalidInput("This session is already parked.")
    if support_session.assignee_id is not None and not onward:
        assignee = db.get(User, support_session.assignee_id)
        name = assignee.display_name if assignee else "A teammate"
        raise InvalidInput(f"{name} is working on this session now; they can hand it back to you.")
    if onward and chosen_intent == HandoffIntent.PARK:
        raise InvalidInput("Only the session's owner can park it. Hand it back or release it instead.")
    if chosen_intent == HandoffIntent.PARK and target_user_id not in (None, "", 0):
        raise InvalidInput("Only escalations can be sent to a teammate.")
    target = _resolve_target(db, actor, target_user_id)
    if onward and target is not None and target.id == support_session.owner_id:
        raise InvalidInput(f"To give it back to {target.display_name}, use Hand back.")

    steps = list_steps(db=db, session_id=session_id)
    earlier = _earlier_handoffs(db, session_id)
    now = utcnow()
    previous = case_events.open_handoff(db, session_id) if onward else None
    # A stale park card of this session leaves the queue; the worked handoff ends here.
    case_events.close_open_handoffs(db, session_id, HandoffOutcome.ESCALATED_ON, now)
    handoff = SessionHandoff(
        session_id=session_id,
        account_id=actor.account_id,
        team_id=support_session.team_id,
        handed_off_by_id=actor.id,
        intent=chosen_intent,
        priority=chosen_priority,
        engineer_notes=notes_text,
        target_user_id=target.id if target else None,
        snapshot=build_snapshot(support_session, steps, earlier),
        ai_status=AIStatus.PENDING if chosen_intent == HandoffIntent.ESCALATE else AIStatus.NOT_NEEDED,
        created_at=now,
    )
    if chosen_intent == HandoffIntent.ESCALATE:
        if sees_text:
            handoff.snapshot["customer_sees"] = sees_text
        handoff.completeness_missing = completeness.check(
            step_count=len(steps),
            client_name=support_session.client_name,
            psa_ticket_id=support_session.psa_ticket_id,
            notes=notes_text,
            customer_sees=sees_text,
        ).missing
    clock.arm(db, handoff, now=now, wake_at=wake_at if chosen_intent == HandoffIntent.PARK else None)
    db.add(handoff)
    # Notifications reference the handoff; without ORM relationships the unit of work
    # does not know to insert the handoff first.
    db.flush()
    clock.start_timers(db, handoff, now=now)

    teammates: list[User] = []
    if chosen_intent == HandoffIntent.PARK:
        support_session.status = SessionStatus.PAUSED
    else:
        support_session.status = SessionStatus.ESCALATED
        support_session.escalation_reason = notes_text or None
        support_session.escalated_to_id = target.id if target else None
        # Those who may open it: the team's queue, managers, and people without a team.
        teammates = eligible_recipients(
            db, account_id=actor.account_id, exclude_user_id=actor.id, team_id=support_session.team_id
        )
        recipients = [target] if target else teammates
        title_prefix = "Escalated to you" if target else "New escalation"
        for recipient in recipients:
            db.add(
                Notification(
                    account_id=actor.account_id,
                    user_id=recipient.id,
                    handoff_id=handoff.id,
                    title=f"{title_prefix}: {support_session.problem_summary}",
                    body=f"{actor.display_name} · {chosen_priority.value} priority",
                    link=f"/handoffs/{handoff.id}",
                    created_at=now,
                )
            )
    if onward:
        support_session.assignee_id = None
        case_events.record(
            db,
            support_session=support_session,
            kind=CaseEventKind.ESCALATED_ON,
            actor_id=actor.id,
            now=now,
            handoff_id=previous.id if previous else handoff.id,
            subject_user_id=target.id if target else None,
            note=notes_text,
        )
    support_session.handoff_count += 1
    support_session.updated_at = now
    db.add(support_session)
    effects.handoff_created(db, handoff, recipients=teammates, now=now)
    if previous is not None:
        effects.case_changed(db, account_id=actor.account_id, handoff_id=previous.id, now=now)
    db.commit()
    return handoff


# Who may read what (the README's roles table says the same):
# - owners, admins and viewers read every handoff and session history of their account;
# - an engineer reads the handoffs they handed off, were sent or picked up, and those in
#   their team's queue (their team's and team-less ones; every one when they have no
#   team), and a session's history when they own the session or may read one of its
#   handoffs (then only the handoffs they may read).
# Anything else answers "not found", exactly like another account's ids.
ACCOUNT_WIDE_READERS = (AccountRole.OWNER, AccountRole.ADMIN, AccountRole.VIEWER)


def readable_handoffs(actor: Actor) -> list:
    """SQL conditions on SessionHandoff selecting the handoffs `actor` may read."""
    conditions: list = [SessionHandoff.account_id == actor.account_id]
    if actor.role in ACCOUNT_WIDE_READERS or (actor.role == AccountRole.ENGINEER and actor.team_id is None):
        return conditions
    party = [
        SessionHandoff.handed_off_by_id == actor.id,
        SessionHandoff.target_user_id == actor.id,
        SessionHandoff.claimed_by_id == actor.id,
    ]
    if actor.role == AccountRole.ENGINEER:
        party += [SessionHandoff.team_id == actor.team_id, col(SessionHandoff.team_id).is_(None)]
    conditions.append(or_(*party))
    return conditions


def can_read_handoff(actor: Actor, handoff: SessionHandoff) -> bool:
    """Whether `actor` may open `handoff` (the rule of `readable_handoffs`, in Python)."""
    if handoff.account_id != actor.account_id:
        return False
    if actor.role in ACCOUNT_WIDE_READERS:
        return True
    if actor.id in (handoff.handed_off_by_id, handoff.target_user_id, handoff.claimed_by_id):
        return True
    return actor.role == AccountRole.ENGINEER and is_in_queue_scope(actor, handoff)


def load_handoff(db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> SessionHandoff:
    """A handoff the actor may read; anything else (malformed id included) is NotFound."""
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id))
    if handoff is None or not can_read_handoff(actor, handoff):
        raise NotFound("Handoff not found.")
    return handoff


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The outcome of a successful claim."""

    handoff: SessionHandoff
    # False when the actor had already claimed it (a repeated click is a no-op).
    newly_claimed: bool


def claim_handoff(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> ClaimResult:
    """Pick up a handoff. Exactly one of any number of concurrent claimers wins.

    The decision is a single conditional UPDATE (`... WHERE claimed_by_id IS NULL
    RETURNING`): the database lets one transaction change the row, and every other
    one updates nothing and then reads who won. Losers get `AlreadyClaimed` with the
    winner's name and claim time; the winner repeating the claim is a no-op success.
    The winner's transaction also adds the claim's outbox jobs (`effects.handoff_claimed`).
    """
    if not actor.can_work_handoffs:
        raise PermissionDenied("Viewers cannot pick up handoffs.")
    handoff = load_handoff(db, actor, handoff_id)
    # Claims follow the queue: outside the actor's team queue, unless sent to them, the
    # handoff is not theirs to pick up (and not worth confirming it exists).
    if not (is_in_queue_scope(actor, handoff) or handoff.target_user_id == actor.id):
        raise NotFound("Handoff not found.")
    if handoff.handed_off_by_id == actor.id:
        raise PermissionDenied("Cannot claim your own handoff")

    # The session's row lock first, as every transition of a session takes it: a
    # claim and, say, the owner resolving the session at once run one after the other.
    support_session = case_events.lock_session(db, handoff.session_id)
    assert support_session is not None
    if support_session.owner_id == actor.id:
        raise PermissionDenied("This is your own session; it waits for someone else to pick it up.")
    now = utcnow()
    won = db.exec(
        update(SessionHandoff)
        .where(
            col(SessionHandoff.id) == handoff.id,
            col(SessionHandoff.account_id) == actor.account_id,
            col(SessionHandoff.claimed_by_id).is_(None),
            col(SessionHandoff.outcome).is_(None),
        )
        .values(claimed_by_id=actor.id, claimed_at=now)
        .returning(col(SessionHandoff.id))
    ).first()

    if won is None:
        db.rollback()
        winner = db.exec(
            select(SessionHandoff.claimed_by_id, User.display_name, SessionHandoff.claimed_at)
            .join(User, col(User.id) == SessionHandoff.claimed_by_id)
            .where(SessionHandoff.id == handoff.id)
        ).first()
        if winner is None:
            raise InvalidInput("This handoff has ended; there is nothing left to pick up.")
        winner_id, winner_name, claimed_at = winner
        if winner_id == actor.id:
            db.refresh(handoff)
            return ClaimResult(handoff=handoff, newly_claimed=False)
        raise AlreadyClaimed(winner_id=winner_id, winner_name=winner_name, claimed_at=claimed_at)

    support_session.status = SessionStatus.ACTIVE
    support_session.escalated_to_id = actor.id
    support_session.assignee_id = actor.id
    support_session.updated_at = now
    db.add(support_session)
    case_events.record(
        db,
        support_session=support_session,
        kind=CaseEventKind.CLAIMED,
        actor_id=actor.id,
        now=now,
        handoff_id=handoff.id,
        subject_user_id=actor.id,
    )
    db.refresh(handoff)
    clock.claimed(db, handoff, now=now)
    effects.handoff_claimed(db, handoff, claimer_name=actor.display_name, now=now)
    db.commit()
    db.refresh(handoff)
    return ClaimResult(handoff=handoff, newly_claimed=True)


@dataclass(frozen=True, slots=True)
class QueueCard:
    """What a queue card shows about one unclaimed handoff."""

    id: str
    session_id: int
    problem_summary: str
    client_name: str
    intent: str
    priority: str
    notes: str
    handed_off_by_id: int
    handed_off_by_name: str
    target_user_id: int | None
    created_at: datetime
    # The session's owner (differs from who handed it off for an onward escalation).
    owner_id: int | None = None
    # The escalation clock (`domain.clock`).
    response_due_at: datetime | None = None
    escalation_level: int = 1
    woke_at: datetime | None = None


NOTES_EXCERPT = 180


def card_view(card: QueueCard) -> dict[str, str]:
    """The public fields of one queue card, the same for everyone who sees that queue.

    The live push sends one list to a whole team, so nothing here depends on the viewer:
    the page hides Pick up on the viewer's own cards by comparing `by_id` and `owner_id`.
    """
    notes = card.notes or ""
    excerpt = notes if len(notes) <= NOTES_EXCERPT else notes[: NOTES_EXCERPT - 1].rstrip() + "…"
    return {
        "id": card.id,
        "summary": card.problem_summary,
        "client": card.client_name,
        "intent": card.intent,
        "intent_label": "Escalated" if card.intent == "escalate" else "Parked",
        "priority": card.priority,
        "notes": excerpt,
        "by": card.handed_off_by_name,
        "by_id": str(card.handed_off_by_id),
        "owner_id": str(card.owner_id if card.owner_id is not None else card.handed_off_by_id),
        "created_at": card.created_at.isoformat(),
        "href": f"/handoffs/{card.id}",
        **clock.card_fields(
            intent=card.intent,
            response_due_at=card.response_due_at,
            created_at=card.created_at,
            escalation_level=card.escalation_level,
            woke_at=card.woke_at,
        ),
    }


def _queue_scope(account_id: int, team_id: int | None):
    conditions = [
        SessionHandoff.account_id == account_id,
        col(SessionHandoff.claimed_by_id).is_(None),
        col(SessionHandoff.outcome).is_(None),
    ]
    if team_id is not None:
        # A team member sees their team's handoffs and those not tied to any team.
        conditions.append(or_(SessionHandoff.team_id == team_id, col(SessionHandoff.team_id).is_(None)))
    return conditions


def get_queue(*, db: Session, actor: Actor, limit: int = QUEUE_LIMIT) -> list[QueueCard]:
    """Unclaimed parks and escalations of the actor's team (or account), newest first."""
    return get_team_queue(db=db, account_id=actor.account_id, team_id=actor.team_id, limit=limit)


def get_team_queue(
    *, db: Session, account_id: int, team_id: int | None, limit: int = QUEUE_LIMIT
) -> list[QueueCard]:
    """The queue everyone in `team_id` sees (None: users with no team, who see the whole account).

    For the live push, which reads each team's queue once and sends it to every tab
    showing it; code acting for one user goes through `get_queue`.
    """
    # A snoozed park that woke up comes back to the top.
    newest = func.coalesce(SessionHandoff.woke_at, SessionHandoff.created_at).desc()
    return _cards(db, _queue_scope(account_id, team_id), (newest,), limit)


def _cards(db: Session, conditions: list, order_by: tuple, limit: int) -> list[QueueCard]:
    rows = db.exec(
        select(
            SessionHandoff.id,
            SessionHandoff.session_id,
            SupportSession.problem_summary,
            SupportSession.client_name,
            SessionHandoff.intent,
            SessionHandoff.priority,
            SessionHandoff.engineer_notes,
            SessionHandoff.handed_off_by_id,
            User.display_name,
            SessionHandoff.target_user_id,
            SessionHandoff.created_at,
            SupportSession.owner_id,
            SessionHandoff.response_due_at,
            SessionHandoff.escalation_level,
            SessionHandoff.woke_at,
        )
        .join(SupportSession, col(SupportSession.id) == SessionHandoff.session_id)
        .join(User, col(User.id) == SessionHandoff.handed_off_by_id)
        .where(*conditions)
        .order_by(*order_by)
        .limit(limit)
    ).all()
    return [
        QueueCard(
            id=str(row[0]),
            session_id=row[1],
            problem_summary=row[2],
            client_name=row[3],
            intent=row[4],
            priority=row[5],
            notes=row[6],
            handed_off_by_id=row[7],
            handed_off_by_name=row[8],
            target_user_id=row[9],
            created_at=row[10],
            owner_id=row[11],
            response_due_at=row[12],
            escalation_level=row[13],
            woke_at=row[14],
        )
        for row in rows
    ]


PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}


def next_best_card(*, db: Session, actor: Actor) -> QueueCard | None:
    """The unclaimed escalation the actor should pick up next: highest priority, then
    oldest; never their own (handed off by them, or of a session they own), never one
    sent to someone else. None when there is none (or the actor cannot pick up)."""
    if not actor.can_work_handoffs:
        return None
    rank = case(*[(SessionHandoff.priority == p.value, r) for p, r in PRIORITY_RANK.items()], else_=9)
    conditions = [
        *_queue_scope(actor.account_id, actor.team_id),
        SessionHandoff.intent == HandoffIntent.ESCALATE.value,
        SessionHandoff.handed_off_by_id != actor.id,
        SupportSession.owner_id != actor.id,
        or_(col(SessionHandoff.target_user_id).is_(None), SessionHandoff.target_user_id == actor.id),
    ]
    order = (rank, col(SessionHandoff.created_at), col(SessionHandoff.id))
    cards = _cards(db, conditions, order, 1)
    return cards[0] if cards else None


def is_in_queue_scope(actor: Actor, handoff: SessionHandoff) -> bool:
    """Whether `handoff` belongs in the actor's queue view (ignoring claim state)."""
    if handoff.account_id != actor.account_id:
        return False
    return actor.team_id is None or handoff.team_id in (None, actor.team_id)


def get_readable_session(*, db: Session, actor: Actor, session_id: int) -> SupportSession:
    """A session whose history the actor may read; anything else is NotFound."""
    support_session = db.get(SupportSession, session_id)
    if support_session is None or support_session.account_id != actor.account_id:
        raise NotFound("Session not found.")
    if actor.role in ACCOUNT_WIDE_READERS or support_session.owner_id == actor.id:
        return support_session
    visible = db.exec(
        select(SessionHandoff.id)
        .where(SessionHandoff.session_id == session_id, *readable_handoffs(actor))
        .limit(1)
    ).first()
    if visible is None:
        raise NotFound("Session not found.")
    return support_session


@dataclass(frozen=True, slots=True)
class HandoffRow:
    """One line of a session's handoff history."""

    id: str
    intent: str
    priority: str
    notes: str
    handed_off_by_name: str
    claimed_by_name: str | None
    created_at: datetime
    claimed_at: datetime | None
    outcome: str | None = None
    target_name: str | None = None


def list_handoffs(*, db: Session, actor: Actor, session_id: int) -> list[HandoffRow]:
    """A session's handoffs the actor may read, newest first, with who handed off and who claimed.

    NotFound when the actor may not read the session's history (see `readable_handoffs`).
    """
    get_readable_session(db=db, actor=actor, session_id=session_id)
    by_user = aliased(User)
    claimer = aliased(User)
    target = aliased(User)
    rows = db.exec(
        select(SessionHandoff, by_user.display_name, claimer.display_name, target.display_name)
        .join(by_user, by_user.id == SessionHandoff.handed_off_by_id)
        .outerjoin(claimer, claimer.id == SessionHandoff.claimed_by_id)
        .outerjoin(target, target.id == SessionHandoff.target_user_id)
        .where(SessionHandoff.session_id == session_id, *readable_handoffs(actor))
        .order_by(col(SessionHandoff.created_at).desc())
    ).all()
    return [
        HandoffRow(
            id=str(h.id),
            intent=h.intent,
            priority=h.priority,
            notes=h.engineer_notes,
            handed_off_by_name=by_name,
            claimed_by_name=claimer_name,
            created_at=h.created_at,
            claimed_at=h.claimed_at,
            outcome=h.outcome,
            target_name=target_name,
        )
        for h, by_name, claimer_name, target_name in rows
    ]


@dataclass(frozen=True, slots=True)
class HandoffDetail:
    """Everything the handoff context screen shows."""

    handoff: SessionHandoff
    session: SupportSession
    steps: list[SessionStep]
    handed_off_by_name: str
    claimed_by_name: str | None
    target_name: str | None
    owner_name: str = ""
    assignee_name: str | None = None


def get_handoff_detail(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> HandoffDetail:
    """Load a handoff of the actor's account with its session, steps and names."""
    handoff = load_handoff(db, actor, handoff_id)
    support_session = db.get(SupportSession, handoff.session_id)
    assert support_session is not None

    def name(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        user = db.get(User, user_id)
        return user.display_name if user else None

    return HandoffDetail(
        handoff=handoff,
        session=support_session,
        steps=list_steps(db=db, session_id=support_session.id),
        handed_off_by_name=name(handoff.handed_off_by_id) or "Unknown",
        claimed_by_name=name(handoff.claimed_by_id),
        target_name=name(handoff.target_user_id),
        owner_name=name(support_session.owner_id) or "Unknown",
        assignee_name=name(support_session.assignee_id),
    )
