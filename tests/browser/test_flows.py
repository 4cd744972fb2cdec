"""The engineer and senior screens, end to end in Chromium."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import at

pytestmark = pytest.mark.browser


def _create_session_with_steps(people, summary: str, steps: list[tuple[str, str]]):
    page = people.signed_in("alex@northwind.example", "/sessions")
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Problem summary").fill(summary)
    page.get_by_label("Domain").fill("Network")
    page.get_by_label("Client").fill("Harbor Dental")
    page.get_by_label("PSA ticket").fill("777")
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name=summary)).to_be_visible()
    for tried, result in steps:
        page.get_by_label("What I tried").fill(tried)
        page.get_by_label("Result").fill(result)
        page.get_by_role("button", name="Add step").click()
        expect(page.get_by_text(tried)).to_be_visible()
    return page


def _escalate(page, notes: str, priority: str = "high"):
    page.get_by_role("button", name="Escalate").click()
    page.get_by_label("Notes").fill(notes)
    page.get_by_label("Priority").select_option(priority)
    page.get_by_role("button", name="Send escalation").click()
    expect(page.get_by_text("Escalated — your team has been notified")).to_be_visible()
    expect(page.get_by_role("status", name="Status")).to_have_text("Escalated")


def _card(page, summary: str):
    return page.locator("article", has_text=summary)


def test_sign_in_failure_then_success_returns_to_the_requested_page(people):
    page = people.page()
    page.goto(people.url("/escalations"))
    page.wait_for_url(re.compile(r"/login/?\?next=%2Fescalations"))
    page.get_by_label("Email").fill("riley@northwind.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password")
    page.get_by_label("Password").fill("escalate-demo")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(at("/escalations"))
    expect(page.get_by_role("heading", name="Escalations")).to_be_visible()
    expect(page.get_by_text("Riley Chen")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto(people.url("/sessions"))
    page.wait_for_url(re.compile(r"/login/?\?next=%2Fsessions"))


def test_engineer_escalates_and_a_senior_picks_it_up(people):
    summary = f"DHCP scope exhausted {uuid.uuid4().hex[:6]}"
    steps = [
        ("Checked the DHCP lease table", "All 254 leases in use"),
        ("Shortened the lease time", "No change yet"),
    ]
    engineer = _create_session_with_steps(people, summary, steps)
    _escalate(engineer, "Need someone with access to the core switch.")

    senior = people.signed_in("riley@northwind.example", "/escalations")
    card = _card(senior, summary)
    expect(card).to_be_visible()
    expect(card.get_by_text("High")).to_be_visible()
    expect(card.get_by_text("Escalated")).to_be_visible()
    expect(card.get_by_text("Need someone with access to the core switch.")).to_be_visible()
    expect(card.get_by_text("Alex Kim")).to_be_visible()
    expect(card.get_by_text(re.compile(r"ago"))).to_be_visible()
    card.get_by_role("button", name="Pick up").click()

    senior.wait_for_url(re.compile(r"/handoffs/[0-9a-f-]+/?$"))
    expect(senior.get_by_role("heading", name=summary, level=1)).to_be_visible()
    steps_list = senior.get_by_role("list", name="Steps tried")
    for tried, result in steps:
        expect(steps_list.get_by_text(tried)).to_be_visible()
        expect(steps_list.get_by_text(result)).to_be_visible()
    expect(senior.get_by_text("Need someone with access to the core switch.", exact=True)).to_be_visible()
    expect(senior.get_by_role("status").filter(has_text="Claimed by")).to_contain_text("Riley Chen")
    expect(senior.get_by_role("heading", name="AI assessment")).to_be_visible()

    # The engineer's own queue never offers Pick up on their own handoff.
    engineer.goto(people.url("/escalations"))
    expect(engineer.get_by_role("heading", name="Escalations")).to_be_visible()
    expect(_card(engineer, summary)).to_have_count(0)


def test_two_seniors_pick_up_at_once_exactly_one_wins(people):
    summary = f"Exchange hybrid sync stuck {uuid.uuid4().hex[:6]}"
    engineer = _create_session_with_steps(people, summary, [("Restarted the sync service", "Still stuck")])
    _escalate(engineer, "Sync has been stuck for 3 hours.")

    riley = people.signed_in("riley@northwind.example", "/escalations")
    morgan = people.signed_in("morgan@northwind.example", "/escalations")
    for page in (riley, morgan):
        expect(_card(page, summary).get_by_role("button", name="Pick up")).to_be_enabled()
    # Both clicks fire in the pages at the same wall-clock instant; a click sent after
    # the other's claim would find the card already gone (it leaves the queue live).
    fire_at = riley.evaluate("Date.now()") + 600
    for page in (riley, morgan):
        page.evaluate(
            """([summary, at]) => setTimeout(() => {
                const card = [...document.querySelectorAll('article')]
                    .find((a) => a.getAttribute('aria-label') === summary);
                card.querySelector('button').click();
            }, at - Date.now())""",
            [summary, fire_at],
        )

    # Whoever lands on the handoff screen won; the other must be told who did.
    handoff_url = re.compile(r"/handoffs/[0-9a-f-]+/?$")
    toast = {
        p: p.get_by_text(re.compile(r"Already claimed by (Riley Chen|Morgan Lee)")) for p in (riley, morgan)
    }
    winner = loser = None
    for _ in range(150):
        for page, other in ((riley, morgan), (morgan, riley)):
            if handoff_url.search(page.url) and toast[other].count() > 0:
                winner, loser = page, other
        if winner:
            break
        riley.wait_for_timeout(100)
    assert winner is not None, (riley.url, morgan.url)
    assert not handoff_url.search(loser.url)
    winner_name = "Riley Chen" if winner is riley else "Morgan Lee"
    expect(toast[loser]).to_contain_text(f"Already claimed by {winner_name}")
    expect(winner.get_by_role("status").filter(has_text="Claimed by")).to_contain_text(winner_name)
    expect(_card(loser, summary)).to_have_count(0)


def test_viewer_sees_the_queue_without_pick_up(people):
    viewer = people.signed_in("val@northwind.example", "/escalations")
    cards = viewer.locator("article")
    expect(cards.first).to_be_visible()
    expect(_card(viewer, "File share mapping fails")).to_be_visible()
    expect(viewer.get_by_role("button", name="Pick up")).to_have_count(0)
    # Managers-only links are hidden from viewers too.
    expect(viewer.get_by_role("link", name="Users")).to_have_count(0)


def test_contoso_never_sees_northwind(people):
    contoso = people.signed_in("jordan@contoso.example", "/escalations")
    expect(_card(contoso, "Line-of-business app crashes")).to_be_visible()
    expect(_card(contoso, "File share mapping fails")).to_have_count(0)
    # A Northwind handoff's URL answers "not found" to Contoso.
    northwind = people.signed_in("riley@northwind.example", "/escalations")
    href = _card(northwind, "File share mapping fails").get_by_role("link").first.get_attribute("href")
    contoso.goto(people.url(href))
    expect(contoso.get_by_text("Handoff not found.")).to_be_visible()
    expect(contoso.get_by_text("GPO security filtering")).to_have_count(0)


def test_admin_adds_a_user_who_can_then_sign_in(people):
    admin = people.signed_in("riley@northwind.example", "/admin/users")
    email = f"new{uuid.uuid4().hex[:6]}@northwind.example"
    admin.get_by_role("button", name="Add user").click()
    dialog = admin.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Nia Brooks")
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Role").select_option("engineer")
    dialog.get_by_label("Initial password").fill("welcome-aboard")
    dialog.get_by_role("button", name="Add user").click()
    expect(admin.get_by_text("User added")).to_be_visible()
    expect(admin.get_by_text(email)).to_be_visible()

    newcomer = people.page()
    newcomer.goto(people.url("/login"))
    newcomer.get_by_label("Email").fill(email)
    newcomer.get_by_label("Password").fill("welcome-aboard")
    newcomer.get_by_role("button", name="Sign in").click()
    expect(newcomer.get_by_text("Nia Brooks")).to_be_visible()
