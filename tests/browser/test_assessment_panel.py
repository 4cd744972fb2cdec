"""The handoff screen's AI panel fills in live when the assessment commits."""

from __future__ import annotations

import os
import re
import threading
import uuid

import pytest
from playwright.sync_api import expect

from escalation_app.settings import get_settings
from tests.browser.test_flows import _card, _create_session_with_steps, _escalate
from tests.fakes import anthropic as fake_api

pytestmark = pytest.mark.browser


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


def test_assessment_appears_on_an_open_handoff_screen_without_reload(people, claude):
    release = threading.Event()
    reply = fake_api.tool_use(
        {
            "summary_prose": "The update replaced the gateway's intermediate certificate.",
            "what_we_know": ["Rollback fixes it", "Intermediate CA missing after update"],
            "likely_cause": "KB update removed the intermediate CA from the machine store",
            "suggested_steps": ["Re-import the intermediate CA via GPO", "Re-test on one laptop"],
            "confidence": "high",
        }
    )
    reply.gate = release
    claude.script(reply)

    summary = f"Certificate chain broken {uuid.uuid4().hex[:6]}"
    engineer = _create_session_with_steps(people, summary, [("Compared cert stores", "Intermediate missing")])
    _escalate(engineer, "Need PKI help.")

    senior = people.signed_in("morgan@northwind.example", "/escalations")
    _card(senior, summary).get_by_role("link").first.click()
    senior.wait_for_url(re.compile(r"/handoffs/"))
    panel = senior.get_by_role("region", name="AI assessment")
    expect(panel.get_by_text("Assessment still computing…")).to_be_visible()
    assert claude.wait_for_requests(1), "the app never asked for an assessment"
    senior.evaluate("window.__sameDocument = 'yes'")

    release.set()
    expect(panel.get_by_text("KB update removed the intermediate CA from the machine store")).to_be_visible(
        timeout=10_000
    )
    expect(panel.get_by_text("Confidence: high")).to_be_visible()
    expect(panel.get_by_text("Re-import the intermediate CA via GPO")).to_be_visible()
    assert senior.evaluate("window.__sameDocument") == "yes"

    # The senior picks it up, gets the Start here briefing, and ticks a step (saved).
    senior.get_by_role("button", name="Pick up").click()
    expect(panel.get_by_text("Start here")).to_be_visible()
    step = panel.get_by_role("checkbox").first
    step.click()
    expect(step).to_be_checked()
    senior.reload()
    expect(senior.get_by_role("region", name="AI assessment").get_by_role("checkbox").first).to_be_checked()
