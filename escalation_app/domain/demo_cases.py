"""Resolved past cases behind the demo's open handoffs, so their screens show "Similar past
cases" on a first start.

Northwind's ninety days of history (`demo_history`) already hold resolved cases like
Alex's escalated file-share problem; this adds the ones its parked laptop and Contoso's
escalated app crash are like (and a few that are not, so the ranking has something to
leave out). Runs after `load_demo_data`; each case is inserted as it would stand after
being escalated, picked up and resolved, then indexed (`similar_cases`). The first case's
summary is the marker: when it exists, nothing is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from escalation_app.domain import similar_cases
from escalation_app.domain.case_events import RootCause
from escalation_app.domain.demo_history import DEMO_AI_MODEL
from escalation_app.domain.handoffs import build_snapshot
from escalation_app.domain.models import (
    Account,
    AIStatus,
    CaseEvent,
    CaseEventKind,
    HandoffIntent,
    HandoffOutcome,
    SessionHandoff,
    SessionStatus,
    SessionStep,
    SupportSession,
    User,
)
from escalation_app.domain.types import utcnow


@dataclass(frozen=True)
class PastCase:
    account: str
    engineer: str  # email of who escalated
    fixer: str  # email of who picked it up and fixed it
    summary: str
    domain: str
    client: str
    steps: tuple[tuple[str, str], ...]
    notes: str
    fix: str
    cause: RootCause
    days_ago: int
    hours_to_fix: float
    # What the AI assessment said at the time.
    likely_cause: str
    next_step: str


CASES = (
    PastCase(
        "Contoso IT",
        "casey@contoso.example",
        "jordan@contoso.example",
        "Inventory app crashes at startup after the .NET Framework update",
        "Applications",
        "Fabrikam Foods",
        (
            ("Checked the Application event log", ".NET Runtime 1026: System.IO.FileLoadException"),
            ("Reinstalled the inventory app", "Same crash on launch"),
        ),
        "Pickers can't scan; the vendor's support line opens at 9.",
        "Removed the stale assembly binding redirect from the app's .config (it pinned an old "
        "System.Runtime version) and ran ngen update; the app starts. The vendor has the fix in its KB.",
        RootCause.THIRD_PARTY,
        12,
        3.5,
        "An assembly the update replaced no longer matches what the app's configuration asks for",
        "Compare the app's binding redirects with the installed runtime assemblies",
    ),
    PastCase(
        "Contoso IT",
        "casey@contoso.example",
        "jordan@contoso.example",
        "Label printer prints every label offset by half a label",
        "Printing",
        "Fabrikam Foods",
        (
            ("Printed a configuration label", "Offset as well"),
            ("Replaced the label roll", "No change"),
        ),
        "Shipping is hand-writing labels.",
        "Recalibrated the media sensor from the printer's menu and set the label size to 4x6 in the driver.",
        RootCause.CONFIGURATION,
        20,
        1.2,
        "The printer no longer detects the gap between labels",
        "Run the media calibration from the printer's menu",
    ),
    PastCase(
        "Contoso IT",
        "casey@contoso.example",
        "jordan@contoso.example",
        "Handheld scanners drop off the Wi-Fi after the controller firmware upgrade",
        "Network / Wi-Fi",
        "Northbrook Distribution",
        (
            ("Rebooted the wireless controller", "Scanners reconnect, then drop within minutes"),
            ("Checked the scanners' Wi-Fi settings", "WPA2, 2.4 GHz only"),
        ),
        "Only the old scanner model is affected.",
        "The upgrade turned on 802.11r fast roaming, which the old scanners cannot do; put them on "
        "their own SSID with fast roaming off.",
        RootCause.CONFIGURATION,
        33,
        26.0,
        "A roaming or security setting the new firmware enabled that the scanners do not support",
        "Compare the SSID's settings before and after the upgrade",
    ),
    PastCase(
        "Northwind MSP",
        "sam@northwind.example",
        "riley@northwind.example",
        "Laptop battery is flat every morning after a night asleep in the bag",
        "Hardware",
        "Summit Accounting",
        (
            ("Ran powercfg /sleepstudy", "Modern standby: the Wi-Fi adapter keeps waking the laptop"),
            ("Updated the Wi-Fi driver", "Still drains overnight"),
        ),
        "Partner's laptop; she travels every week.",
        "Set the Wi-Fi adapter's power management to not wake the computer and turned on "
        "'Disconnected standby' with powercfg; battery holds overnight now.",
        RootCause.CONFIGURATION,
        18,
        5.0,
        "A device allowed to wake the laptop from modern standby",
        "Check which devices may wake the computer (powercfg /devicequery wake_armed)",
    ),
)


def _users(db: Session, account: Account) -> dict[str, User]:
    return {u.email: u for u in db.exec(select(User).where(User.account_id == account.id)).all()}


def load_demo_cases(db: Session) -> int:
    """Add the resolved demo cases once; returns how many (0 when already there, or when
    the demo accounts are missing)."""
    if db.exec(select(SupportSession.id).where(SupportSession.problem_summary == CASES[0].summary)).first():
        return 0
    now = utcnow()
    added: list[int] = []
    for case in CASES:
        account = db.exec(select(Account).where(Account.name == case.account)).first()
        users = _users(db, account) if account else {}
        engineer, fixer = users.get(case.engineer), users.get(case.fixer)
        if account is None or engineer is None or fixer is None:
            continue
        escalated = now - timedelta(days=case.days_ago)
        claimed = escalated + timedelta(minutes=12)
        resolved = escalated + timedelta(hours=case.hours_to_fix)
        support_session = SupportSession(
            account_id=account.id,
            team_id=engineer.team_id,
            owner_id=engineer.id,
            problem_summary=case.summary,
            problem_domain=case.domain,
            client_name=case.client,
            status=SessionStatus.RESOLVED,
            handoff_count=1,
            resolution=case.fix,
            root_cause=case.cause.value,
            resolved_at=resolved,
            resolved_by_id=fixer.id,
            created_at=escalated - timedelta(minutes=40),
            updated_at=resolved,
        )
        db.add(support_session)
        db.flush()
        steps = [
            SessionStep(
                session_id=support_session.id,
                position=i + 1,
                tried=tried,
                result=result,
                created_at=escalated - timedelta(minutes=30 - 10 * i),
            )
            for i, (tried, result) in enumerate(case.steps)
        ]
        db.add_all(steps)
        handoff = SessionHandoff(
            session_id=support_session.id,
            account_id=account.id,
            team_id=support_session.team_id,
            handed_off_by_id=engineer.id,
            intent=HandoffIntent.ESCALATE,
            engineer_notes=case.notes,
            snapshot=build_snapshot(support_session, steps),
            ai_status=AIStatus.READY,
            ai_model=DEMO_AI_MODEL,
            ai_generated_at=escalated + timedelta(seconds=20),
            ai_assessment=f"{case.likely_cause}. Start with: {case.next_step}.",
            ai_assessment_data={
                "summary_prose": f"{case.likely_cause}. Start with: {case.next_step}.",
                "what_we_know": [f"{tried}: {result}" for tried, result in case.steps],
                "likely_cause": case.likely_cause,
                "suggested_steps": [case.next_step],
                "confidence": "medium",
                "offline": False,
                "start_here": f"Start with: {case.next_step}.",
            },
            claimed_by_id=fixer.id,
            claimed_at=claimed,
            outcome=HandoffOutcome.RESOLVED,
            outcome_at=resolved,
            created_at=escalated,
        )
        db.add(handoff)
        db.flush()
        for kind, at, note, cause in (
            (CaseEventKind.CLAIMED, claimed, "", None),
            (CaseEventKind.RESOLVED, resolved, case.fix, case.cause.value),
        ):
            db.add(
                CaseEvent(
                    account_id=account.id,
                    session_id=support_session.id,
                    handoff_id=handoff.id,
                    kind=kind,
                    actor_id=fixer.id,
                    subject_user_id=fixer.id if kind == CaseEventKind.CLAIMED else None,
                    note=note,
                    root_cause=cause,
                    created_at=at,
                )
            )
        added.append(support_session.id)
    db.flush()
    similar_cases.index_resolved_sessions(db, added)
    db.commit()
    return len(added)
