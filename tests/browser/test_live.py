"""Live arrivals: cards appear and leave without reload; viewers and other accounts get nothing."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.test_flows import _card, _create_session_with_steps, _escalate

pytestmark = pytest.mark.browser


def _mark_no_reload(page):
    """A marker that a reload or navigation would wipe."""
    page.evaluate("window.__sameDocument = 'yes'")


def _still_same_document(page) -> bool:
    return page.evaluate("window.__sameDocument") == "yes"


def _record_frames(page) -> list[str]:
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    return frames


def test_card_arrives_and_leaves_live_and_only_where_it_should(people):
    summary = f"RDS gateway refuses logons {uuid.uuid4().hex[:6]}"
    # Frames are recorded from the first byte, before sign-in.
    viewer = people.page()
    viewer_frames = _record_frames(viewer)
    contoso = people.page()
    contoso_frames = _record_frames(contoso)
    for page, email in ((viewer, "val@northwind.example"), (contoso, "jordan@contoso.example")):
        page.goto(people.url("/escalations"))
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("escalate-demo")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Escalations")).to_be_visible()

    riley = people.signed_in("riley@northwind.example", "/escalations")
    morgan = people.signed_in("morgan@northwind.example", "/escalations")
    for page in (riley, morgan, viewer, contoso):
        expect(page.locator("article").first).to_be_visible()
        _mark_no_reload(page)

    engineer = _create_session_with_steps(
        people, summary, [("Checked the RD Gateway event log", "Event 312")]
    )
    seen_before = {"viewer": len(viewer_frames), "contoso": len(contoso_frames)}
    _escalate(engineer, "Whole office locked out of the terminal server.")

    for page in (riley, morgan):
        expect(_card(page, summary)).to_be_visible(timeout=5_000)
        assert _still_same_document(page)
    # The newest card is at the top.
    expect(riley.locator("article").first).to_have_attribute("aria-label", summary)

    _card(riley, summary).get_by_role("button", name="Pick up").click()
    riley.wait_for_url(re.compile(r"/handoffs/"))
    expect(_card(morgan, summary)).to_have_count(0, timeout=5_000)
    assert _still_same_document(morgan)

    # Viewers and other accounts: nothing on the page and nothing on the wire.
    viewer.wait_for_timeout(1_500)
    expect(_card(viewer, summary)).to_have_count(0)
    expect(_card(contoso, summary)).to_have_count(0)
    handoff_id = riley.url.rstrip("/").rsplit("/", 1)[-1]
    for who, frames in (("viewer", viewer_frames), ("contoso", contoso_frames)):
        assert frames, "the tab never talked to the server"
        wire = "\n".join(frames)
        assert summary not in wire
        assert handoff_id not in wire
        # Nothing about Northwind's arrival or claim reached them: no push at all.
        later = "\n".join(frames[seen_before[who] :])
        assert "cards_rx_state_" not in later, who
        assert "live_tick_rx_state_" not in later, who
    # The viewer follows no room: its bell and handoff ticks never move.
    assert set(re.findall(r'"live_tick_rx_state_":(\d+)', "\n".join(viewer_frames))) <= {"0"}


def test_claimed_elsewhere_switches_an_open_handoff_screen(people):
    summary = f"Backup job hangs at 99% {uuid.uuid4().hex[:6]}"
    engineer = _create_session_with_steps(people, summary, [("Restarted the backup agent", "Hangs again")])
    _escalate(engineer, "Nightly backups have failed twice.")

    morgan = people.signed_in("morgan@northwind.example", "/escalations")
    _card(morgan, summary).get_by_role("link").first.click()
    morgan.wait_for_url(re.compile(r"/handoffs/"))
    expect(morgan.get_by_role("heading", name=summary, level=1)).to_be_visible()
    expect(morgan.get_by_role("button", name="Pick up")).to_be_visible()
    _mark_no_reload(morgan)

    riley = people.signed_in("riley@northwind.example", "/escalations")
    _card(riley, summary).get_by_role("button", name="Pick up").click()
    riley.wait_for_url(re.compile(r"/handoffs/"))

    expect(morgan.get_by_role("status").filter(has_text="Claimed by")).to_contain_text(
        "Riley Chen", timeout=5_000
    )
    expect(morgan.get_by_role("button", name="Pick up")).to_have_count(0)
    assert _still_same_document(morgan)


def test_queue_catches_up_after_the_connection_drops(people):
    summary = f"SharePoint sync conflicts {uuid.uuid4().hex[:6]}"
    senior = people.signed_in("sam@northwind.example", "/escalations")
    expect(senior.locator("article").first).to_be_visible()
    senior.context.set_offline(True)
    senior.wait_for_timeout(500)

    engineer = _create_session_with_steps(
        people, summary, [("Reset the OneDrive client", "Conflicts return")]
    )
    _escalate(engineer, "Files keep forking into -conflict copies.")
    senior.wait_for_timeout(1_000)
    expect(_card(senior, summary)).to_have_count(0)

    senior.context.set_offline(False)
    # Reflex reconnects on its own (and on focus/visibility); the queue re-reads the database.
    senior.evaluate(
        "window.dispatchEvent(new Event('focus')); document.dispatchEvent(new Event('visibilitychange'))"
    )
    expect(_card(senior, summary)).to_have_count(1, timeout=15_000)


def test_background_tab_title_counts_new_escalations(people):
    summary = f"Teams calls drop after 60s {uuid.uuid4().hex[:6]}"
    senior = people.signed_in("morgan@northwind.example", "/escalations")
    expect(senior.locator("article").first).to_be_visible()
    title = senior.title()
    # Pretend the tab went to the background.
    senior.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        "document.hasFocus = () => false;"
    )
    engineer = _create_session_with_steps(people, summary, [("Checked the firewall UDP timeout", "30s")])
    _escalate(engineer, "Calls drop exactly at one minute.")
    expect(_card(senior, summary)).to_be_visible()
    expect(senior).to_have_title("(1) New escalation — Escalation Desk", timeout=3_000)
    # Back in focus: the title returns to normal.
    senior.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        "document.hasFocus = () => true; window.dispatchEvent(new Event('focus'));"
    )
    expect(senior).to_have_title(title)
