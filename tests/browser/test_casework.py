"""After the pick-up, end to end in Chromium: the senior works the case to its end.

Alex escalates → Riley picks it up, adds a step, hands it back with guidance → Alex
sees the guidance and escalates again → Morgan picks it up and resolves it with the
fix → Alex is notified, and the session history shows the whole chain. And the race
loser's queue highlights the best next card, which one click picks up.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.test_flows import _card, _create_session_with_steps, _escalate

pytestmark = pytest.mark.browser

HANDOFF_URL = re.compile(r"/handoffs/[0-9a-f-]+/?$")


@pytest.fixture(autouse=True)
def patient_expectations():
    """These stories make many round trips; on a loaded machine one may take over the 5 s default."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


def _pick_up(people, email: str, summary: str):
    page = people.signed_in(email, "/escalations")
    _card(page, summary).get_by_role("button", name="Pick up").click()
    page.wait_for_url(HANDOFF_URL)
    expect(page.get_by_role("heading", name=summary, level=1)).to_be_visible()
    return page


def test_the_case_goes_round_the_desk_to_its_fix(people):
    summary = f"VPN drops every 20 minutes {uuid.uuid4().hex[:6]}"
    alex = _create_session_with_steps(people, summary, [("Updated the VPN client", "Still drops")])
    session_url = alex.url
    _escalate(alex, "Drops line up with the DHCP renewals?")

    # Riley picks it up: the handoff screen is Riley's working view.
    riley = _pick_up(people, "riley@northwind.example", summary)
    expect(riley.get_by_text("You are working on this for")).to_be_visible()
    riley.get_by_label("What I tried").fill("Pinned the MTU to 1400")
    riley.get_by_label("Result").fill("Drops every 40 minutes now")
    riley.get_by_role("button", name="Add step").click()
    steps = riley.get_by_role("list", name="Steps tried")
    expect(steps.get_by_text("Pinned the MTU to 1400")).to_be_visible()

    riley.get_by_role("button", name="Hand back to Alex Kim").click()
    dialog = riley.get_by_role("dialog")
    dialog.get_by_label("Guidance").fill("Check the firewall's UDP idle timeout; it is 20 minutes.")
    dialog.get_by_role("button", name="Hand back", exact=True).click()
    expect(riley.get_by_text("Handed back to Alex Kim").first).to_be_visible()
    expect(riley.get_by_role("status", name="How it ended")).to_contain_text("Handed back to Alex Kim")
    expect(riley.get_by_text("You are working on this for")).to_have_count(0)

    # Alex sees the guidance at the top of the session, and escalates again.
    alex.goto(session_url)
    guidance = alex.get_by_role("note", name="Guidance")
    expect(guidance).to_contain_text("Riley Chen")
    expect(guidance).to_contain_text("Check the firewall's UDP idle timeout; it is 20 minutes.")
    expect(alex.get_by_role("status", name="Status")).to_have_text("Active")
    expect(alex.get_by_role("list", name="Steps tried").get_by_text("Pinned the MTU to 1400")).to_be_visible()
    _escalate(alex, "Timeout raised to 60 minutes, drops continue: needs the firewall vendor.")
    expect(alex.get_by_role("note", name="Guidance")).to_have_count(0)

    # Morgan picks up the new escalation and resolves it with the fix.
    morgan = _pick_up(people, "morgan@northwind.example", summary)
    expect(
        morgan.get_by_role("list", name="Steps tried").get_by_text("Pinned the MTU to 1400")
    ).to_be_visible()
    morgan.get_by_role("button", name="Resolve", exact=True).click()
    dialog = morgan.get_by_role("dialog")
    dialog.get_by_label("What fixed it").fill("Disabled SIP ALG on the firewall; the tunnel keeps up.")
    dialog.get_by_label("Root cause").select_option("configuration")
    dialog.get_by_role("button", name="Resolve", exact=True).click()
    ended = morgan.get_by_role("status", name="How it ended")
    expect(ended).to_contain_text("Resolved")
    expect(ended).to_contain_text("Disabled SIP ALG on the firewall")
    expect(ended).to_contain_text("Configuration")

    # Alex is told, live, on the page he has open.
    bell = alex.get_by_role("button", name=re.compile(r"^Notifications, \d+ unread"))
    expect(bell).to_be_visible(timeout=10_000)
    bell.click()
    expect(alex.get_by_role("menuitem").filter(has_text=f"Resolved: {summary}")).to_be_visible()
    alex.keyboard.press("Escape")

    # The session history tells the whole story.
    alex.goto(session_url.rstrip("/") + "/history")
    expect(alex.get_by_label("Chain")).to_have_text("Alex Kim → Riley Chen → Alex Kim → Morgan Lee")
    timeline = alex.get_by_role("list", name="Timeline")
    expect(timeline.get_by_text("Riley Chen handed it back to Alex Kim")).to_be_visible()
    expect(timeline.get_by_text("Morgan Lee resolved it (Configuration)")).to_be_visible()
    expect(alex.get_by_label("Resolution")).to_contain_text("Disabled SIP ALG on the firewall")
    alex.goto(session_url)
    expect(alex.get_by_role("status", name="Status")).to_have_text("Resolved")


def test_the_race_loser_is_pointed_at_the_best_next_card(people):
    tag = uuid.uuid4().hex[:6]
    contested = f"Printer queue jammed {tag}"
    urgent = f"Domain controller unreachable {tag}"
    alex = _create_session_with_steps(people, contested, [("Restarted the spooler", "Jammed again")])
    _escalate(alex, "Whole office cannot print.", priority="normal")
    alex = _create_session_with_steps(people, urgent, [("Pinged the DC", "No answer")])
    _escalate(alex, "Nobody can sign in.", priority="urgent")

    riley = people.signed_in("riley@northwind.example", "/escalations")
    sam = people.signed_in("sam@northwind.example", "/escalations")
    for page in (riley, sam):
        expect(_card(page, contested).get_by_role("button", name="Pick up")).to_be_enabled()
    # Both clicks fire at the same wall-clock instant (as in the pick-up race test).
    fire_at = riley.evaluate("Date.now()") + 600
    for page in (riley, sam):
        page.evaluate(
            """([summary, at]) => setTimeout(() => {
                [...document.querySelectorAll('article')]
                    .find((a) => a.getAttribute('aria-label') === summary)
                    .querySelector('button').click();
            }, at - Date.now())""",
            [contested, fire_at],
        )
    toast = {p: p.get_by_text(re.compile(r"Already claimed by (Riley Chen|Sam Patel)")) for p in (riley, sam)}
    loser = None
    for _ in range(150):
        for page, other in ((riley, sam), (sam, riley)):
            if HANDOFF_URL.search(page.url) and toast[other].count() > 0:
                loser = other
        if loser:
            break
        riley.wait_for_timeout(100)
    assert loser is not None, (riley.url, sam.url)
    sam = loser

    best = sam.locator("article.best-next")
    expect(best).to_have_count(1)
    expect(best.get_by_text("Best next for you")).to_be_visible()
    expect(best).not_to_have_attribute("aria-label", contested)
    # Highest priority first: an urgent card is the one (ours, unless an older urgent waits).
    expect(best.get_by_text("Urgent")).to_be_visible()
    best.get_by_role("button", name="Pick up").click()
    sam.wait_for_url(HANDOFF_URL)
    expect(sam.get_by_text("You are working on this for")).to_be_visible()


def test_a_release_puts_the_card_back_in_open_queues_live(people):
    summary = f"Teams calls drop at 30 minutes {uuid.uuid4().hex[:6]}"
    alex = _create_session_with_steps(people, summary, [("Cleared the Teams cache", "Still drops")])
    _escalate(alex, "Happens to the whole finance team.")
    sam = people.signed_in("sam@northwind.example", "/escalations")
    expect(_card(sam, summary)).to_be_visible()

    riley = _pick_up(people, "riley@northwind.example", summary)
    expect(_card(sam, summary)).to_have_count(0)  # taken out of Sam's queue, live
    riley.get_by_role("button", name="Release to queue").click()
    dialog = riley.get_by_role("dialog")
    dialog.get_by_label("Reason").fill("Called away to a site visit")
    dialog.get_by_role("button", name="Release", exact=True).click()
    expect(riley.get_by_text("Released — it is back in the queue")).to_be_visible()
    expect(riley.get_by_text("Waiting for a senior")).to_be_visible()

    # Back in Sam's open queue without a reload; Sam picks it up and sends it onward.
    card = _card(sam, summary)
    expect(card).to_be_visible(timeout=10_000)
    card.get_by_role("button", name="Pick up").click()
    sam.wait_for_url(HANDOFF_URL)
    sam.get_by_role("button", name="Escalate onward").click()
    dialog = sam.get_by_role("dialog")
    dialog.get_by_label("Notes").fill("Needs someone with the Teams admin role.")
    dialog.get_by_role("button", name="Send escalation").click()
    expect(sam.get_by_text("Escalated onward — your team has been notified")).to_be_visible()

    # Alex, the session's owner, sees the onward card but is never offered its Pick up.
    alex.goto(people.url("/escalations"))
    onward = _card(alex, summary)
    expect(onward).to_be_visible()
    expect(onward.get_by_text("Sam Patel")).to_be_visible()
    expect(onward.get_by_role("button", name="Pick up")).to_have_count(0)
