"""The bell updates live on any page; admins configure chat webhooks."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.test_flows import _create_session_with_steps, _escalate

pytestmark = pytest.mark.browser


def test_bell_counts_a_new_escalation_live_and_marks_read(people):
    sam = people.signed_in("sam@northwind.example", "/sessions")
    bell = sam.get_by_role("button", name=re.compile(r"^Notifications"))
    expect(bell).to_be_visible()
    sam.get_by_role("button", name=re.compile(r"^Notifications")).click()
    sam.get_by_role("button", name="Mark all read").click()
    sam.keyboard.press("Escape")
    expect(sam.get_by_role("button", name="Notifications")).to_be_visible()

    summary = f"Printer queue jammed {uuid.uuid4().hex[:6]}"
    engineer = _create_session_with_steps(people, summary, [("Cleared the spooler", "Jams again")])
    _escalate(engineer, "Spooler keeps crashing.")

    # Sam is on his own sessions page, not the queue: the bell still moves, without reload.
    expect(sam.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=5_000)
    sam.get_by_role("button", name="Notifications, 1 unread").click()
    item = sam.get_by_role("menuitem").filter(has_text=summary)
    expect(item).to_contain_text("New escalation")
    item.click()
    sam.wait_for_url(re.compile(r"/handoffs/"))
    expect(sam.get_by_role("heading", name=summary, level=1)).to_be_visible()
    expect(sam.get_by_role("button", name="Notifications")).to_be_visible()

    # Viewers are never notified.
    viewer = people.signed_in("val@northwind.example", "/escalations")
    expect(viewer.get_by_role("button", name="Notifications")).to_be_visible()


def test_admin_saves_webhooks_and_bad_urls_are_refused(people):
    admin = people.signed_in("riley@northwind.example", "/admin/integrations")
    slack = admin.get_by_label("Slack webhook URL")
    slack.fill("http://hooks.slack.com/services/T000/B000/XXXX")
    admin.get_by_role("button", name="Save webhooks").click()
    expect(admin.get_by_text(re.compile(r"https", re.I)).last).to_be_visible()
    admin.reload()
    expect(admin.get_by_label("Slack webhook URL")).to_have_value("")

    admin.get_by_label("Slack webhook URL").fill("https://hooks.slack.com/services/T000/B000/XXXX")
    admin.get_by_role("button", name="Save webhooks").click()
    expect(admin.get_by_text("Integrations saved")).to_be_visible()
    admin.reload()
    expect(admin.get_by_label("Slack webhook URL")).to_have_value(
        "https://hooks.slack.com/services/T000/B000/XXXX"
    )

    # Engineers cannot see or change them.
    engineer = people.signed_in("sam@northwind.example", "/admin/integrations")
    expect(engineer.get_by_text("Only account owners and admins can manage integrations.")).to_be_visible()
    expect(engineer.get_by_label("Slack webhook URL")).to_have_count(0)
