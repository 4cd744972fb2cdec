"""Ninety days of realistic Northwind handoff history, so /history and /analytics are
worth looking at on a first start.

`load_demo_history` runs after `load_demo_data` (it needs the Northwind account and its
users). It adds two more Northwind engineers (Jamie Rivera, Taylor Brooks, signing in
with the demo password) and a few hundred sessions, each with its steps and one park or
escalation, claimed minutes to hours later by a teammate; the newest ones may still be
waiting. Everything is drawn from `random.Random(seed)` relative to `now`, inserted in
one transaction, and never touches any other account. Jamie's user row is the marker:
when it exists, the history is already there and nothing is added.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from escalation_app.domain import clock, similar_cases
from escalation_app.domain.case_events import RootCause
from escalation_app.domain.handoffs import build_snapshot
from escalation_app.domain.models import (
    Account,
    AccountRole,
    AIStatus,
    CaseEvent,
    CaseEventKind,
    EscalationPolicy,
    HandoffIntent,
    HandoffOutcome,
    Priority,
    SessionHandoff,
    SessionStatus,
    SessionStep,
    SupportSession,
    Team,
    User,
)
from escalation_app.domain.types import utcnow

NORTHWIND = "Northwind MSP"
MARKER_EMAIL = "jamie@northwind.example"
EXTRA_ENGINEERS = [
    (MARKER_EMAIL, "Jamie Rivera"),
    ("taylor@northwind.example", "Taylor Brooks"),
]
DEMO_AI_MODEL = "demo-data"

# Who hands off, and who picks up (weights); never one's own handoff.
ENGINEER_WEIGHTS = {"alex": 35, "sam": 25, "jamie": 25, "taylor": 15}
CLAIMER_WEIGHTS = {"riley": 34, "morgan": 14, "sam": 20, "alex": 14, "jamie": 12, "taylor": 6}
PRIORITY_WEIGHTS = {Priority.LOW: 15, Priority.NORMAL: 50, Priority.HIGH: 25, Priority.URGENT: 10}
# Median and spread (log-normal sigma) of the claim delay in minutes, by priority.
CLAIM_DELAY_MINUTES = {
    Priority.URGENT: (6, 0.6),
    Priority.HIGH: (18, 0.7),
    Priority.NORMAL: (45, 0.9),
    Priority.LOW: (150, 0.8),
}
PARK_DELAY_MINUTES = (240, 0.9)
WAITING_MINUTES_AGO = (340, 130, 25)
CLIENTS = [
    "Harbor Dental",
    "Baker & Lowe LLP",
    "Greenfield Clinic",
    "Riverside Veterinary",
    "Summit Accounting",
    "Oakridge Schools",
    "Lakeside Logistics",
    "Pioneer Architects",
    "Maple Street Bakery",
    "Bluewater Marine",
]


@dataclass(frozen=True)
class Problem:
    summary: str
    domain: str
    steps: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    known: tuple[str, ...]
    cause: str
    next_steps: tuple[str, ...]


PROBLEMS = (
    Problem(
        "VPN drops every few minutes for remote staff",
        "Network / VPN",
        (
            ("Checked the firewall's VPN tunnel logs", "DPD timeouts every 3-5 minutes"),
            ("Updated the VPN client to the latest build", "Still drops"),
            ("Tested from a phone hotspot", "Stable on the hotspot"),
        ),
        ("Only home users on the same ISP are affected.", "Customer's CFO is on the road all week."),
        ("Drops only on residential connections", "Hotspot connection is stable"),
        "An ISP-side MTU/fragmentation issue with the tunnel's UDP traffic",
        ("Lower the tunnel MTU to 1380 and retest", "Switch the tunnel to TCP 443 as a test"),
    ),
    Problem(
        "Outlook stuck on 'Trying to connect' for one mailbox",
        "Microsoft 365",
        (
            ("Rebuilt the Outlook profile", "Still disconnected"),
            ("Signed in to OWA", "Mailbox works in the browser"),
            ("Checked the service health dashboard", "No incidents"),
        ),
        ("Other users on the same PC are fine.", "User is the practice manager; urgent."),
        ("OWA works", "Other profiles on the machine connect"),
        "A corrupted autodiscover cache or a stale credential for that mailbox",
        ("Clear HKCU Autodiscover keys and the Identity cache", "Run the connectivity analyzer"),
    ),
    Problem(
        "Shared mailbox not showing up in Outlook after permission change",
        "Microsoft 365",
        (
            ("Confirmed Full Access permission in the admin centre", "Permission present"),
            ("Waited an hour and restarted Outlook", "Mailbox still missing"),
        ),
        ("Permission was granted yesterday via a group.",),
        ("Permission granted through a mail-enabled security group",),
        "Automapping does not apply to permissions granted through groups",
        ("Add the mailbox manually as an additional account", "Grant per-user Full Access with automapping"),
    ),
    Problem(
        "Printer prints blank pages from one application only",
        "Printing",
        (
            ("Printed a test page from the driver", "Test page is fine"),
            ("Printed the same file as PDF", "PDF prints fine"),
            ("Reinstalled the printer driver", "Still blank from the app"),
        ),
        ("The line-of-business app's vendor says 'printer problem'.",),
        ("Test page and PDF print fine", "Only the practice management app prints blank"),
        "The app sends PCL6 output the driver renders blank; a PS or PCL5 driver usually works",
        ("Install the PS driver as a second queue", "Disable advanced printing features on the queue"),
    ),
    Problem(
        "Scan to email fails on the copier since password change",
        "Printing",
        (
            ("Updated the SMTP password on the copier", "Authentication failed"),
            ("Tested SMTP AUTH with the same account from a PC", "Works from the PC"),
        ),
        ("Copier model is old; may only support TLS 1.0.",),
        ("Same credentials work from a PC",),
        "The copier only speaks TLS 1.0, which Microsoft 365 no longer accepts",
        ("Set up an SMTP relay connector for the copier's IP", "Check for a copier firmware update"),
    ),
    Problem(
        "User locked out repeatedly every morning",
        "Active Directory",
        (
            ("Unlocked the account and reset the password", "Locked again next morning"),
            ("Checked the PDC's security log for 4740", "Lockout source is a terminal server"),
        ),
        ("I don't have access to the terminal servers.", "Fourth time this week."),
        ("Event 4740 names the terminal server TS02",),
        "A disconnected RDP session on TS02 still holding the old password",
        ("Log off the user's sessions on TS02", "Check mapped drives and scheduled tasks on TS02"),
    ),
    Problem(
        "Group Policy drive maps not applying for new starters",
        "Active Directory",
        (
            ("Ran gpresult /r", "Drive-map GPO listed as denied (security filtering)"),
            ("Checked the new starters' group membership", "They are in the right group"),
        ),
        ("Needs Domain Admin to look at the GPO delegation.",),
        ("GPO denied by security filtering", "Group membership is correct"),
        "Authenticated Users lost Read on the GPO after the MS16-072 change",
        ("Add Authenticated Users with Read on the GPO's delegation tab",),
    ),
    Problem(
        "Laptop blue screens with DRIVER_POWER_STATE_FAILURE",
        "Hardware",
        (
            ("Updated BIOS and chipset drivers", "Still crashes on wake"),
            ("Analysed the minidump", "Points at the Thunderbolt dock driver"),
        ),
        ("Happens only when docked.",),
        ("Crashes on wake from sleep while docked", "Minidump blames the dock driver"),
        "The dock's firmware is older than the driver expects",
        ("Update the dock firmware", "Disable USB selective suspend as a workaround"),
    ),
    Problem(
        "Nightly backup job fails with VSS error on the file server",
        "Backup",
        (
            ("Checked vssadmin list writers", "SqlServerWriter in a failed state"),
            ("Restarted the SQL VSS Writer service", "Writer stable; job failed again overnight"),
        ),
        ("Third failed night; the retention window is at risk.",),
        ("SqlServerWriter fails during the job",),
        "The backup and a SQL maintenance plan overlap and fight over VSS",
        ("Move the SQL maintenance window", "Enable application-aware processing with log truncation"),
    ),
    Problem(
        "Suspicious inbox rule forwarding mail externally",
        "Security",
        (
            ("Removed the forwarding rule", "Rule deleted"),
            ("Checked sign-in logs", "Sign-ins from an unfamiliar country two days ago"),
            ("Reset the password and revoked sessions", "Done"),
        ),
        ("Possible business email compromise; needs a senior to run the playbook.",),
        ("External forwarding rule existed", "Foreign sign-ins two days ago"),
        "Credential phishing followed by a persistence rule (BEC pattern)",
        (
            "Enforce MFA and review other mailboxes for rules",
            "Search the audit log for mail sent by the account",
        ),
    ),
    Problem(
        "Wi-Fi drops in the conference room during video calls",
        "Network / Wi-Fi",
        (
            ("Ran a site survey with the controller's heat map", "Strong signal in the room"),
            ("Checked channel utilisation", "Channel 36 at 80% during calls"),
        ),
        ("Board meeting in there on Friday.",),
        ("Signal is strong", "High channel utilisation"),
        "Co-channel interference from the neighbouring office's AP",
        ("Move the room's AP to a DFS channel", "Enable band steering and lower the 2.4 GHz power"),
    ),
    Problem(
        "Desk phones lose registration every few hours",
        "Phones / VoIP",
        (
            ("Checked the PBX registration log", "Registrations expire and are not renewed"),
            ("Factory reset one handset", "Same behaviour"),
        ),
        ("Started after the firewall firmware update.",),
        ("Started after a firewall update", "Registrations not renewed"),
        "SIP ALG was re-enabled by the firewall update",
        ("Disable SIP ALG on the firewall", "Shorten the registration interval to 300 s"),
    ),
    Problem(
        "Line-of-business app cannot reach its SQL database after server move",
        "Applications",
        (
            ("Tested port 1433 from the client", "Connection refused"),
            ("Checked SQL Browser service", "Stopped"),
        ),
        ("Vendor support is only available in US hours.",),
        ("Port closed from clients", "SQL Browser stopped"),
        "The named instance now listens on a dynamic port and the firewall rule is for 1433",
        ("Start SQL Browser and open UDP 1434", "Pin the instance to a static port"),
    ),
    Problem(
        "OneDrive not syncing Desktop folder for several users",
        "Microsoft 365",
        (
            ("Reset the OneDrive client", "Sync resumes, then stops"),
            ("Checked for path length problems", "Some paths over 400 characters"),
        ),
        ("Known folder move policy was changed last week.",),
        ("Very long paths on the Desktop",),
        "Path length and a conflicting known-folder-move policy",
        ("Shorten the offending paths", "Review the KFM GPO against the Intune profile"),
    ),
    Problem(
        "Server disk filling up overnight",
        "Server",
        (
            ("Ran TreeSize on D:", "IIS logs at 180 GB"),
            ("Deleted old IIS logs", "Filled up again the next night"),
        ),
        ("Something is logging verbosely; I can't find the source.",),
        ("IIS logs grow about 150 GB a night",),
        "A client app retrying a failing request in a tight loop",
        ("Find the top client IP in the logs", "Add log rotation and a size cap"),
    ),
    Problem(
        "New laptop fails Autopilot enrolment at the device setup step",
        "Endpoint management",
        (
            ("Checked the hardware hash upload", "Device present in Autopilot"),
            ("Retried enrolment after a reset", "Fails at 'Securing your hardware'"),
        ),
        ("Five more laptops arrive Monday.",),
        ("Device registered in Autopilot", "Fails at TPM attestation"),
        "TPM attestation failing on older firmware",
        ("Update the TPM firmware", "Clear the TPM in the BIOS and retry"),
    ),
)


def _weighted(rng: random.Random, weights: dict) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def _delay(rng: random.Random, median_minutes: float, sigma: float) -> timedelta:
    minutes = min(median_minutes * rng.lognormvariate(0, sigma), 3 * 24 * 60)
    return timedelta(seconds=max(60, int(minutes * 60)))


def _northwind_users(db: Session, account: Account, team: Team | None) -> dict[str, User] | None:
    users = {
        u.email.split("@")[0]: u for u in db.exec(select(User).where(User.account_id == account.id)).all()
    }
    if any(name not in users for name in ("alex", "sam", "riley", "morgan")):
        return None
    password_hash = users["alex"].password_hash  # the demo password, without re-hashing
    for email, name in EXTRA_ENGINEERS:
        user = User(
            account_id=account.id,
            team_id=team.id if team else None,
            email=email,
            display_name=name,
            password_hash=password_hash,
            account_role=AccountRole.ENGINEER,
        )
        db.add(user)
        users[email.split("@")[0]] = user
    db.flush()
    return users


def _handoff_times(rng: random.Random, now: datetime, days: int) -> list[datetime]:
    times = []
    for offset in range(days, -1, -1):
        day = (now - timedelta(days=offset)).date()
        weekend = day.weekday() >= 5
        count = rng.choice((0, 0, 1, 1, 2)) if weekend else rng.choice((2, 3, 4, 4, 5, 5, 6))
        for _ in range(count):
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                hours=rng.uniform(7.5, 18.5)
            )
            if moment < now - timedelta(minutes=10):
                times.append(moment)
    return sorted(times)


def load_demo_history(db: Session, *, days: int = 90, seed: int = 42, now: datetime | None = None) -> int:
    """Add `days` of Northwind handoff history once; returns how many handoffs were added
    (0 when it is already there, or when the Northwind demo account is missing)."""
    account = db.exec(select(Account).where(Account.name == NORTHWIND)).first()
    if account is None:
        return 0
    if db.exec(select(User.id).where(User.email == MARKER_EMAIL)).first() is not None:
        return 0
    now = (now or utcnow()).astimezone(UTC)
    rng = random.Random(seed)
    team = db.exec(select(Team).where(Team.account_id == account.id).order_by(col(Team.id))).first()
    users = _northwind_users(db, account, team)
    if users is None:
        return 0
    team_id = team.id if team else None

    planned: list[tuple[SupportSession, list[SessionStep], SessionHandoff]] = []
    problems: list[Problem] = []
    moments = [(created, False) for created in _handoff_times(rng, now, days)]
    # A few escalations still waiting in the queue right now.
    moments += [(now - timedelta(minutes=minutes), True) for minutes in WAITING_MINUTES_AGO]
    for created, waiting in moments:
        engineer = users[_weighted(rng, ENGINEER_WEIGHTS)]
        problem = rng.choice(PROBLEMS)
        steps_taken = problem.steps[: rng.randint(max(1, len(problem.steps) - 1), len(problem.steps))]
        opened = created - timedelta(minutes=rng.randint(15, 120))
        support_session = SupportSession(
            account_id=account.id,
            team_id=team_id,
            owner_id=engineer.id,
            problem_summary=problem.summary,
            problem_domain=problem.domain,
            client_name=rng.choice(CLIENTS),
            psa_ticket_id=str(rng.randint(40000, 49999)) if rng.random() < 0.7 else None,
            status=SessionStatus.ACTIVE,
            confidence_tier=rng.choice(("low", "medium", "medium", "high")),
            handoff_count=1,
            created_at=opened,
            updated_at=created,
        )
        gap = (created - opened) / (len(steps_taken) + 1)
        steps = [
            SessionStep(position=i + 1, tried=tried, result=result, created_at=opened + gap * (i + 1))
            for i, (tried, result) in enumerate(steps_taken)
        ]
        snapshot = build_snapshot(support_session, steps)

        intent = HandoffIntent.PARK if rng.random() < 0.18 and not waiting else HandoffIntent.ESCALATE
        priority = _weighted(rng, PRIORITY_WEIGHTS)
        median, sigma = PARK_DELAY_MINUTES if intent == HandoffIntent.PARK else CLAIM_DELAY_MINUTES[priority]
        claimed_at: datetime | None = created + _delay(rng, median, sigma)
        claimer = None
        if claimed_at is not None and claimed_at < now and not waiting:
            candidates = {k: w for k, w in CLAIMER_WEIGHTS.items() if users[k].id != engineer.id}
            claimer = users[_weighted(rng, candidates)]
        else:
            claimed_at = None

        handoff = SessionHandoff(
            account_id=account.id,
            team_id=team_id,
            handed_off_by_id=engineer.id,
            intent=intent,
            priority=priority,
            engineer_notes=rng.choice(problem.notes),
            snapshot=snapshot,
            claimed_by_id=claimer.id if claimer else None,
            claimed_at=claimed_at,
            created_at=created,
        )
        if intent == HandoffIntent.ESCALATE:
            _add_assessment(rng, handoff, problem, created)
            _add_clock(handoff, account.id, now)
        else:
            handoff.ai_status = AIStatus.NOT_NEEDED

        # Where the session stands now.
        if claimed_at is None or claimer is None:
            escalated = intent == HandoffIntent.ESCALATE
            support_session.status = SessionStatus.ESCALATED if escalated else SessionStatus.PAUSED
            support_session.escalation_reason = handoff.engineer_notes if escalated else None
        else:
            settled = now - claimed_at > timedelta(days=1) and rng.random() < 0.92
            support_session.status = SessionStatus.RESOLVED if settled else SessionStatus.ACTIVE
            support_session.escalated_to_id = claimer.id
            later = claimed_at + timedelta(minutes=rng.randint(10, 240)) if settled else claimed_at
            support_session.updated_at = min(later, now)
        planned.append((support_session, steps, handoff))
        problems.append(problem)

    db.add_all([support_session for support_session, _, _ in planned])
    db.flush()  # session ids, in multi-row inserts
    children: list = []
    for support_session, steps, handoff in planned:
        for step in steps:
            step.session_id = support_session.id
        handoff.session_id = support_session.id
        children.extend(steps)
        children.append(handoff)
    db.add_all(children)
    db.flush()
    extra = _add_casework(db, random.Random(seed + 1), users, planned, problems, now)
    _add_lessons(db, random.Random(seed + 2), users, planned, problems, now)
    # The resolved ones are similar past cases from now on (`domain.similar_cases`).
    similar_cases.index_resolved_sessions(
        db, [s.id for s, _, _ in planned if s.status == SessionStatus.RESOLVED]
    )
    db.commit()
    return len(planned) + extra


def _add_clock(handoff: SessionHandoff, account_id: int, now: datetime) -> None:
    """The default response target, as if the clock had run: one picked up late, or still
    waiting past its target (a breached card in the queue), went to level 2 at its target."""
    handoff.clock = clock.snapshot(EscalationPolicy(account_id=account_id), handoff.priority)
    handoff.response_due_at = handoff.created_at + timedelta(minutes=handoff.clock["target_minutes"])
    late = handoff.claimed_at is None or handoff.claimed_at > handoff.response_due_at
    if late and handoff.response_due_at < now:
        handoff.escalation_level = 2
        handoff.re_escalated_at = handoff.response_due_at


# How each demo problem's domain was usually fixed (the resolution's root cause).
DOMAIN_ROOT_CAUSES = {
    "Printing": RootCause.CONFIGURATION,
    "Hardware": RootCause.HARDWARE,
    "Security": RootCause.PERMISSIONS,
    "Backup": RootCause.SOFTWARE,
    "Applications": RootCause.THIRD_PARTY,
    "Server": RootCause.SOFTWARE,
    "Endpoint management": RootCause.CONFIGURATION,
}
HANDBACK_SHARE = 0.12
ONWARD_SHARE = 0.08


def _fix_text(problem: Problem) -> str:
    cause = problem.cause[:1].lower() + problem.cause[1:]
    return f"{problem.next_steps[0]}. It was {cause}."


def _add_casework(
    db: Session,
    rng: random.Random,
    users: dict[str, User],
    planned: list[tuple[SupportSession, list[SessionStep], SessionHandoff]],
    problems: list[Problem],
    now: datetime,
) -> int:
    """What happened after each pick-up: resolved with a fix (most), handed back and then
    fixed by the owner, or escalated onward and fixed by a second senior; cases still
    being worked get their claimer as assignee. Returns how many handoffs it added."""
    added: list[SessionHandoff] = []
    events: list[CaseEvent] = []

    def event(support_session, kind, actor, at, handoff, subject=None, note="", cause=None):
        events.append(
            CaseEvent(
                account_id=support_session.account_id,
                session_id=support_session.id,
                handoff_id=handoff.id,
                kind=kind,
                actor_id=actor.id,
                subject_user_id=subject.id if subject else None,
                note=note,
                root_cause=cause,
                created_at=at,
            )
        )

    by_id = {u.id: u for u in users.values()}
    for (support_session, _steps, handoff), problem in zip(planned, problems, strict=True):
        if handoff.claimed_by_id is None or handoff.claimed_at is None:
            continue
        owner, claimer = by_id[support_session.owner_id], by_id[handoff.claimed_by_id]
        event(support_session, CaseEventKind.CLAIMED, claimer, handoff.claimed_at, handoff, claimer)
        if support_session.status != SessionStatus.RESOLVED:
            support_session.assignee_id = claimer.id
            continue
        resolved_at = support_session.updated_at
        cause = DOMAIN_ROOT_CAUSES.get(problem.domain, RootCause.CONFIGURATION)
        fix = _fix_text(problem)
        resolver, last = claimer, handoff
        roll = rng.random() if handoff.intent == HandoffIntent.ESCALATE else 1.0
        midway = handoff.claimed_at + (resolved_at - handoff.claimed_at) / 2
        if roll < HANDBACK_SHARE:
            guidance = f"Try this next: {problem.next_steps[-1].lower()}."
            handoff.outcome, handoff.outcome_at = HandoffOutcome.HANDED_BACK, midway
            last = SessionHandoff(
                session_id=support_session.id,
                account_id=support_session.account_id,
                team_id=support_session.team_id,
                handed_off_by_id=claimer.id,
                intent=HandoffIntent.HANDBACK,
                priority=handoff.priority,
                engineer_notes=guidance,
                target_user_id=owner.id,
                snapshot=handoff.snapshot,
                ai_status=AIStatus.NOT_NEEDED,
                claimed_by_id=owner.id,
                claimed_at=midway,
                created_at=midway,
            )
            event(support_session, CaseEventKind.HANDED_BACK, claimer, midway, handoff, owner, guidance)
            resolver = owner
        elif roll < HANDBACK_SHARE + ONWARD_SHARE:
            candidates = {
                k: w for k, w in CLAIMER_WEIGHTS.items() if users[k].id not in (owner.id, claimer.id)
            }
            second = users[_weighted(rng, candidates)]
            notes = f"Beyond me: {problem.cause.lower()}?"
            handoff.outcome, handoff.outcome_at = HandoffOutcome.ESCALATED_ON, midway
            picked = midway + (resolved_at - midway) / 4
            last = SessionHandoff(
                session_id=support_session.id,
                account_id=support_session.account_id,
                team_id=support_session.team_id,
                handed_off_by_id=claimer.id,
                intent=HandoffIntent.ESCALATE,
                priority=handoff.priority,
                engineer_notes=notes,
                snapshot=handoff.snapshot,
                claimed_by_id=second.id,
                claimed_at=picked,
                created_at=midway,
            )
            _add_assessment(rng, last, problem, midway)
            event(support_session, CaseEventKind.ESCALATED_ON, claimer, midway, handoff, None, notes)
            event(support_session, CaseEventKind.CLAIMED, second, picked, last, second)
            resolver = second
        if last is not handoff:
            added.append(last)
            support_session.handoff_count += 1
        last.outcome, last.outcome_at = HandoffOutcome.RESOLVED, resolved_at
        support_session.resolution = fix
        support_session.root_cause = cause.value
        support_session.resolved_at = resolved_at
        support_session.resolved_by_id = resolver.id
        event(support_session, CaseEventKind.RESOLVED, resolver, resolved_at, last, None, fix, cause.value)
    db.add_all(added)
    db.flush()
    db.add_all(events)
    return len(added)


def _add_assessment(rng: random.Random, handoff: SessionHandoff, problem: Problem, created: datetime) -> None:
    if rng.random() < 0.05:
        handoff.ai_status = AIStatus.FAILED
        handoff.ai_error = "The assessment timed out."
        return
    confidence = rng.choices(("low", "medium", "high"), weights=(2, 5, 3), k=1)[0]
    summary = f"{problem.cause}. Start with: {problem.next_steps[0].lower()}."
    handoff.ai_status = AIStatus.READY
    handoff.ai_model = DEMO_AI_MODEL
    handoff.ai_generated_at = created + timedelta(seconds=rng.randint(8, 40))
    handoff.ai_assessment = summary
    handoff.ai_assessment_data = {
        "summary_prose": summary,
        "what_we_know": list(problem.known),
        "likely_cause": problem.cause,
        "suggested_steps": list(problem.next_steps),
        "confidence": confidence,
        "offline": False,
        "start_here": f"Start here: {problem.next_steps[0]}.",
    }


# What the desk learned (`domain.grading`, `domain.patterns`), from a third seeded stream
# so the history above stays as it was: how complete each escalation was when sent
# (complete ones picked up faster), quick fixes (some engineers' escalations are often
# fixed within minutes of the pick-up: the coaching signal), one client's recurring
# problem, and the graded assessments (right more often at high confidence).
QUICK_FIX_SHARE = {"taylor": 0.45, "jamie": 0.25, "alex": 0.12, "sam": 0.08}
RECURRING_CLIENT = "Harbor Dental"
RECURRING_CASES = 4
# (yes, partly, no) weights of the resolvers' answers by the assessment's confidence.
HUMAN_VERDICTS = {"high": (7, 2, 1), "medium": (5, 3, 2), "low": (2, 3, 5)}
AI_VERDICTS = {"high": (6, 3, 1), "medium": (4, 4, 2), "low": (2, 3, 5)}
SKIPPED_SHARE = 0.15
AI_GRADED_SHARE = 0.8
AI_REASONS = {
    "yes": "The fix addressed the cause the assessment named.",
    "partly": "The fix was in the named area but the cause was narrower.",
    "no": "What fixed it points to a different cause.",
}


def _add_lessons(
    db: Session,
    rng: random.Random,
    users: dict[str, User],
    planned: list[tuple[SupportSession, list[SessionStep], SessionHandoff]],
    problems: list[Problem],
    now: datetime,
) -> None:
    from escalation_app.domain.models import AssessmentGrade

    db.flush()  # the case events of `_add_casework`
    names = {u.id: key for key, u in users.items()}
    account_id = planned[0][0].account_id if planned else None
    escalations = db.exec(
        select(SessionHandoff).where(
            SessionHandoff.account_id == account_id, SessionHandoff.intent == HandoffIntent.ESCALATE
        )
    ).all()
    # Completeness when sent: the faster half of the pick-ups were mostly complete.
    waits = sorted(
        (h.claimed_at - h.created_at).total_seconds() for h in escalations if h.claimed_at is not None
    )
    median_wait = waits[len(waits) // 2] if waits else 0
    for handoff in sorted(escalations, key=lambda h: (h.created_at, str(h.id))):
        if handoff.completeness_missing is not None:
            continue  # sent through the dialog (the demo data's own), already checked
        fast = (
            handoff.claimed_at is not None
            and (handoff.claimed_at - handoff.created_at).total_seconds() <= median_wait
        )
        complete = rng.random() < (0.75 if fast else 0.3)
        handoff.completeness_missing = 0 if complete else rng.choice((1, 1, 2, 3))

    resolved_events = {
        e.handoff_id: e
        for e in db.exec(
            select(CaseEvent).where(
                CaseEvent.account_id == account_id, CaseEvent.kind == CaseEventKind.RESOLVED
            )
        ).all()
    }
    # Quick fixes: resolved a few minutes after the pick-up.
    for support_session, _steps, handoff in planned:
        event = resolved_events.get(handoff.id)
        if event is None or handoff.claimed_at is None or handoff.intent != HandoffIntent.ESCALATE:
            continue
        if rng.random() < QUICK_FIX_SHARE.get(names.get(handoff.handed_off_by_id, ""), 0.0):
            fixed = handoff.claimed_at + timedelta(minutes=rng.randint(3, 9))
            event.created_at = fixed
            handoff.outcome_at = fixed
            support_session.resolved_at = fixed
            support_session.updated_at = fixed

    # One client's recurring problem: the most common recent resolved problem, four times.
    recent = [
        (support_session, handoff, problem)
        for (support_session, _steps, handoff), problem in zip(planned, problems, strict=True)
        if support_session.status == SessionStatus.RESOLVED and handoff.created_at > now - timedelta(days=25)
    ]
    if recent:
        counts: dict[str, int] = {}
        for _, _, problem in recent:
            counts[problem.summary] = counts.get(problem.summary, 0) + 1
        common = max(sorted(counts), key=lambda summary: counts[summary])
        for support_session, handoff, _ in [r for r in recent if r[2].summary == common][:RECURRING_CASES]:
            support_session.client_name = RECURRING_CLIENT
            handoff.snapshot = {**handoff.snapshot, "client_name": RECURRING_CLIENT}

    # The graded assessments of resolved cases: the last escalation with a real assessment.
    latest: dict[int, SessionHandoff] = {}
    for handoff in sorted(escalations, key=lambda h: (h.created_at, str(h.id))):
        if handoff.ai_status == AIStatus.READY and isinstance(handoff.ai_assessment_data, dict):
            latest[handoff.session_id] = handoff
    sessions = {s.id: s for s, _, _ in planned}
    grades = []
    for session_id, handoff in sorted(latest.items()):
        support_session = sessions.get(session_id)
        if support_session is None or support_session.status != SessionStatus.RESOLVED:
            continue
        confidence = str(handoff.ai_assessment_data.get("confidence") or "medium")
        verdicts = ("yes", "partly", "no")
        human = None
        if rng.random() >= SKIPPED_SHARE:
            human = rng.choices(verdicts, weights=HUMAN_VERDICTS.get(confidence, (1, 1, 1)), k=1)[0]
        ai = None
        if rng.random() < AI_GRADED_SHARE:
            ai = rng.choices(verdicts, weights=AI_VERDICTS.get(confidence, (1, 1, 1)), k=1)[0]
        resolved_at = support_session.resolved_at or support_session.updated_at
        grades.append(
            AssessmentGrade(
                account_id=support_session.account_id,
                session_id=session_id,
                handoff_id=handoff.id,
                confidence=confidence,
                resolved_at=resolved_at,
                human_verdict=human,
                human_by_id=support_session.resolved_by_id if human else None,
                ai_status=AIStatus.READY if ai else None,
                ai_verdict=ai,
                ai_reason=AI_REASONS[ai] if ai else None,
                ai_model=DEMO_AI_MODEL if ai else None,
                ai_graded_at=resolved_at + timedelta(seconds=20) if ai else None,
                created_at=resolved_at,
            )
        )
    db.add_all(grades)
