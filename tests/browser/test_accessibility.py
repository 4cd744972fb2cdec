"""Readable by everyone: axe-core on every page, as each role sees it, on a desktop and a phone.

Any serious or critical violation fails, listed with the elements it was found on.
"""

from __future__ import annotations

import json
import time

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlmodel import select

from escalation_app.domain.db import session_scope
from escalation_app.domain.models import SessionHandoff, SessionStep, SupportSession, User
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")
# Lesser rules that were broken once and stay fixed: every page has one main landmark
# (the sign-in page had none), and no table header is empty (the users table had one).
ALSO_BLOCKING = ("landmark-one-main", "empty-table-header")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Every page each role can open (their own view of it).
ROLE_PAGES = {
    "engineer": (
        "alex@northwind.example",
        ["/sessions", "{session}", "{session}/history", "/escalations", "{handoff}"],
    ),
    "admin": (
        "riley@northwind.example",
        ["/escalations", "{handoff}", "/history", "/analytics", "/admin/users", "/admin/integrations"],
    ),
    # Owners see what admins see, except the owner role in the users table.
    "owner": ("morgan@northwind.example", ["/admin/users", "/analytics"]),
    "viewer": ("val@northwind.example", ["/sessions", "/escalations", "{handoff}", "/history"]),
}
PHONE_PAGES = {
    "engineer": ["/sessions", "{session}", "/escalations"],
    "admin": ["/escalations", "{handoff}", "/admin/users"],
}


@pytest.fixture(scope="module")
def paths(app_database) -> dict[str, str]:
    """Alex's session with steps and an escalation of theirs (the demo data has both)."""
    with session_scope() as db:
        alex = db.exec(select(User).where(User.email == "alex@northwind.example")).one()
        handoff = db.exec(
            select(SessionHandoff)
            .where(SessionHandoff.handed_off_by_id == alex.id, SessionHandoff.intent == "escalate")
            .order_by(SessionHandoff.created_at.desc())  # type: ignore[attr-defined]
        ).first()
        with_steps = select(SessionStep.session_id).distinct()
        session = db.exec(
            select(SupportSession).where(
                SupportSession.owner_id == alex.id,
                SupportSession.status == "active",  # Escalate is enabled: its dialog is checked too
                SupportSession.assignee_id.is_(None),  # type: ignore[union-attr]  (nobody else works it)
                SupportSession.id.in_(with_steps),  # type: ignore[union-attr]
            )
        ).first()
        assert handoff is not None and session is not None
        return {"session": f"/sessions/{session.id}", "handoff": f"/handoffs/{handoff.id}"}


def _report(found: dict[str, list[str]]) -> None:
    failing = {where: lines for where, lines in found.items() if lines}
    if failing:
        pytest.fail(
            "\n".join(f"{where}:\n  " + "\n  ".join(lines) for where, lines in failing.items()),
            pytrace=False,
        )


AXE = Axe()  # reads axe-core's script once
# Every violation seen, of any impact, per page: written to test-artifacts/axe.json.
SEEN: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_summary():
    yield
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps(SEEN, indent=2, sort_keys=True))


def _serious(page, where: str) -> list[str]:
    """Serious and critical axe violations on the page, one line per rule with its elements."""
    began = time.monotonic()
    results = AXE.run(page)
    SEEN[where] = {f"{v['impact']} {v['id']}": len(v["nodes"]) for v in results.response["violations"]}
    SEEN[where]["(axe seconds)"] = round(time.monotonic() - began, 2)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING or violation["id"] in ALSO_BLOCKING:
            targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            found.append(f"{violation['impact']} {violation['id']}: {violation['help']} [{targets}]")
    return found


# Pages whose rows arrive after the heading: axe must see them.
ROWS = {"/escalations": "main article", "/history": "main tbody tr", "/admin/users": "main tbody tr"}


def _ready(page, url: str) -> None:
    """The page's own content is on screen (not the loading spinner)."""
    expect(page.locator("main h1").first).to_be_visible()
    expect(page.locator("main .rt-Spinner")).to_have_count(0)
    if url in ROWS:
        expect(page.locator(ROWS[url]).first).to_be_visible()


def test_login_page_has_no_serious_violations(people):
    found = {}
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = people.page(viewport=viewport)
        page.goto(people.url("/login"))
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        found[f"/login ({name})"] = _serious(page, f"/login ({name})")
    _report(found)


@pytest.mark.parametrize("role", list(ROLE_PAGES))
def test_every_page_of_a_role_has_no_serious_violations(people, paths, role):
    email, pages = ROLE_PAGES[role]
    found: dict[str, list[str]] = {}
    desktop = [p.format(**paths) for p in pages]
    page = people.signed_in(email, desktop[0], viewport=DESKTOP)

    def check(url: str, viewport_name: str) -> None:
        if page.url.rstrip("/") != people.url(url).rstrip("/"):
            page.goto(people.url(url))
        _ready(page, url)
        where = f"{role} {url} ({viewport_name})"
        found[where] = _serious(page, where)

    for url in desktop:
        check(url, "desktop")
    if role == "engineer":
        # The Escalate dialog, open: the busiest form in the product.
        session = paths["session"]
        check(session, "desktop")
        page.get_by_role("button", name="Escalate").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        # Checked once it has faded in: mid-animation its colours are half transparent.
        page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
        found[f"{session} Escalate dialog"] = _serious(page, f"{role} {session} Escalate dialog")
        page.keyboard.press("Escape")
    # The same person on a phone (Radix's responsive styles follow the viewport).
    page.set_viewport_size(PHONE)
    for url in [p.format(**paths) for p in PHONE_PAGES.get(role, [])]:
        check(url, "phone")
    _report(found)
