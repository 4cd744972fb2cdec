"""In Chromium: Escalate while PostgreSQL is unreachable, then again once it is back, in the same tab.

The session's app server runs in this process; for this test its engine goes through a
TCP proxy the test cuts (`tests/fakes/tcp_proxy.py`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from escalation_app.domain.actors import Actor
from escalation_app.domain.db import get_engine, session_scope
from escalation_app.domain.models import SessionHandoff, User
from escalation_app.domain.support_sessions import add_step, create_session
from tests.conftest import app_uses_database
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = pytest.mark.browser

COULD_NOT_ESCALATE = "Could not escalate — the database did not answer. Nothing was changed; try again."


def _new_session(summary: str) -> int:
    with session_scope() as db:
        alex = db.exec(select(User).where(User.email == "alex@northwind.example")).one()
        actor = Actor.from_user(alex)
        created = create_session(
            db=db, actor=actor, problem_summary=summary, problem_domain="Email", client_name="Acme"
        )
        add_step(
            db=db, actor=actor, session_id=created.id, tried="Restarted the mail service", result="No change"
        )
        return created.id


def _handoffs(engine, session_id: int) -> int:
    with session_scope(engine) as db:
        return len(db.exec(select(SessionHandoff).where(SessionHandoff.session_id == session_id)).all())


def test_escalate_without_the_database_says_so_and_works_once_it_is_back(people, app_database):
    if not app_database.startswith("postgresql"):
        pytest.skip("the proxy stands in front of PostgreSQL; this run's browser database is SQLite")
    session_id = _new_session("Outlook cannot reach the mailbox")
    page = people.signed_in("alex@northwind.example", f"/sessions/{session_id}")
    expect(page.get_by_role("status", name="Status")).to_have_text("Active")

    direct = get_engine()  # the test reads the database past the proxy
    parts = urlsplit(app_database)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    with proxy, app_uses_database(proxy.url(app_database)):
        proxy.cut()
        page.get_by_role("button", name="Escalate").click()
        page.get_by_label("Notes").fill("Mailbox unreachable since this morning")
        send = page.get_by_role("button", name="Send escalation")
        send.click()
        expect(page.get_by_text(COULD_NOT_ESCALATE)).to_be_visible()
        # Not busy any more: the dialog's button can be pressed again, nothing was saved.
        expect(send).to_be_enabled()
        expect(send).not_to_have_attribute("data-disabled", "true")
        assert _handoffs(direct, session_id) == 0

        proxy.restore()
        send.click()
        expect(page.get_by_text("Escalated — your team has been notified")).to_be_visible()
        expect(page.get_by_role("status", name="Status")).to_have_text("Escalated")
    assert _handoffs(direct, session_id) == 1
