"""Similar past cases: what is indexed when, what is found, and who may see it.

On SQLite (FTS5, bm25) and PostgreSQL (tsvector, GIN, ts_rank) through the `db` fixture.
The retrieval-quality set is hand-written: each new case is described in other words than
the past case it should find, as a different engineer would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from escalation_app.domain import similar_cases
from escalation_app.domain.casework import resolve_case, session_of_handoff
from escalation_app.domain.errors import InvalidInput, NotFound
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import AccountRole, CaseSearch, Team, User
from escalation_app.domain.similar_cases import SimilarCase, case_terms, similar_to_handoff
from escalation_app.domain.support_sessions import add_step, create_session
from tests.factories import World


@dataclass(frozen=True)
class Case:
    summary: str
    domain: str
    client: str
    steps: tuple[tuple[str, str], ...]
    notes: str = ""


@dataclass(frozen=True)
class Pair:
    name: str
    past: Case
    fix: str
    new: Case


PAIRS = (
    Pair(
        "outlook profile after migration",
        Case(
            "Outlook keeps asking for the password after the mailbox moved to Exchange Online",
            "Microsoft 365",
            "Harbor Dental",
            (
                ("Cleared the cached credentials in Credential Manager", "Prompt comes back"),
                ("Signed in to OWA", "Mail works in the browser"),
            ),
            "Migration finished on Friday night.",
        ),
        "Deleted the old Outlook profile, removed the on-premises autodiscover SCP so Outlook finds "
        "Exchange Online, and created a new profile.",
        Case(
            "Password prompt loop in Outlook since the Exchange Online cutover",
            "Microsoft 365",
            "Baker & Lowe LLP",
            (("Reset the password", "Outlook still prompts"), ("Tested OWA", "Mailbox fine in the browser")),
            "Two PCs so far, both after the mailbox migration.",
        ),
    ),
    Pair(
        "vpn drops",
        Case(
            "GlobalProtect VPN disconnects every five minutes for home workers",
            "Network / VPN",
            "Summit Accounting",
            (
                ("Checked the gateway logs", "Tunnel keepalive timeouts"),
                ("Reinstalled the VPN client", "Still disconnects"),
            ),
        ),
        "Lowered the tunnel MTU to 1380 on the gateway; the ISP's PPPoE overhead was fragmenting packets.",
        Case(
            "Remote staff lose the VPN tunnel every few minutes",
            "Network / VPN",
            "Lakeside Logistics",
            (
                ("Tested from a phone hotspot", "Tunnel stable on the hotspot"),
                ("Read the GlobalProtect client log", "keepalive timeout before each drop"),
            ),
        ),
    ),
    Pair(
        "sip trunk",
        Case(
            "Inbound calls get a busy signal, outbound calls work",
            "Phones / VoIP",
            "Greenfield Clinic",
            (
                ("Checked the PBX trunk status", "Trunk unregistered"),
                ("Rebooted the PBX", "Registers for ten minutes, then drops"),
            ),
        ),
        "Re-registered the SIP trunk with the carrier's new registrar and disabled SIP ALG on the firewall.",
        Case(
            "Callers hear a busy tone on the main number",
            "Phones / VoIP",
            "Riverside Veterinary",
            (
                ("Called the main number from a mobile", "Busy tone"),
                ("Opened the PBX status page", "SIP trunk shows unregistered"),
            ),
        ),
    ),
    Pair(
        "print spooler",
        Case(
            "Print spooler service keeps crashing on the print server",
            "Printing",
            "Oakridge Schools",
            (
                ("Restarted the spooler", "Crashes again within the hour"),
                ("Read the System log", "Event 7031: spoolsv.exe terminated unexpectedly"),
            ),
        ),
        "Removed a corrupt third-party driver from the spooler with printui, cleared the spool folder and "
        "reinstalled the Type 4 driver.",
        Case(
            "Nobody can print; jobs stick in the queue and the spooler stops",
            "Printing",
            "Pioneer Architects",
            (
                ("Emptied the PRINTERS spool folder", "Printing works for a few minutes"),
                ("Event viewer on the server", "spoolsv.exe terminated"),
            ),
        ),
    ),
    Pair(
        "m365 licensing",
        Case(
            "New starter has no mailbox after the account was created",
            "Microsoft 365",
            "Maple Street Bakery",
            (
                ("Checked the user in Entra ID", "Account synced from AD"),
                ("Looked for the mailbox in Exchange admin", "Not found"),
            ),
        ),
        "Assigned a Business Premium licence (none were free, bought one more seat); the mailbox appeared "
        "20 minutes later.",
        Case(
            "Mailbox never provisioned for the new hire",
            "Microsoft 365",
            "Bluewater Marine",
            (
                ("Confirmed the Entra Connect sync", "User is in the tenant"),
                ("Opened the licences page", "0 licences available"),
            ),
        ),
    ),
    Pair(
        "mfa new phone",
        Case(
            "User cannot sign in after getting a new phone: MFA prompts go to the old device",
            "Security",
            "Harbor Dental",
            (("Checked the sign-in logs", "MFA denied, request sent to the old phone"),),
        ),
        "Required MFA re-registration in Entra ID, issued a Temporary Access Pass and set up Microsoft "
        "Authenticator on the new phone.",
        Case(
            "Lost phone: Authenticator approvals never arrive, locked out of Microsoft 365",
            "Security",
            "Summit Accounting",
            (("Tried sign-in from a browser", "Waits for approval on the authenticator app"),),
        ),
    ),
    Pair(
        "dns for vpn users",
        Case(
            "Internal websites do not resolve for VPN users",
            "Network / DNS",
            "Lakeside Logistics",
            (
                ("nslookup intranet.corp.local", "Non-existent domain"),
                ("Checked the VPN's DNS settings", "Public resolvers pushed to clients"),
            ),
        ),
        "Changed the VPN profile to push the domain controllers as DNS servers with the internal suffix.",
        Case(
            "Remote users reach the intranet by IP but not by name",
            "Network / DNS",
            "Oakridge Schools",
            (("Pinged the intranet server by IP", "Replies"), ("nslookup intranet", "server can't find it")),
        ),
    ),
    Pair(
        "backup vss",
        Case(
            "Veeam backup job fails with a VSS error on the SQL server",
            "Backup",
            "Pioneer Architects",
            (
                ("vssadmin list writers", "SqlServerWriter in a failed state"),
                ("Retried the job in the morning", "Succeeded, failed again overnight"),
            ),
        ),
        "Moved the SQL maintenance plan out of the backup window and enabled application-aware processing.",
        Case(
            "Nightly backup of the database server fails with a snapshot error",
            "Backup",
            "Maple Street Bakery",
            (("Listed the VSS writers", "SqlServerWriter failed"),),
        ),
    ),
    Pair(
        "shared mailbox automapping",
        Case(
            "Shared mailbox does not appear in Outlook after access was granted",
            "Microsoft 365",
            "Baker & Lowe LLP",
            (("Checked Full Access in the admin centre", "Granted through a security group"),),
        ),
        "Automapping does not apply to group permissions: granted Full Access per user with automapping on.",
        Case(
            "Team cannot see the accounts@ shared mailbox in Outlook despite Full Access",
            "Microsoft 365",
            "Bluewater Marine",
            (("Restarted Outlook", "Shared mailbox still missing from the folder pane"),),
        ),
    ),
    Pair(
        "rds disk full",
        Case(
            "C: drive full on the Remote Desktop server",
            "Server",
            "Riverside Veterinary",
            (("Ran TreeSize", "User profiles and WSUS content take 60 GB"),),
        ),
        "Cleared temp folders in user profiles, moved the WSUS content to D: and enabled Storage Sense.",
        Case(
            "Terminal server out of disk space, users cannot log on",
            "Server",
            "Greenfield Clinic",
            (("Checked free space on the system drive", "200 MB free"),),
        ),
    ),
    Pair(
        "certificate expired",
        Case(
            "Website shows a certificate expired warning",
            "Web hosting",
            "Maple Street Bakery",
            (("Checked the certificate in the browser", "Let's Encrypt certificate expired yesterday"),),
        ),
        "Renewed the Let's Encrypt certificate; renewal failed because port 80 was closed on the firewall, "
        "reopened it for the HTTP-01 challenge.",
        Case(
            "Client portal SSL certificate expired, browsers say not secure",
            "Web hosting",
            "Summit Accounting",
            (("Looked at the certificate's dates", "Expired two days ago; auto-renewal did not run"),),
        ),
    ),
    Pair(
        "account lockout",
        Case(
            "User account locks out every morning",
            "Active Directory",
            "Oakridge Schools",
            (("Searched the PDC security log for 4740", "Lockout source is the terminal server TS02"),),
        ),
        "Logged off a disconnected RDP session on TS02 that still held the old password and removed its "
        "stored credentials.",
        Case(
            "AD account keeps getting locked, event 4740 points at a terminal server",
            "Active Directory",
            "Pioneer Architects",
            (("Unlocked the account", "Locked again an hour later"),),
        ),
    ),
    Pair(
        "wifi conference room",
        Case(
            "Wi-Fi drops in the boardroom during Teams calls",
            "Network / Wi-Fi",
            "Baker & Lowe LLP",
            (("Checked channel utilisation", "Channel 36 at 80% during calls"),),
        ),
        "Moved the boardroom access point to a DFS channel and enabled band steering.",
        Case(
            "Video meetings freeze on the wireless in the conference room",
            "Network / Wi-Fi",
            "Lakeside Logistics",
            (("Ran a Wi-Fi survey", "Strong signal, busy channel"),),
        ),
    ),
    Pair(
        "onedrive long paths",
        Case(
            "OneDrive stuck on processing changes",
            "Microsoft 365",
            "Harbor Dental",
            (("Paused and resumed sync", "Still processing"),),
        ),
        "Reset the OneDrive client and shortened files whose paths were over 400 characters.",
        Case(
            "OneDrive shows a red cross and files are not syncing",
            "Microsoft 365",
            "Riverside Veterinary",
            (("Opened the OneDrive activity centre", "Path too long on several Desktop files"),),
        ),
    ),
    Pair(
        "teams microphone",
        Case(
            "In Teams calls others cannot hear the user",
            "Microsoft 365",
            "Greenfield Clinic",
            (("Tested the headset in Sound settings", "Input level moves"),),
        ),
        "Windows privacy settings blocked microphone access for desktop apps; allowed it and set the headset "
        "as the default communications device.",
        Case(
            "Microphone not working in Teams meetings, headset fine in other apps",
            "Microsoft 365",
            "Oakridge Schools",
            (("Re-plugged the USB headset", "Teams shows no microphone"),),
        ),
    ),
    Pair(
        "gpo drive maps",
        Case(
            "Drive mappings missing for the finance department",
            "Active Directory",
            "Summit Accounting",
            (("Ran gpresult /r", "Drive map GPO denied by security filtering"),),
        ),
        "Added Authenticated Users with Read on the GPO's delegation tab (MS16-072 change).",
        Case(
            "Group Policy mapped drive not showing for new finance staff",
            "Active Directory",
            "Bluewater Marine",
            (("gpresult on the new PC", "GPO filtered out"),),
        ),
    ),
    Pair(
        "bitlocker recovery",
        Case(
            "Laptop asks for the BitLocker recovery key after a BIOS update",
            "Endpoint management",
            "Lakeside Logistics",
            (("Asked the user for the key", "User never had it"),),
        ),
        "Found the recovery key in the device's Entra ID record; an Intune script now suspends BitLocker "
        "before BIOS updates.",
        Case(
            "BitLocker recovery screen at boot after a firmware update",
            "Endpoint management",
            "Maple Street Bakery",
            (("Rebooted", "Recovery screen again"),),
        ),
    ),
    Pair(
        "scan to email",
        Case(
            "Copier scan to email stopped working",
            "Printing",
            "Pioneer Architects",
            (("Updated the SMTP password on the copier", "Authentication failed"),),
        ),
        "The copier only speaks TLS 1.0: created an Exchange Online SMTP relay connector for its public IP.",
        Case(
            "MFP cannot send scans by email, SMTP authentication fails",
            "Printing",
            "Harbor Dental",
            (("Sent a test email from the MFP web page", "535 authentication unsuccessful"),),
        ),
    ),
    Pair(
        "autopilot tpm",
        Case(
            "Autopilot enrolment fails at Securing your hardware",
            "Endpoint management",
            "Baker & Lowe LLP",
            (("Checked the hardware hash upload", "Device registered in Autopilot"),),
        ),
        "Updated the TPM firmware and cleared the TPM in the BIOS; enrolment completed.",
        Case(
            "New laptop stuck in Intune Autopilot with a TPM attestation error",
            "Endpoint management",
            "Greenfield Clinic",
            (("Reset the laptop and retried", "Fails at the same step"),),
        ),
    ),
    Pair(
        "mailbox compromise",
        Case(
            "Suspicious inbox rule forwarding mail to an external address",
            "Security",
            "Riverside Veterinary",
            (("Checked the sign-in logs", "Sign-ins from an unfamiliar country"),),
        ),
        "Reset the password, revoked sessions, removed the forwarding rule, enforced MFA and searched the "
        "audit log for mail sent by the account.",
        Case(
            "Compromised mailbox sending spam with a forwarding rule to a Gmail address",
            "Security",
            "Oakridge Schools",
            (("Looked at the inbox rules", "Rule forwards everything externally"),),
        ),
    ),
    Pair(
        "quickbooks multi-user",
        Case(
            "QuickBooks cannot open the company file in multi-user mode",
            "Applications",
            "Summit Accounting",
            (("Opened the file on the server itself", "Opens fine locally"),),
        ),
        "Restarted the QuickBooksDB service, opened ports 8019 and 56728 in Windows Firewall and ran the "
        "Database Server Manager scan.",
        Case(
            "Accounting software gives error H202 when switching to multi-user mode",
            "Applications",
            "Lakeside Logistics",
            (("Pinged the server from the workstation", "Replies"),),
        ),
    ),
    Pair(
        "windows update stuck",
        Case(
            "Windows Update stuck at 0% downloading on several PCs",
            "Endpoint management",
            "Oakridge Schools",
            (("Ran the Windows Update troubleshooter", "No problems found"),),
        ),
        "The WSUS server's content was corrupt; pointed the update policy to Windows Update for Business.",
        Case(
            "Workstations cannot download Windows updates, stuck on downloading",
            "Endpoint management",
            "Pioneer Architects",
            (("Cleared the SoftwareDistribution folder", "Still stuck"),),
        ),
    ),
    Pair(
        "time skew kerberos",
        Case(
            "Clock drift across the domain causing Kerberos errors",
            "Active Directory",
            "Bluewater Marine",
            (("w32tm /query /status on a PC", "Source: Local CMOS Clock"),),
        ),
        "Configured the PDC emulator to sync with an external NTP pool; clients follow the domain hierarchy.",
        Case(
            "Users get a time difference error signing in, clocks seven minutes off",
            "Active Directory",
            "Harbor Dental",
            (("Compared the PC clock with the server", "Seven minutes apart"),),
        ),
    ),
)


def _session(world: World, owner: str, case: Case) -> int:
    actor = world.actor(owner)
    support_session = create_session(
        db=world.db,
        actor=actor,
        problem_summary=case.summary,
        problem_domain=case.domain,
        client_name=case.client,
    )
    for tried, result in case.steps:
        add_step(db=world.db, actor=actor, session_id=support_session.id, tried=tried, result=result)
    return support_session.id


def escalate(world: World, case: Case, *, owner: str = "sam", to: str | None = None) -> str:
    """A new escalation of `case` (to the team, or sent to `to`), waiting; its handoff id."""
    sid = _session(world, owner, case)
    handoff = create_handoff(
        db=world.db,
        actor=world.actor(owner),
        session_id=sid,
        intent="escalate",
        notes=case.notes,
        target_user_id=world.users[to].id if to else None,
    )
    return str(handoff.id)


def resolved(
    world: World, case: Case, fix: str, *, owner: str = "alex", fixer: str = "riley", sent: bool = False
) -> int:
    """`case` escalated by `owner`, picked up by `fixer` and resolved with `fix`; its session id."""
    handoff_id = escalate(world, case, owner=owner, to=fixer if sent else None)
    claim_handoff(db=world.db, actor=world.actor(fixer), handoff_id=handoff_id)
    sid = session_of(world, handoff_id, fixer)
    resolve_case(db=world.db, actor=world.actor(fixer), session_id=sid, fix=fix, root_cause="configuration")
    return sid


def session_of(world: World, handoff_id: str, reader: str = "riley") -> int:
    return session_of_handoff(db=world.db, actor=world.actor(reader), handoff_id=handoff_id)


def found(world: World, handoff_id: str, reader: str = "riley") -> list[SimilarCase]:
    return similar_to_handoff(db=world.db, actor=world.actor(reader), handoff_id=handoff_id)


@pytest.fixture
def world(db) -> World:
    return World(db)


# ---------------------------------------------------------------------------- retrieval quality


def test_the_past_case_a_new_one_should_find_is_in_the_top_three(world):
    assert len(PAIRS) >= 20
    past = {pair.name: resolved(world, pair.past, pair.fix) for pair in PAIRS}
    misses = []
    for pair in PAIRS:
        shown = found(world, escalate(world, pair.new))
        assert len(shown) <= 3
        if past[pair.name] not in [case.session_id for case in shown]:
            misses.append(f"{pair.name}: got {[case.problem_summary for case in shown]}")
    assert len(PAIRS) - len(misses) >= 18, "\n".join(misses)


# ---------------------------------------------------------------------------- what is shown


def test_a_case_shows_who_fixed_it_what_fixed_it_and_links_its_resolved_handoff(world):
    pair = PAIRS[2]  # the SIP trunk
    sid = resolved(world, pair.past, pair.fix, fixer="morgan")
    [case] = [c for c in found(world, escalate(world, pair.new)) if c.session_id == sid]
    assert case.problem_summary == pair.past.summary
    assert case.client_name == pair.past.client and case.problem_domain == pair.past.domain
    assert case.fixed_by_name == "Morgan Lee"
    assert case.fix == pair.fix
    assert case.reference == f"#{sid}"
    doc = world.db.get(CaseSearch, sid)
    assert case.handoff_id == str(doc.handoff_id)
    assert case.time_to_fix == doc.resolved_at - doc.escalated_at
    # Escalated, picked up and fixed within this test: "a moment" (real times: test below).
    assert case.time_to_fix < timedelta(minutes=1) and case.time_to_fix_text == "a moment"


def test_time_to_fix_reads_as_people_say_it():
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def took(delta: timedelta) -> str:
        return SimilarCase(
            "h", 1, "s", "", "", "Riley Chen", "fix", None, start, start + delta
        ).time_to_fix_text

    assert took(timedelta(hours=3, minutes=10)) == "3 hours"
    assert took(timedelta(days=2, hours=1)) == "2 days"
    assert took(timedelta(minutes=25)) == "25 minutes"


def test_a_fix_longer_than_the_list_shows_is_cut_with_an_ellipsis():
    now = datetime(2026, 11, 2, tzinfo=UTC)
    case = SimilarCase("h", 1, "s", "", "", "Riley", "x " * 400, None, now, now)
    assert len(case.fix_excerpt) == similar_cases.FIX_EXCERPT and case.fix_excerpt.endswith("…")


# ---------------------------------------------------------------------------- what is indexed, when


def test_the_document_is_written_by_the_resolve_with_the_seniors_steps_and_the_fix(world):
    db = world.db
    case = Case(
        "Scanner app cannot reach the SQL database after the server move",
        "Applications",
        "Harbor Dental",
        (("Tested port 1433 from a client", "Connection refused"),),
        "Vendor support is US hours only.",
    )
    handoff_id = escalate(world, case, owner="alex")
    claim_handoff(db=db, actor=world.actor("riley"), handoff_id=handoff_id)
    sid = session_of(world, handoff_id)
    add_step(
        db=db,
        actor=world.actor("riley"),
        session_id=sid,
        tried="Started SQL Browser",
        result="Clients connect",
    )
    assert db.get(CaseSearch, sid) is None  # not a past case until it is fixed

    # A resolve that fails saves no document.
    with pytest.raises(InvalidInput):
        resolve_case(db=db, actor=world.actor("riley"), session_id=sid, fix="x", root_cause="gremlins")
    assert db.get(CaseSearch, sid) is None

    resolve_case(
        db=db,
        actor=world.actor("riley"),
        session_id=sid,
        fix="Pinned the named instance to a static port and opened it on the firewall",
        root_cause="configuration",
    )
    db.expire_all()
    doc = db.get(CaseSearch, sid)
    assert doc is not None and str(doc.handoff_id) == handoff_id
    assert doc.title == "Scanner app cannot reach the SQL database after the server move Applications"
    assert "Started SQL Browser Clients connect" in doc.body and "Vendor support" in doc.body
    assert doc.fix.startswith("Pinned the named instance")

    # Found by what only the senior's step says, and by what only the fix says.
    for words in ("Browser service", "Named instance pinned static"):
        new = escalate(world, Case(words, "", "", ()))
        assert [c.session_id for c in found(world, new)] == [sid]


def test_only_resolved_cases_of_the_account_and_never_the_case_itself(world):
    pair = PAIRS[0]
    waiting = escalate(world, pair.past, owner="alex")  # the same problem, not fixed yet
    fixed = resolved(world, pair.past, pair.fix)
    shown = found(world, escalate(world, pair.new))
    assert [c.session_id for c in shown] == [fixed]
    assert session_of(world, waiting) not in [c.session_id for c in shown]

    # The fixed case's own screen does not offer it as its own similar case.
    doc = world.db.get(CaseSearch, fixed)
    assert fixed not in [c.session_id for c in found(world, str(doc.handoff_id))]


def test_another_accounts_identical_case_never_appears(world):
    pair = PAIRS[3]  # the print spooler
    # Contoso fixed exactly this problem; Northwind never did.
    contoso_fix = resolved(world, pair.past, pair.fix, owner="casey", fixer="jordan")
    northwind_new = escalate(world, pair.past)  # word for word the same
    for reader in ("riley", "morgan", "val", "sam"):
        assert found(world, northwind_new, reader) == []
    # Positive control: Contoso's own new case finds it.
    contoso_new = escalate(world, pair.new, owner="casey")
    assert [c.session_id for c in found(world, contoso_new, "jordan")] == [contoso_fix]
    # And nobody reads the other account's handoff's similar cases at all.
    with pytest.raises(NotFound):
        found(world, contoso_new, "riley")


def test_an_engineer_sees_only_cases_they_may_open(world):
    db = world.db
    pair = PAIRS[1]  # the VPN
    team_b = Team(account_id=world.northwind.id, name="Projects")
    db.add(team_b)
    db.commit()
    world.add_user("pat@northwind.example", "Pat Quinn", AccountRole.ENGINEER)
    pat = db.exec(select(User).where(User.email == "pat@northwind.example")).one()
    pat.team_id = team_b.id
    db.add(pat)
    db.commit()
    # Pat (the Projects team) had the VPN case fixed (sent to Riley); it is a Projects handoff.
    other_team = resolved(world, pair.past, pair.fix, owner="pat", fixer="riley", sent=True)
    new = escalate(world, pair.new)  # Sam, Service Desk
    assert found(world, new, "sam") == []  # Sam cannot open Projects' handoffs
    assert [c.session_id for c in found(world, new, "morgan")] == [other_team]  # the owner can
    assert [c.session_id for c in found(world, new, "val")] == [other_team]  # a viewer reads all


# ---------------------------------------------------------------------------- the query is words only


def test_query_syntax_typed_by_a_person_is_read_as_words(world):
    pair = PAIRS[0]
    fixed = resolved(world, pair.past, pair.fix)
    hostile = Case(
        "Outlook \"password\" OR (prompt* NEAR/2 -profile) & !x | y:* 'z' AND NOT col:title ^migration",
        "Microsoft 365",
        'Bob\'s "Bakery"',
        (("SELECT 1; -- ' \" \\", "()[]{}*:^~"),),
        "); DROP TABLE case_search; --",
    )
    assert [c.session_id for c in found(world, escalate(world, hostile))] == [fixed]


def test_a_case_with_no_searchable_words_finds_nothing(world):
    pair = PAIRS[0]
    resolved(world, pair.past, pair.fix)
    assert found(world, escalate(world, Case("It is not working at all", "", "", ()))) == []


def test_the_query_is_bounded_however_long_the_case():
    many = " ".join(f"word{i}" for i in range(5000))
    terms = case_terms("Outlook crash", many)
    assert len(terms) == similar_cases.TERMS_MAX
    assert terms[:2] == ["outlook", "crash"]
    assert case_terms("a" * 500 + " printer 42 kb5034441 x") == ["printer", "kb5034441"]
    assert case_terms("Still not working for the user", None, "") == []


def test_only_the_newest_cases_sharing_a_word_are_ranked(world, monkeypatch):
    # The best match is the oldest; two newer cases share only "printer" with the new one.
    best = resolved(world, PAIRS[3].past, PAIRS[3].fix)  # the print spooler
    for summary in ("Label printer offline", "Printer out of toner"):
        resolved(world, Case(summary, "Hardware", "Acme", ()), "Replaced it")
    new = escalate(world, PAIRS[3].new)
    assert found(world, new)[0].session_id == best

    monkeypatch.setattr(similar_cases, "RANKED_MAX", 2)  # as if thousands of newer ones matched
    assert best not in [c.session_id for c in found(world, new)]


def test_a_clear_match_is_not_padded_with_cases_sharing_a_word_or_two(world):
    best = resolved(world, PAIRS[3].past, PAIRS[3].fix)  # the print spooler
    weak = resolved(world, Case("Label printer offline", "Hardware", "Acme", ()), "Replaced it")
    assert [c.session_id for c in found(world, escalate(world, PAIRS[3].new))] == [best]
    # On its own, the weak one is still offered: something is better than nothing.
    assert found(world, escalate(world, Case("Printer offline", "", "", ())))[0].session_id == weak
