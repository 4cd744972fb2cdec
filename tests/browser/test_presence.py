"""Who is looking, in two browsers: "Riley Chen is viewing" appears and clears without reload."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsers
from tests.browser.test_flows import _card, _create_session_with_steps, _escalate
from tests.browser.test_live import _mark_no_reload, _still_same_document
from tests.browser.test_multiworker import _worker_connections, multiworker_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

# "Within a few seconds" of leaving: the server notices a closed socket within a second.
CLEARS_WITHIN_MS = 5_000


def _viewing(page, name: str):
    return page.get_by_text(f"{name} is viewing", exact=True)


def _seconds_until_gone(locator) -> float:
    started = time.monotonic()
    expect(locator).to_have_count(0, timeout=CLEARS_WITHIN_MS)
    return time.monotonic() - started


def test_viewing_shows_on_the_card_and_the_screen_and_clears_after_leaving(people):
    summary = f"Printer queue stuck on the 2nd floor {uuid.uuid4().hex[:6]}"
    engineer = _create_session_with_steps(people, summary, [("Restarted the spooler", "Jobs stay queued")])
    _escalate(engineer, "Reception cannot print any labels.")

    # Morgan: the queue in one tab and the handoff screen in another.
    morgan_queue = people.signed_in("morgan@northwind.example", "/escalations")
    card = _card(morgan_queue, summary)
    expect(card).to_be_visible()
    href = card.get_by_role("link").first.get_attribute("href")
    assert href and href.startswith("/handoffs/")
    morgan_screen = morgan_queue.context.new_page()
    people.pages.append(morgan_screen)
    morgan_screen.goto(people.url(href))
    expect(morgan_screen.get_by_role("heading", name=summary, level=1)).to_be_visible()
    expect(_viewing(morgan_screen, "Riley Chen")).to_have_count(0)
    expect(_viewing(card, "Riley Chen")).to_have_count(0)
    for page in (morgan_queue, morgan_screen):
        _mark_no_reload(page)

    # Riley opens the handoff from her own queue.
    riley = people.signed_in("riley@northwind.example", "/escalations")
    _card(riley, summary).get_by_role("link").first.click()
    riley.wait_for_url(re.compile(r"/handoffs/"))
    expect(riley.get_by_role("heading", name=summary, level=1)).to_be_visible()

    # Morgan's card and screen name Riley without a reload; Riley's screen names Morgan, not herself.
    expect(_viewing(card, "Riley Chen")).to_be_visible(timeout=5_000)
    expect(_viewing(morgan_screen, "Riley Chen")).to_be_visible(timeout=5_000)
    expect(_viewing(riley, "Morgan Lee")).to_be_visible()
    expect(_viewing(riley, "Riley Chen")).to_have_count(0)
    expect(_viewing(morgan_screen, "Morgan Lee")).to_have_count(0)
    assert _still_same_document(morgan_queue) and _still_same_document(morgan_screen)

    # Riley goes back to the queue in the app: gone from Morgan's screen and card.
    riley.get_by_role("link", name="Escalations", exact=True).click()
    riley.wait_for_url(re.compile(r"/escalations"))
    left_after = _seconds_until_gone(_viewing(morgan_screen, "Riley Chen"))
    expect(_viewing(card, "Riley Chen")).to_have_count(0)

    # She opens it again; Morgan picks it up from the queue all the same (the claim decides).
    _card(riley, summary).get_by_role("link").first.click()
    riley.wait_for_url(re.compile(r"/handoffs/"))
    expect(_viewing(card, "Riley Chen")).to_be_visible(timeout=5_000)
    card.get_by_role("button", name="Pick up").click()
    morgan_queue.wait_for_url(re.compile(r"/handoffs/"))
    expect(morgan_queue.get_by_role("status").filter(has_text="Claimed by")).to_contain_text("Morgan Lee")
    expect(riley.get_by_role("status").filter(has_text="Claimed by")).to_contain_text(
        "Morgan Lee", timeout=5_000
    )
    # On the handoff screen now, Morgan still sees Riley there, and Riley sees Morgan.
    expect(_viewing(morgan_queue, "Riley Chen")).to_be_visible(timeout=5_000)
    expect(_viewing(riley, "Morgan Lee")).to_be_visible()

    # Riley closes her tab: gone from both of Morgan's screens within a few seconds.
    riley.close()
    closed_after = _seconds_until_gone(_viewing(morgan_screen, "Riley Chen"))
    expect(_viewing(morgan_queue, "Riley Chen")).to_have_count(0)
    assert _still_same_document(morgan_screen)
    print(
        f"\nwho-is-viewing cleared {left_after:.2f}s after navigating away, {closed_after:.2f}s after closing"
    )


def test_other_accounts_and_viewers_never_show_as_viewing(people):
    summary = f"Shared mailbox missing in Outlook {uuid.uuid4().hex[:6]}"
    engineer = _create_session_with_steps(people, summary, [("Re-added the mailbox", "Still missing")])
    _escalate(engineer, "Front desk cannot see the bookings mailbox.")
    riley = people.signed_in("riley@northwind.example", "/escalations")
    _card(riley, summary).get_by_role("link").first.click()
    riley.wait_for_url(re.compile(r"/handoffs/"))
    expect(riley.get_by_role("heading", name=summary, level=1)).to_be_visible()
    handoff_path = "/handoffs/" + riley.url.rstrip("/").rsplit("/", 1)[-1]

    # Val (viewer role) reads the handoff; Jordan (another account) is told it is not found.
    val = people.signed_in("val@northwind.example", handoff_path)
    expect(val.get_by_role("heading", name=summary, level=1)).to_be_visible()
    jordan = people.signed_in("jordan@contoso.example", handoff_path)
    expect(jordan.get_by_text("Handoff not found.")).to_be_visible()
    # A positive control: Morgan on the same screen does show up on Riley's.
    morgan = people.signed_in("morgan@northwind.example", handoff_path)
    expect(_viewing(riley, "Morgan Lee")).to_be_visible(timeout=5_000)
    expect(_viewing(riley, "Val Ortiz")).to_have_count(0)
    expect(_viewing(riley, "Jordan Fox")).to_have_count(0)
    expect(_viewing(morgan, "Riley Chen")).to_be_visible()
    # The viewer's page is read-only and shows nobody (it gets no live feed).
    expect(val.get_by_text(re.compile(r" is viewing$"))).to_have_count(0)


def test_viewing_crosses_workers(browser, multiworker_url, request):  # noqa: F811
    """Two backend workers with Redis: tabs on either see Riley, and see her go."""
    server = multiworker_url
    url, port, server_pid = server.url, server.port, server.pid
    people = Browsers(browser, url)
    failed = True
    try:
        summary = f"Cross-worker viewing {uuid.uuid4().hex[:6]}"
        # The first sign-in meets workers that have just started: give it longer than usual.
        engineer = people.signed_in("alex@northwind.example", "/sessions", timeout=20_000)
        people.pages.remove(engineer)
        engineer.close()
        engineer = _create_session_with_steps(people, summary, [("Checked both workers", "Both up")])
        _escalate(engineer, "Seen from everywhere?")
        queue = people.signed_in("morgan@northwind.example", "/escalations")
        expect(_card(queue, summary)).to_be_visible()
        href = _card(queue, summary).get_by_role("link").first.get_attribute("href")
        assert href
        tabs = [queue]
        for path in ["/escalations", href, href, "/escalations", href]:
            page = queue.context.new_page()
            people.pages.append(page)
            page.goto(people.url(path))
            tabs.append(page)
        for page in tabs:
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()

        riley = people.signed_in("riley@northwind.example", href)
        expect(riley.get_by_role("heading", name=summary, level=1)).to_be_visible()
        per_worker = _worker_connections(port, server_pid)
        assert len(per_worker) >= 2, f"all tabs landed on one worker: {per_worker}"
        for page in tabs:
            expect(_viewing(page, "Riley Chen")).to_be_visible(timeout=5_000)
        expect(_viewing(riley, "Morgan Lee")).to_be_visible()

        riley.close()
        people.pages.remove(riley)
        for page in tabs:
            expect(_viewing(page, "Riley Chen")).to_have_count(0, timeout=CLEARS_WITHIN_MS)
        failed = False
    finally:
        people.close(request.node.name, failed=failed)
