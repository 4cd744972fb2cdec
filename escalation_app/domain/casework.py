"""After the pick-up: the senior works the case to an end.

The claimer becomes the session's assignee (`handoffs.claim_handoff`); from there the
case is resolved with what fixed it, handed back to its owner with guidance, escalated
onward (`handoffs.create_handoff` by the assignee), released to the queue, or
reassigned by an owner or admin. Each transition here:

- takes the session's row lock first (`case_events.lock_session`), so two people
  acting on one case at the same moment run one after the other, and the second gets
  a clear message saying what the first did, with nothing of theirs saved;
- writes its history row (`CaseEvent`) and ends or moves the handoff it concerns;
- adds its side effects to the same transaction (`domain.effects`): live push, bell,
  email, PSA note. Nothing goes out unless it commits.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from escalation_app.domain import case_events, effects, grading, similar_cases, validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.case_events import NOTE_MAX, RootCause
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import WORKER_ROLES, build_snapshot, eligible_recipients, load_handoff
from escalation_app.domain.models import (
    CaseEvent,
    CaseEventKind,
    HandoffIntent,
    HandoffOutcome,
    SessionHandoff,
    SessionStatus,
    SupportSession,
    User,
)
from escalation_app.domain.support_sessions import list_steps
from escalation_app.domain.types import utcnow

FIX_MAX = 2000
GUIDANCE_MAX = 5000
REASON_MAX = NOTE_MAX


def _session_of_account(db: Session, actor: Actor, session_id: int | str) -> SupportSession:
    """Lock and load a session of the actor's account; anything else is NotFound."""
    try:
        wanted = int(session_id)
    except (TypeError, ValueError):
        raise NotFound("Session not found.") from None
    support_session = case_events.lock_session(db, wanted) if 0 < wanted < 2**31 else None
    if support_session is None or support_session.account_id != actor.account_id:
        db.rollback()
        raise NotFound("Session not found.")
    return support_session


def _too_late(db: Session, support_session: SupportSession, what: str) -> InvalidInput:
    return case_events.too_late(db, support_session, what)


def _require_worker(actor: Actor) -> None:
    if not actor.can_work_handoffs:
        raise PermissionDenied("Viewers have read-only access.")


def _worked_handoff(db: Session, support_session: SupportSession) -> SessionHandoff | None:
    """The handoff the assignee holds (claimed and not ended), if any."""
    handoff = case_events.open_handoff(db, support_session.id)
    if handoff is None or handoff.claimed_by_id is None:
        return None
    return handoff


def _user(db: Session, user_id: int | None) -> User | None:
    return db.get(User, user_id) if user_id else None


# ---------------------------------------------------------------------------- resolve


def resolve_case(
    *,
    db: Session,
    actor: Actor,
    session_id: int | str,
    fix: str,
    root_cause: str,
    ai_verdict: str | None = None,
) -> SupportSession:
    """Resolve a session with what fixed it and a root cause (its owner or its assignee).

    Every open handoff of the session ends as `resolved` (a card still waiting in the
    queue leaves it). Whoever handed the case off along the way (the owner first) is
    told how it was fixed: bell, email, and the PSA ticket gets "Resolved: …".
    `ai_verdict` answers "Was the AI's likely cause right?" (yes / partly / no, or
    empty to skip); when the case has a real assessment its grade is recorded
    (`domain.grading`), and with an API key Claude grades it too, after the commit.
    """
    _require_worker(actor)
    fix_text = validation.text(fix, "What fixed it", max_length=FIX_MAX, required=True)
    cause = validation.choice(root_cause, RootCause, "Root cause")
    verdict = grading.parse_verdict(ai_verdict)
    support_session = _session_of_account(db, actor, session_id)
    if actor.id not in (support_session.owner_id, support_session.assignee_id):
        if support_session.status == SessionStatus.RESOLVED or _was_worker(db, support_session, actor):
            raise _too_late(db, support_session, "resolve it")
        db.rollback()
        if actor.is_manager:
            raise PermissionDenied("Only the session's owner or the person working on it can resolve it.")
        # An engineer's verbs on a session that is not theirs: nothing to confirm.
        raise NotFound("Session not found.")
    if support_session.status == SessionStatus.RESOLVED:
        raise _too_late(db, support_session, "resolve it")

    now = utcnow()
    handoff = case_events.open_handoff(db, support_session.id)
    case_events.close_open_handoffs(db, support_session.id, HandoffOutcome.RESOLVED, now)
    support_session.status = SessionStatus.RESOLVED
    support_session.resolution = fix_text
    support_session.root_cause = cause.value
    support_session.resolved_at = now
    support_session.resolved_by_id = actor.id
    support_session.assignee_id = None
    support_session.updated_at = now
    db.add(support_session)
    if handoff is not None:
        # Its search document, fix included: from now on it is a similar past case.
        similar_cases.index_case(db, support_session, handoff)
    event = case_events.record(
        db,
        support_session=support_session,
        kind=CaseEventKind.RESOLVED,
        actor_id=actor.id,
        now=now,
        handoff_id=handoff.id if handoff else None,
        note=fix_text,
        root_cause=cause.value,
    )
    grading.record_at_resolve(db, support_session=support_session, actor=actor, verdict=verdict, now=now)
    if handoff is not None:
        effects.case_resolved(
            db,
            support_session,
            handoff,
            event,
            resolver=actor,
            told=_escalators(db, support_session, actor),
            now=now,
        )
    db.commit()
    return support_session


def _escalators(db: Session, support_session: SupportSession, actor: Actor) -> list[User]:
    """Who handed the case off on its way here (owner first), but not the actor."""
    ids = [support_session.owner_id]
    for by_id in db.exec(
        select(SessionHandoff.handed_off_by_id)
        .where(
            SessionHandoff.session_id == support_session.id,
            SessionHandoff.intent == HandoffIntent.ESCALATE.value,
        )
        .order_by(col(SessionHandoff.created_at))
    ).all():
        if by_id not in ids:
            ids.append(by_id)
    people = [_user(db, user_id) for user_id in ids if user_id != actor.id]
    return [u for u in people if u is not None and u.is_active and u.deleted_at is None]


# ---------------------------------------------------------------------------- hand back


def hand_back(*, db: Session, actor: Actor, session_id: int | str, guidance: str) -> SessionHandoff:
    """The assignee gives the session back to its owner, with guidance.

    The session is the owner's alone again (active); the guidance shows at the top of
    their session screen. Recorded as a handoff of its own (intent `handback`, taken
    by the owner at once, so it never waits in a queue) and as a case event; the owner
    is told (bell, email), the PSA ticket gets "Handed back to …".
    """
    _require_worker(actor)
    guidance_text = validation.text(guidance, "Guidance", max_length=GUIDANCE_MAX, required=True)
    support_session = _session_of_account(db, actor, session_id)
    if support_session.assignee_id != actor.id or support_session.owner_id == actor.id:
        if support_session.owner_id != actor.id and _was_worker(db, support_session, actor):
            raise _too_late(db, support_session, "hand it back")
        db.rollback()
        raise PermissionDenied("Only the person working on this session can hand it back.")
    worked = _worked_handoff(db, support_session)
    owner = _user(db, support_session.owner_id)
    assert owner is not None

    now = utcnow()
    case_events.close_open_handoffs(db, support_session.id, HandoffOutcome.HANDED_BACK, now)
    handback = SessionHandoff(
        session_id=support_session.id,
        account_id=support_session.account_id,
        team_id=support_session.team_id,
        handed_off_by_id=actor.id,
        intent=HandoffIntent.HANDBACK,
        priority=worked.priority if worked else "normal",
        engineer_notes=guidance_text,
        target_user_id=owner.id,
        snapshot={},
        ai_status="not_needed",
        claimed_by_id=owner.id,
        claimed_at=now,
        created_at=now,
    )
    db.add(handback)
    db.flush()
    handback.snapshot = build_snapshot(support_session, list_steps(db=db, session_id=support_session.id))
    support_session.status = SessionStatus.ACTIVE
    support_session.assignee_id = None
    support_session.escalated_to_id = None
    support_session.handoff_count += 1
    support_session.updated_at = now
    db.add(support_session)
    event = case_events.record(
        db,
        support_session=support_session,
        kind=CaseEventKind.HANDED_BACK,
        actor_id=actor.id,
        now=now,
        handoff_id=worked.id if worked else handback.id,
        subject_user_id=owner.id,
        note=guidance_text,
    )
    effects.handed_back(db, support_session, worked, handback, event, by=actor, owner=owner, now=now)
    db.commit()
    return handback


def _was_worker(db: Session, support_session: SupportSession, actor: Actor) -> bool:
    return case_events.held_by(db, support_session.id, actor.id)


# ---------------------------------------------------------------------------- release


def release(*, db: Session, actor: Actor, session_id: int | str, reason: str) -> SessionHandoff:
    """The assignee puts the case back in the queue, unclaimed, with a reason.

    The handoff waits again in every queue tab (live); the session is escalated (or
    paused, for a park) and has no assignee. The PSA ticket gets "Released to the queue".
    """
    _require_worker(actor)
    reason_text = validation.text(reason, "Reason", max_length=REASON_MAX, required=True)
    support_session = _session_of_account(db, actor, session_id)
    worked = _worked_handoff(db, support_session)
    if support_session.assignee_id != actor.id or worked is None or worked.claimed_by_id != actor.id:
        if _was_worker(db, support_session, actor):
            raise _too_late(db, support_session, "release it")
        db.rollback()
        raise PermissionDenied("Only the person working on this session can release it.")

    now = utcnow()
    worked.claimed_by_id = None
    worked.claimed_at = None
    db.add(worked)
    support_session.status = (
        SessionStatus.PAUSED if worked.intent == HandoffIntent.PARK else SessionStatus.ESCALATED
    )
    support_session.assignee_id = None
    support_session.escalated_to_id = worked.target_user_id
    support_session.updated_at = now
    db.add(support_session)
    event = case_events.record(
        db,
        support_session=support_session,
        kind=CaseEventKind.RELEASED,
        actor_id=actor.id,
        now=now,
        handoff_id=worked.id,
        note=reason_text,
    )
    effects.released(db, worked, event, by=actor, now=now)
    db.commit()
    return worked


# ---------------------------------------------------------------------------- reassign


def reassign(
    *, db: Session, actor: Actor, session_id: int | str, to_user_id: int | str, note: str = ""
) -> SupportSession:
    """An owner or admin gives a picked-up case to another teammate, who is told.

    The teammate must be an active owner, admin or engineer of the same account, not
    the session's owner (that is a hand-back), not the one who handed it off, and not
    already its assignee.
    """
    if not actor.is_manager:
        raise PermissionDenied("Only account owners and admins can reassign a case.")
    note_text = validation.text(note, "Note", max_length=REASON_MAX)
    try:
        target_id = int(to_user_id)
    except (TypeError, ValueError):
        raise InvalidInput("Choose a teammate to reassign it to.") from None
    support_session = _session_of_account(db, actor, session_id)
    target = _user(db, target_id) if 0 < target_id < 2**31 else None
    if (
        target is None
        or target.account_id != actor.account_id
        or not target.is_active
        or target.deleted_at is not None
        or target.account_role not in WORKER_ROLES
    ):
        db.rollback()
        raise InvalidInput("That teammate was not found or cannot take escalations.")
    worked = _worked_handoff(db, support_session)
    if support_session.assignee_id is None or worked is None:
        if _ever_claimed(db, support_session):
            raise _too_late(db, support_session, "reassign it")
        db.rollback()
        raise InvalidInput("Nobody has picked this session up; there is nothing to reassign.")
    if target.id == support_session.assignee_id:
        db.rollback()
        raise InvalidInput(f"{target.display_name} is already working on it.")
    if target.id == support_session.owner_id:
        db.rollback()
        raise InvalidInput(
            f"{target.display_name} owns this session; the person working on it can hand it back."
        )
    if target.id == worked.handed_off_by_id:
        db.rollback()
        raise InvalidInput(f"{target.display_name} handed this off and cannot take it.")

    now = utcnow()
    worked.claimed_by_id = target.id
    db.add(worked)
    support_session.assignee_id = target.id
    support_session.escalated_to_id = target.id
    support_session.updated_at = now
    db.add(support_session)
    event = case_events.record(
        db,
        support_session=support_session,
        kind=CaseEventKind.REASSIGNED,
        actor_id=actor.id,
        now=now,
        handoff_id=worked.id,
        subject_user_id=target.id,
        note=note_text,
    )
    effects.reassigned(db, support_session, worked, event, by=actor, to=target, now=now)
    db.commit()
    return support_session


def _ever_claimed(db: Session, support_session: SupportSession) -> bool:
    return (
        db.exec(select(CaseEvent.id).where(CaseEvent.session_id == support_session.id).limit(1)).first()
        is not None
    )


def reassign_choices(*, db: Session, actor: Actor, handoff_id) -> list[User]:
    """Who an owner or admin can reassign this handoff's case to ([] for anyone else)."""
    if not actor.is_manager:
        return []
    handoff = load_handoff(db, actor, handoff_id)
    support_session = db.get(SupportSession, handoff.session_id)
    assert support_session is not None
    excluded = {support_session.owner_id, support_session.assignee_id, handoff.handed_off_by_id}
    return [
        u
        for u in eligible_recipients(db, account_id=actor.account_id, exclude_user_id=None)
        if u.id not in excluded
    ]


def session_of_handoff(*, db: Session, actor: Actor, handoff_id) -> int:
    """The session a handoff of the actor's account belongs to (others: NotFound).

    The handoff screen acts on this session: the target comes from the page's route,
    read on the server, never from a value the browser holds."""
    return load_handoff(db, actor, handoff_id).session_id
