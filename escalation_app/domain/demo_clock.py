"""Snoozed parks for the demo (`python -m escalation_app.seed`), after `load_demo_data`.

Alex's parked laptop session wakes tomorrow at 9:00 (a real wake-up timer), and Sam
has a parked session (from three hours ago) that has just woken up, at the top of the queue. The
breached escalations come with the demo history (`demo_history._add_clock`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from escalation_app.domain import case_events, clock
from escalation_app.domain.actors import Actor
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import HandoffIntent, SessionHandoff, SupportSession, User
from escalation_app.domain.support_sessions import add_step, create_session
from escalation_app.domain.types import utcnow

PARKED_SUMMARY = "Laptop battery drains overnight while asleep"
WOKEN_SUMMARY = "Scanner-to-email fails after the mail relay change"


def load_demo_clock(db: Session, *, now: datetime | None = None) -> int:
    """Add the demo's snoozed parks once; returns how many were set up (0 when already there)."""
    now = now or utcnow()
    if db.exec(select(SupportSession.id).where(SupportSession.problem_summary == WOKEN_SUMMARY)).first():
        return 0
    alex = db.exec(select(User).where(User.email == "alex@northwind.example")).first()
    sam = db.exec(select(User).where(User.email == "sam@northwind.example")).first()
    if alex is None or sam is None:
        return 0
    count = 0
    parked = db.exec(select(SupportSession).where(SupportSession.problem_summary == PARKED_SUMMARY)).first()
    park = case_events.open_handoff(db, parked.id) if parked is not None else None
    if parked is not None and park is not None and park.intent == HandoffIntent.PARK and park.wake_at is None:
        clock.snooze(db=db, actor=Actor.from_user(alex), session_id=parked.id, wake="tomorrow")
        count += 1

    actor = Actor.from_user(sam)
    woken = create_session(
        db=db,
        actor=actor,
        problem_summary=WOKEN_SUMMARY,
        problem_domain="Printing",
        client_name="Greenfield Clinic",
    )
    add_step(
        db=db,
        actor=actor,
        session_id=woken.id,
        tried="Pointed the scanner at the new relay",
        result="Relay refuses: the scanner's IP is not allowed yet",
    )
    handoff: SessionHandoff = create_handoff(
        db=db,
        actor=actor,
        session_id=woken.id,
        intent="park",
        notes="Waiting for the client's firewall change window.",
    )
    handoff.created_at = now - timedelta(hours=3)
    # It woke up just now: the top of the queue.
    handoff.woke_at = now
    db.add(handoff)
    db.commit()
    return count + 1
