"""An engineer's own support sessions: create, log steps, resolve, read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from escalation_app.domain import validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.models import (
    ConfidenceTier,
    SessionStatus,
    SessionStep,
    SupportSession,
)
from escalation_app.domain.types import utcnow

SUMMARY_MAX = 200
DOMAIN_MAX = 80
CLIENT_MAX = 120
TICKET_MAX = 64
STEP_TEXT_MAX = 2000
# A session's log stays readable and its snapshot, handoff screen and pushes bounded.
STEPS_MAX = 200


def _require_worker(actor: Actor) -> None:
    if not actor.can_work_handoffs:
        raise PermissionDenied("Viewers have read-only access.")


def get_own_session(
    *, db: Session, actor: Actor, session_id: int, for_update: bool = False
) -> SupportSession:
    """Load a session the actor owns; anything else (including other accounts) is NotFound.

    `for_update` locks the row (PostgreSQL) so two handoffs of one session serialise.
    """
    query = select(SupportSession).where(SupportSession.id == session_id)
    if for_update:
        query = query.with_for_update()
    support_session = db.exec(query).first()
    if (
        support_session is None
        or support_session.account_id != actor.account_id
        or support_session.owner_id != actor.id
    ):
        raise NotFound("Session not found.")
    return support_session


def get_worked_session(
    *, db: Session, actor: Actor, session_id: int, for_update: bool = False
) -> SupportSession:
    """Load a session the actor owns or is assigned to (the senior who picked it up).

    Anyone else, and any other account, gets NotFound. `for_update` locks the row.
    """
    query = select(SupportSession).where(SupportSession.id == session_id)
    if for_update:
        query = query.with_for_update()
    support_session = db.exec(query).first()
    if (
        support_session is None
        or support_session.account_id != actor.account_id
        or actor.id not in (support_session.owner_id, support_session.assignee_id)
    ):
        raise NotFound("Session not found.")
    return support_session


def get_account_session(*, db: Session, actor: Actor, session_id: int) -> SupportSession:
    """Load any session of the actor's account (read-only views); others are NotFound."""
    support_session = db.get(SupportSession, session_id)
    if support_session is None or support_session.account_id != actor.account_id:
        raise NotFound("Session not found.")
    return support_session


def create_session(
    *,
    db: Session,
    actor: Actor,
    problem_summary: str,
    problem_domain: str = "",
    client_name: str = "",
    psa_ticket_id: str | None = None,
    confidence_tier: str | None = None,
) -> SupportSession:
    """Open a new active support session owned by the actor."""
    _require_worker(actor)
    ticket = validation.single_line(psa_ticket_id, "PSA ticket", max_length=TICKET_MAX) or None
    support_session = SupportSession(
        account_id=actor.account_id,
        team_id=actor.team_id,
        owner_id=actor.id,
        problem_summary=validation.single_line(
            problem_summary, "Problem summary", max_length=SUMMARY_MAX, required=True
        ),
        problem_domain=validation.single_line(problem_domain, "Domain", max_length=DOMAIN_MAX),
        client_name=validation.single_line(client_name, "Client", max_length=CLIENT_MAX),
        psa_ticket_id=ticket,
        confidence_tier=validation.choice(
            confidence_tier, ConfidenceTier, "Confidence", default=ConfidenceTier.MEDIUM
        ),
    )
    db.add(support_session)
    db.commit()
    return support_session


def add_step(
    *, db: Session, actor: Actor, session_id: int, tried: str, result: str = "", skipped: bool = False
) -> SessionStep:
    """Append a step ("what I tried" and its result) to a session the actor owns or works."""
    _require_worker(actor)
    tried_text = validation.text(tried, "What I tried", max_length=STEP_TEXT_MAX, required=True)
    result_text = validation.text(result, "Result", max_length=STEP_TEXT_MAX)
    # Locked (PostgreSQL) so two concurrent adds cannot both pass the step limit.
    support_session = get_worked_session(db=db, actor=actor, session_id=session_id, for_update=True)
    if support_session.status == SessionStatus.RESOLVED:
        raise InvalidInput("This session is resolved; steps can no longer be added.")
    last, count = db.exec(
        select(func.max(SessionStep.position), func.count()).where(SessionStep.session_id == session_id)
    ).one()
    if count >= STEPS_MAX:
        raise InvalidInput(
            f"A session can have at most {STEPS_MAX} steps. Resolve it or start a new session."
        )
    step = SessionStep(
        session_id=session_id,
        position=(last or 0) + 1,
        tried=tried_text,
        result=result_text,
        skipped=bool(skipped),
    )
    support_session.updated_at = utcnow()
    db.add(step)
    db.add(support_session)
    db.commit()
    return step


def list_steps(*, db: Session, session_id: int) -> list[SessionStep]:
    """A session's steps in the order they were tried (caller has checked access)."""
    return list(
        db.exec(
            select(SessionStep)
            .where(SessionStep.session_id == session_id)
            .order_by(col(SessionStep.position))
        ).all()
    )


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A row of the engineer's session list."""

    id: int
    problem_summary: str
    problem_domain: str
    client_name: str
    status: str
    step_count: int
    handoff_count: int
    updated_at: datetime


def list_own_sessions(*, db: Session, actor: Actor, limit: int = 200) -> list[SessionSummary]:
    """The actor's sessions and those they work for their owner, most recently active first."""
    step_counts = (
        select(SessionStep.session_id, func.count().label("n")).group_by(SessionStep.session_id).subquery()
    )
    rows = db.exec(
        select(SupportSession, func.coalesce(step_counts.c.n, 0))
        .outerjoin(step_counts, step_counts.c.session_id == SupportSession.id)
        .where(
            SupportSession.account_id == actor.account_id,
            or_(SupportSession.owner_id == actor.id, SupportSession.assignee_id == actor.id),
        )
        .order_by(col(SupportSession.updated_at).desc())
        .limit(limit)
    ).all()
    return [
        SessionSummary(
            id=s.id,
            problem_summary=s.problem_summary,
            problem_domain=s.problem_domain,
            client_name=s.client_name,
            status=s.status,
            step_count=n,
            handoff_count=s.handoff_count,
            updated_at=s.updated_at,
        )
        for s, n in rows
    ]
