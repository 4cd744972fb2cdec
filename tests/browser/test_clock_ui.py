"""The escalation clock in the browser: a 1-minute target set in /admin/policy, the card's
clock ticking to red without reload, and the level-2 person's bell arriving live.

Time is driven, not waited for: the senior's browser clock is set by Playwright
(`page.clock.set_fixed_time`: only `Date` moves, the page's timers keep running), and
the server's due level-2 timer is made due now (`outbox.release`), as if that minute
had passed there too.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, update
from sqlmodel import col, select

from escalation_app.domain import clock, outbox
from escalation_app.domain.db import session_scope
from escalation_app.domain.models import (
    Account,
    EscalationPolicy,
    Notification,
    SessionHandoff,
    SupportSession,
    User,
)
from escalation_app.domain.types import utcnow
from tests.browser.test_flows import _card, _create_session_with_steps, _escalate

pytestmark = pytest.mark.browser


def _northwind_policy_cleared() -> None:
    with session_scope() as db:
        account = db.exec(select(Account).where(Account.name == "Northwind MSP")).one()
        db.exec(delete(EscalationPolicy).where(col(EscalationPolicy.account_id) == account.id))
        db.commit()


def _mark_read(email: str) -> None:
    with session_scope() as db:
        user = db.exec(select(User).where(User.email == email)).one()
        db.exec(
            update(Notification)
            .where(col(Notification.user_id) == user.id, col(Notification.read_at).is_(None))
            .values(read_at=utcnow())
        )
        db.commit()


def _handoff_of(summary: str) -> SessionHandoff:
    with session_scope() as db:
        return db.exec(
            select(SessionHandoff)
            .join(SupportSession, col(SupportSession.id) == SessionHandoff.session_id)
            .where(SupportSession.problem_summary == summary)
        ).one()


def _release_level(handoff: SessionHandoff, level: int) -> None:
    """Make a level's timer due now (a no-op if its real minute has passed already)."""
    with session_scope() as db:
        outbox.release(db, clock.level_key(handoff.id, level))
        db.commit()


def test_a_one_minute_target_turns_red_and_re_escalates_to_level_2_live(people):
    try:
        # An admin sets urgent escalations to be picked up within a minute.
        admin = people.signed_in("riley@northwind.example", "/admin/policy")
        urgent = admin.get_by_label("Urgent")
        expect(urgent).to_have_value("5")
        urgent.fill("1")
        admin.get_by_role("button", name="Save policy").click()
        expect(admin.get_by_text("Escalation policy saved; it applies to new escalations")).to_be_visible()

        # Morgan (owner, level 2 by default) watches the queue with nothing unread.
        _mark_read("morgan@northwind.example")
        morgan = people.signed_in("morgan@northwind.example", "/escalations")
        expect(morgan.get_by_role("button", name="Notifications", exact=True)).to_be_visible()

        summary = f"Core switch flapping {uuid.uuid4().hex[:6]}"
        engineer = _create_session_with_steps(people, summary, [("Checked the uplink", "CRC errors")])
        _escalate(engineer, "Whole office offline.", priority="urgent")
        handoff = _handoff_of(summary)
        assert handoff.response_due_at == handoff.created_at + timedelta(minutes=1)
        # The escalation's own bell reaches Morgan; read it, so the next one stands out.
        unread = re.compile(r"^Notifications, \d+ unread$")
        expect(morgan.get_by_role("button", name=unread)).to_be_visible()
        morgan.get_by_role("button", name=unread).click()
        morgan.get_by_role("button", name="Mark all read").click()
        morgan.keyboard.press("Escape")
        expect(morgan.get_by_role("button", name="Notifications", exact=True)).to_be_visible()

        card = _card(morgan, summary)
        ticking = card.locator(".response-clock")
        expect(ticking).to_have_attribute("data-state", "ok")
        expect(ticking).to_have_text(re.compile(r"^\d+ s left$"))

        # Fifty seconds in (the browser's clock only): amber, counting down.
        due = handoff.response_due_at
        morgan.clock.set_fixed_time(due - timedelta(seconds=10))
        expect(ticking).to_have_attribute("data-state", "warn")
        expect(ticking).to_have_text("10 s left")
        # Past the target: red, without a reload.
        morgan.clock.set_fixed_time(due + timedelta(minutes=4, seconds=5))
        expect(ticking).to_have_attribute("data-state", "breached")
        expect(ticking).to_have_text("Breached 4 min ago")

        # The server's minute passes: level 2 fires, and Morgan's bell and card update live.
        _release_level(handoff, 2)
        bell = morgan.get_by_role("button", name=unread)
        expect(bell).to_be_visible(timeout=15_000)
        expect(card.get_by_text("Re-escalated to level 2")).to_be_visible()
        bell.click()
        # (Other tests' escalations may reach Morgan's level 2 meanwhile: look for this one.)
        expect(
            morgan.get_by_role("menuitem").filter(has_text=f"Unclaimed for 1 min: {summary}")
        ).to_be_visible()
    finally:
        # Later browser tests escalate with the default targets.
        _northwind_policy_cleared()
