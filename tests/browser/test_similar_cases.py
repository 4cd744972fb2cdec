"""The handoff screen shows similar past cases from the demo data, and one click opens one."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, col, select

from escalation_app.domain.db import make_engine
from escalation_app.domain.models import SessionHandoff, SupportSession

pytestmark = pytest.mark.browser


def _handoff_path(database_url: str, summary: str) -> str:
    """The demo handoff of the session with this summary (its first), as a path."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as db:
            handoff_id = db.exec(
                select(SessionHandoff.id)
                .join(SupportSession, col(SupportSession.id) == SessionHandoff.session_id)
                .where(SupportSession.problem_summary == summary)
                .order_by(col(SessionHandoff.created_at))
            ).first()
    finally:
        engine.dispose()
    assert handoff_id is not None, summary
    return f"/handoffs/{handoff_id}"


def test_the_demo_handoffs_show_similar_cases_with_their_fixes(people, app_database):
    # Contoso's escalated app crash: Jordan fixed the same kind of crash twelve days ago (3.5 h).
    jordan = people.signed_in(
        "jordan@contoso.example",
        _handoff_path(app_database, "Line-of-business app crashes on launch after .NET update"),
    )
    panel = jordan.get_by_role("region", name="Similar past cases")
    past = "Inventory app crashes at startup after the .NET Framework update"
    item = panel.get_by_role("listitem").filter(has_text=past)
    expect(item).to_be_visible()
    expect(item).to_contain_text("Fabrikam Foods · Applications")
    expect(item).to_contain_text("Fixed by Jordan Fox in 4 hours")
    expect(item).to_contain_text("What fixed it: Removed the stale assembly binding redirect")
    # Another account's cases never show: nothing of Northwind's history is offered.
    expect(panel.get_by_text("Group Policy drive maps")).to_have_count(0)

    # One click opens the past case, with its fix.
    item.get_by_role("link").click()
    jordan.wait_for_url(re.compile(r"/handoffs/[0-9a-f-]+/?$"))
    expect(jordan.get_by_role("heading", name=past, level=1)).to_be_visible()
    expect(jordan.get_by_role("status", name="How it ended")).to_contain_text("Resolved")
    expect(jordan.get_by_role("status", name="How it ended")).to_contain_text(
        "What fixed it: Removed the stale assembly binding redirect"
    )

    # Northwind's escalated file share problem: its ninety days of history hold the GPO fix.
    val = people.signed_in(
        "val@northwind.example",
        _handoff_path(app_database, "File share mapping fails for the accounting group"),
    )
    panel = val.get_by_role("region", name="Similar past cases")
    expect(panel.get_by_role("listitem").first).to_contain_text("Group Policy drive maps not applying")
    expect(panel.get_by_role("listitem").first).to_contain_text("What fixed it: Add Authenticated Users")
    expect(panel.get_by_role("listitem")).to_have_count(3)
