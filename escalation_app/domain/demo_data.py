"""Demo accounts, users, sessions and handoffs for a first start (idempotent)."""

from __future__ import annotations

from sqlmodel import Session, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.auth import hash_password
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import Account, AccountRole, Team, User
from escalation_app.domain.support_sessions import add_step, create_session

DEMO_PASSWORD = "escalate-demo"

NORTHWIND_USERS = [
    ("alex@northwind.example", "Alex Kim", AccountRole.ENGINEER),
    ("sam@northwind.example", "Sam Patel", AccountRole.ENGINEER),
    ("riley@northwind.example", "Riley Chen", AccountRole.ADMIN),
    ("morgan@northwind.example", "Morgan Lee", AccountRole.OWNER),
    ("val@northwind.example", "Val Ortiz", AccountRole.VIEWER),
]
CONTOSO_USERS = [
    ("casey@contoso.example", "Casey Diaz", AccountRole.ENGINEER),
    ("jordan@contoso.example", "Jordan Fox", AccountRole.ADMIN),
]

# (summary, domain, client, ticket, [(tried, result)])
ALEX_ACTIVE = [
    (
        "VPN fails to connect after Windows update KB5034441",
        "Network / VPN",
        "Harbor Dental",
        "48213",
        [
            ("Checked the GlobalProtect client logs", "Error: 'gateway certificate not trusted'"),
            ("Restarted the PanGPS service", "Same error after restart"),
            ("Rolled back KB5034441 on a test laptop", "VPN connects on the rolled-back machine"),
            (
                "Compared the machine certificate stores",
                "Root CA present on both; intermediate missing after update",
            ),
        ],
    ),
    (
        "Outlook keeps prompting for a password on every launch",
        "Microsoft 365",
        "Baker & Lowe LLP",
        "48240",
        [
            ("Cleared Credential Manager entries for Office", "Prompt returns after the next launch"),
            (
                "Ran the Microsoft Support and Recovery Assistant",
                "Reports modern auth enabled, no fix applied",
            ),
            ("Created a fresh Outlook profile", "Still prompts; the OWA sign-in works fine"),
        ],
    ),
    (
        "Printers offline on the third floor only",
        "Printing",
        "Greenfield Clinic",
        None,
        [
            ("Pinged both third-floor printers from the print server", "Request timed out"),
            ("Checked the switch port status for floor 3", "Ports up, VLAN 30 assigned"),
            ("Power-cycled one printer", "Gets an APIPA 169.254.x.x address"),
        ],
    ),
]


def _actor(user: User) -> Actor:
    return Actor.from_user(user)


def _add_users(db: Session, account: Account, team: Team | None, specs) -> dict[str, User]:
    users = {}
    for email, name, role in specs:
        user = User(
            account_id=account.id,
            team_id=team.id if team else None,
            email=email,
            display_name=name,
            password_hash=hash_password(DEMO_PASSWORD),
            account_role=role,
        )
        db.add(user)
        users[email.split("@")[0]] = user
    db.commit()
    return users


def _session_with_steps(db: Session, actor: Actor, summary, domain, client, ticket, steps) -> int:
    support_session = create_session(
        db=db,
        actor=actor,
        problem_summary=summary,
        problem_domain=domain,
        client_name=client,
        psa_ticket_id=ticket,
    )
    for tried, result in steps:
        add_step(db=db, actor=actor, session_id=support_session.id, tried=tried, result=result)
    return support_session.id


def load_demo_data(db: Session) -> bool:
    """Create the Northwind and Contoso demo accounts once; returns False if already there."""
    if db.exec(select(Account).where(Account.name == "Northwind MSP")).first() is not None:
        return False

    northwind = Account(name="Northwind MSP")
    contoso = Account(name="Contoso IT")
    db.add(northwind)
    db.add(contoso)
    db.commit()
    service_desk = Team(account_id=northwind.id, name="Service Desk")
    contoso_desk = Team(account_id=contoso.id, name="Help Desk")
    db.add(service_desk)
    db.add(contoso_desk)
    db.commit()

    nw = _add_users(db, northwind, service_desk, NORTHWIND_USERS)
    cs = _add_users(db, contoso, contoso_desk, CONTOSO_USERS)
    alex, sam, casey = _actor(nw["alex"]), _actor(nw["sam"]), _actor(cs["casey"])

    for spec in ALEX_ACTIVE:
        _session_with_steps(db, alex, *spec)

    escalated = _session_with_steps(
        db,
        alex,
        "File share mapping fails for the accounting group",
        "Active Directory",
        "Harbor Dental",
        "48277",
        [
            ("Checked group membership in AD", "Users are in ACCT-Share-RW"),
            ("Ran gpresult /r on an affected PC", "Drive-map GPO is filtered out"),
            ("Forced gpupdate /force", "No change; GPO still filtered"),
        ],
    )
    create_handoff(
        db=db,
        actor=alex,
        session_id=escalated,
        intent="escalate",
        priority="high",
        notes="GPO security filtering looks wrong but I don't have rights to edit it. "
        "Accounting can't reach the share before month-end close.",
    )

    parked = _session_with_steps(
        db,
        alex,
        "Laptop battery drains overnight while asleep",
        "Hardware",
        "Baker & Lowe LLP",
        None,
        [("Ran powercfg /sleepstudy", "Modern standby: network adapter keeps the system awake")],
    )
    create_handoff(
        db=db,
        actor=alex,
        session_id=parked,
        intent="park",
        notes="Waiting for the customer to bring the laptop back on Thursday.",
    )

    _session_with_steps(
        db,
        sam,
        "New hire cannot enrol phone in Intune",
        "Microsoft 365",
        "Greenfield Clinic",
        "48301",
        [("Checked the user's licence", "Business Premium assigned")],
    )

    contoso_session = _session_with_steps(
        db,
        casey,
        "Line-of-business app crashes on launch after .NET update",
        "Applications",
        "Fabrikam Foods",
        "C-1021",
        [
            ("Checked the Application event log", ".NET Runtime error 1026, System.IO.FileLoadException"),
            ("Repaired the .NET 4.8 runtime", "Still crashes"),
        ],
    )
    create_handoff(
        db=db,
        actor=casey,
        session_id=contoso_session,
        intent="escalate",
        priority="urgent",
        notes="Whole warehouse is down; need someone who knows the vendor's app.",
    )
    return True
