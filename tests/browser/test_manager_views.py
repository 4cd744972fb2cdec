"""/history and /analytics as a manager, an engineer and another account see them."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _total(page) -> int:
    expect(page.locator("tbody tr").first).to_be_visible()
    text = page.get_by_text(re.compile(r"\d+ handoffs · page")).inner_text()
    return int(text.split()[0])


def test_history_filters_live_in_the_url_and_export_matches(people):
    morgan = people.signed_in("morgan@northwind.example", "/history")
    expect(morgan.get_by_role("heading", name="Handoff history")).to_be_visible()
    expect(morgan.get_by_text(re.compile(r"\d+ handoffs · page 1 of \d+"))).to_be_visible()
    everything = _total(morgan)
    assert everything > 250  # 90 days of demo history
    expect(morgan.get_by_role("link", name="Next →")).to_be_visible()

    morgan.get_by_label("Priority").select_option("urgent")
    morgan.get_by_label("Intent").select_option("escalate")
    morgan.get_by_role("button", name="Apply filters").click()
    morgan.wait_for_url(re.compile(r"/history/?\?.*priority=urgent"))
    expect(morgan.get_by_label("Priority")).to_have_value("urgent")
    expect(morgan.get_by_text(re.compile(r"\d+ handoffs · page"))).not_to_have_text(
        re.compile(rf"^{everything} handoffs")
    )
    urgent = _total(morgan)
    assert 0 < urgent < everything
    rows = morgan.locator("tbody tr")
    expect(rows.first.get_by_text("Urgent")).to_be_visible()

    # The same URL in another browser shows the same view.
    shared = people.signed_in("riley@northwind.example", "/history")
    shared.goto(morgan.url)
    expect(shared.get_by_text(f"{urgent} handoffs · page 1")).to_be_visible()
    expect(shared.get_by_label("Priority")).to_have_value("urgent")

    with morgan.expect_download() as download:
        morgan.get_by_role("button", name="Export CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(exported) == urgent
    assert {r["priority"] for r in exported} == {"urgent"} and {r["intent"] for r in exported} == {"escalate"}

    morgan.goto(people.url("/history?from=not-a-date"))
    expect(morgan.get_by_text("From date must be a date like 2026-01-31.")).to_be_visible()


def test_analytics_for_managers_only(people):
    morgan = people.signed_in("morgan@northwind.example", "/analytics")
    expect(morgan.get_by_text("Escalations this week")).to_be_visible()
    expect(morgan.get_by_text("Escalations per day (30 days)")).to_be_visible()
    # Recharts drew the stacked bars.
    expect(morgan.locator(".recharts-bar-rectangle").first).to_be_attached()

    engineer = people.signed_in("alex@northwind.example", "/analytics")
    expect(engineer.get_by_text("Only account owners and admins can see analytics.")).to_be_visible()


def test_engineers_see_their_teams_history_and_contoso_sees_none_of_northwind(people):
    # Engineers read their team's handoffs and those they are party to (README, roles).
    alex = people.signed_in("alex@northwind.example", "/history")
    expect(alex.get_by_text(re.compile(r"\d+ handoffs · page"))).to_be_visible()
    handed_off_by = alex.locator("tbody tr td:nth-child(5)")
    expect(handed_off_by.first).to_be_visible()
    names = set(handed_off_by.all_inner_texts())
    assert "Alex Kim" in names and not names & {"Casey Diaz", "Jordan Fox"}

    jordan = people.signed_in("jordan@contoso.example", "/history")
    # Contoso's own: its open escalation and the resolved cases behind it (demo_cases).
    expect(jordan.get_by_text(re.compile(r"\d+ handoffs · page 1 of 1"))).to_be_visible()
    expect(jordan.get_by_text("Line-of-business app crashes")).to_be_visible()
    contoso_names = set(jordan.locator("tbody tr td:nth-child(5)").all_inner_texts())
    assert contoso_names <= {"Casey Diaz", "Jordan Fox"}, contoso_names
    expect(jordan.get_by_text("Alex Kim")).to_have_count(0)
