"""The desk learns: the Escalate dialog's completeness check and "What will the senior
ask?", and the calibration table and patterns on /analytics, in Chromium."""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from escalation_app.domain.db import session_scope
from escalation_app.domain.models import AssessmentGrade, SessionHandoff, SupportSession
from escalation_app.settings import get_settings
from tests.browser.test_flows import _card, _create_session_with_steps, _escalate
from tests.fakes import anthropic as fake_api

pytestmark = pytest.mark.browser

NOTES = "The relay rejects every outbound message since the firewall swap this morning."


@pytest.fixture
def claude(app_url):
    """The in-process app talks to a local fake of the Messages API for this test."""
    with fake_api.running_fake() as fake:
        saved = {k: os.environ.get(k) for k in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
        os.environ["ANTHROPIC_API_KEY"] = "sk-ant-test"
        os.environ["ANTHROPIC_BASE_URL"] = fake.base_url
        get_settings.cache_clear()
        try:
            yield fake
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            get_settings.cache_clear()


def _handoff_of(summary: str) -> SessionHandoff:
    with session_scope() as db:
        return db.exec(
            select(SessionHandoff)
            .join(SupportSession, SupportSession.id == SessionHandoff.session_id)
            .where(SupportSession.problem_summary == summary)
        ).one()


def test_the_escalate_dialog_hints_while_typing_and_sends_with_items_missing(people):
    summary = f"Mail relay refuses outbound {uuid.uuid4().hex[:6]}"
    page = _create_session_with_steps(people, summary, [])
    page.get_by_role("button", name="Escalate").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    check = dialog.get_by_role("status", name="Completeness check")
    expect(check).to_contain_text("3 to add")
    expect(check.get_by_text("Log what you tried first")).to_be_visible()
    expect(check.get_by_text("Say what the customer sees")).to_be_visible()
    expect(check.get_by_text("Say what you need help with")).to_be_visible()
    # The session names its client and ticket: that item is already there.
    expect(check.get_by_text("The session names no client")).to_have_count(0)
    # No API key: no "What will the senior ask?".
    expect(dialog.get_by_role("button", name="What will the senior ask?")).to_have_count(0)

    dialog.get_by_label("Notes").press_sequentially(NOTES[:30], delay=5)
    dialog.get_by_label("Notes").press_sequentially(NOTES[30:], delay=5)
    expect(check.get_by_text("Say what you need help with")).to_have_count(0)
    dialog.get_by_label("What the customer sees").fill("Bounce 550 5.7.1 relaying denied")
    expect(check.get_by_text("Say what the customer sees")).to_have_count(0)
    expect(check).to_contain_text("1 to add")
    # The typed text stays as typed (the areas are never re-rendered from the server).
    expect(dialog.get_by_label("Notes")).to_have_value(NOTES)

    # Steps are still missing: a hint, never a block.
    dialog.get_by_role("button", name="Send escalation").click()
    expect(page.get_by_text("Escalated — your team has been notified")).to_be_visible()
    handoff = _handoff_of(summary)
    assert handoff.completeness_missing == 1
    assert handoff.snapshot["customer_sees"] == "Bounce 550 5.7.1 relaying denied"


def test_what_will_the_senior_ask_shows_questions_and_never_holds_send(people, claude):
    summary = f"VPN drops at home {uuid.uuid4().hex[:6]}"
    page = _create_session_with_steps(people, summary, [("Updated the VPN client", "Still drops")])
    page.get_by_role("button", name="Escalate").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Notes").fill(NOTES)
    # Routed by tool: an assessment job running meanwhile cannot take these replies.
    claude.script_tool(
        "record_questions",
        fake_api.questions(["Which ISP are the affected users on?", "Does a hotspot help?"]),
    )
    dialog.get_by_role("button", name="What will the senior ask?").click()
    asked = dialog.get_by_role("list", name="What the senior will ask")
    expect(asked).to_contain_text("Which ISP are the affected users on?")
    expect(asked).to_contain_text("Does a hotspot help?")
    assert claude.requests_for("record_questions")[0].body["model"] == get_settings().anthropic_fast_model

    # A slow answer times out after 3 s: the hint simply does not appear.
    ask = dialog.get_by_role("button", name="What will the senior ask?")
    claude.script_tool("record_questions", fake_api.questions(["Too late"], delay=8))
    started = time.monotonic()
    ask.click()
    expect(ask).to_be_disabled()
    expect(ask).to_be_enabled(timeout=7_000)
    assert 2.5 < time.monotonic() - started < 6
    expect(asked).to_have_count(0)
    expect(dialog.get_by_text("Too late")).to_have_count(0)

    # Asked again, slow again: Send goes through at once, without waiting for it.
    claude.script_tool("record_questions", fake_api.questions(["Still too late"], delay=8))
    ask.click()
    _wait_for_questions_requests(claude, 3)
    started = time.monotonic()
    dialog.get_by_role("button", name="Send escalation").click()
    expect(page.get_by_text("Escalated — your team has been notified")).to_be_visible(timeout=3_000)
    assert time.monotonic() - started < 3


def _wait_for_questions_requests(claude, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(claude.requests_for("record_questions")) < count and time.monotonic() < deadline:
        claude.wait_for_requests(len(claude.requests) + 1, timeout=0.5)
    assert len(claude.requests_for("record_questions")) == count


def test_analytics_shows_calibration_and_patterns_from_the_demo_history(people):
    morgan = people.signed_in("morgan@northwind.example", "/analytics")
    expect(morgan.get_by_role("heading", name="What the desk learned")).to_be_visible()
    human = morgan.get_by_role("group", name="Calibration by the resolvers").get_by_role("table")
    for confidence in ("Low", "Medium", "High", "All"):
        expect(human.get_by_role("rowheader", name=confidence)).to_be_visible()
    accuracy = human.locator("tbody tr").last.locator("td").last
    expect(accuracy).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
    ai = morgan.get_by_role("group", name="Calibration by AI grading").get_by_role("table")
    expect(ai.locator("tbody tr")).to_have_count(4)

    engineers = morgan.get_by_role("group", name="Patterns per engineer").get_by_role("table")
    expect(engineers.get_by_role("rowheader", name="Taylor Brooks")).to_be_visible()
    expect(engineers.locator("tbody tr").first.locator("td").nth(1)).to_have_text(re.compile(r"^\d+ \(\d"))

    recurring = morgan.get_by_role("region", name="Recurring problems")
    expect(recurring.get_by_text("Harbor Dental").first).to_be_visible()
    link = recurring.get_by_role("link").first
    expect(link).to_have_attribute("href", re.compile(r"/sessions/\d+/history"))
    link.click()
    morgan.wait_for_url(re.compile(r"/sessions/\d+/history/?$"))
    expect(morgan.get_by_role("heading", name="Handoff history")).to_be_visible()


def _grade_of(summary: str) -> AssessmentGrade | None:
    with session_scope() as db:
        return db.exec(
            select(AssessmentGrade)
            .join(SupportSession, SupportSession.id == AssessmentGrade.session_id)
            .where(SupportSession.problem_summary == summary)
        ).first()


def test_the_resolver_grades_the_likely_cause_and_claude_grades_it_too(people, claude):
    claude.script_tool(
        "record_assessment",
        fake_api.tool_use(
            {
                "summary_prose": "Tunnel drops on residential links.",
                "what_we_know": ["Hotspot is stable"],
                "likely_cause": "An MTU problem on the ISP's links",
                "suggested_steps": ["Lower the tunnel MTU"],
                "confidence": "high",
            }
        ),
    )
    claude.script_tool("record_grade", fake_api.grade("partly", "The fix was the MTU, on the firewall side."))
    summary = f"VPN tunnel flaps {uuid.uuid4().hex[:6]}"
    alex = _create_session_with_steps(people, summary, [("Updated the VPN client", "Still drops")])
    _escalate(alex, "Drops only for home users on one ISP.")

    riley = people.signed_in("riley@northwind.example", "/escalations")
    _card(riley, summary).get_by_role("button", name="Pick up").click()
    riley.wait_for_url(re.compile(r"/handoffs/[0-9a-f-]+/?$"))
    expect(riley.get_by_text("An MTU problem on the ISP's links").first).to_be_visible(timeout=15_000)
    riley.reload()  # the assessment came in after the pick-up: the dialog reads it at load
    riley.get_by_role("button", name="Resolve", exact=True).click()
    dialog = riley.get_by_role("dialog")
    question = dialog.get_by_role("group", name="Was the AI's likely cause right?")
    expect(question).to_contain_text("An MTU problem on the ISP's links")
    expect(question).to_contain_text("high confidence")
    expect(question.get_by_label("Skip")).to_be_checked()
    question.get_by_label("Partly").check()
    dialog.get_by_label("What fixed it").fill("Lowered the MTU to 1380 on the firewall tunnel.")
    dialog.get_by_label("Root cause").select_option("network")
    dialog.get_by_role("button", name="Resolve", exact=True).click()
    expect(riley.get_by_role("status", name="How it ended")).to_contain_text("Resolved")

    grade = _grade_of(summary)
    assert grade is not None and (grade.human_verdict, grade.confidence) == ("partly", "high")
    # Claude's grading runs after the commit, as an outbox job.
    deadline = time.monotonic() + 20
    while (grade is None or grade.ai_status == "pending") and time.monotonic() < deadline:
        claude.wait_for_requests(len(claude.requests) + 1, timeout=0.5)
        grade = _grade_of(summary)
    assert (grade.ai_status, grade.ai_verdict) == ("ready", "partly")
    [request] = claude.requests_for("record_grade")
    assert "Lowered the MTU to 1380" in request.body["messages"][0]["content"]
