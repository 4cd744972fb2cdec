"""Clicks while PostgreSQL is unreachable: a clear message, nothing half-saved, no stuck flag.

The app's engine talks to PostgreSQL through a TCP proxy the test controls
(`tests/fakes/tcp_proxy.py`); the test reads the database directly. Each click is tried
with the database gone before it starts, with the connection cut just before COMMIT
(every statement of the transaction already ran), and with the database silent (a
connection that is accepted and never answered). Then the database comes back and the
same tab reloads and does the same click successfully.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event
from sqlmodel import select

from escalation_app.domain.db import get_engine
from escalation_app.domain.models import SessionHandoff, SessionStep, SupportSession
from escalation_app.state.base import AppState
from escalation_app.state.handoff import HandoffState
from escalation_app.state.queue import QueueState
from escalation_app.state.sessions import SessionDetailState
from tests.conftest import app_uses_database
from tests.factories import World
from tests.fakes.tcp_proxy import TcpProxy
from tests.state.conftest import Browser, Tab
from tests.state.test_state_authorisation import ESCALATE_FORM, fingerprint

# PostgreSQL only: the proxy stands between the app and a database server.
pytestmark = pytest.mark.parametrize("backend_url", ["postgresql"], indirect=True)

NOT_ANSWERED = "the database did not answer. Nothing was changed; try again."


@pytest.fixture
def proxy(backend_url) -> Iterator[TcpProxy]:
    parts = urlsplit(backend_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def app_database(backend_url, proxy, monkeypatch) -> Iterator[str]:
    """The app's own engine goes through the proxy (the test's `db` and `read` do not)."""
    # libpq's smallest sensible connect timeout: a silent database costs a click 2 s.
    monkeypatch.setenv("DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
    with app_uses_database(proxy.url(backend_url)) as url:
        yield url


@contextlib.contextmanager
def cut_before_commit(proxy: TcpProxy) -> Iterator[list[str]]:
    """Cut the proxy as the click's transaction is about to COMMIT, after all its writes ran.

    Writes to `auth_session` (the sign-in's touch) do not count: the cut waits for the
    domain action's own transaction. Yields the statements the cut transaction had sent.
    """
    engine = get_engine()
    sent: list[str] = []

    def before_execute(conn, cursor, statement, parameters, context, executemany):
        first = statement.lstrip().split(None, 1)[0].upper()
        if first in ("INSERT", "UPDATE", "DELETE") and "auth_session" not in statement:
            sent.append(statement)

    def before_commit(conn):
        if sent:
            proxy.cut()

    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", before_commit)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
        event.remove(engine, "commit", before_commit)


@dataclasses.dataclass(frozen=True)
class Click:
    """One button a person presses, the page it is on and what success looks like."""

    user: str
    state: type[AppState]
    handler: str
    page: Callable[[dict], str]
    payload: Callable[[dict], dict[str, Any]]
    error: str
    success: Callable[[Any], bool]  # given the Outcome
    flag: str = ""  # the busy/claiming var the click sets
    saved: Callable[[Any, dict], bool] = lambda db, ids: True  # the change is in the database


def _session(db, ids) -> SupportSession:
    return db.get(SupportSession, ids["session"])


def _handoff(db, ids) -> SessionHandoff:
    return db.get(SessionHandoff, uuid.UUID(ids["handoff"]))


CLICKS = {
    "escalate": Click(
        user="alex",
        state=SessionDetailState,
        handler="escalate",
        page=lambda ids: f"/sessions/{ids['session']}",
        payload=lambda ids: {"form_data": ESCALATE_FORM},
        error=f"Could not escalate — {NOT_ANSWERED}",
        success=lambda o: o.successes == ["Escalated — your team has been notified"],
        flag="busy",
        saved=lambda db, ids: _session(db, ids).status == "escalated",
    ),
    "park": Click(
        user="alex",
        state=SessionDetailState,
        handler="park",
        page=lambda ids: f"/sessions/{ids['session']}",
        payload=lambda ids: {"form_data": {"notes": "Waiting on the customer"}},
        error=f"Could not park — {NOT_ANSWERED}",
        success=lambda o: o.successes == ["Session parked"],
        flag="busy",
        saved=lambda db, ids: _session(db, ids).status == "paused",
    ),
    "add step": Click(
        user="alex",
        state=SessionDetailState,
        handler="add_step",
        page=lambda ids: f"/sessions/{ids['session']}",
        payload=lambda ids: {"form_data": {"tried": "Flushed DNS", "result": "No change"}},
        error=f"Could not save — {NOT_ANSWERED}",
        success=lambda o: o.successes == ["Step added"],
        saved=lambda db, ids: (
            db.exec(select(SessionStep).where(SessionStep.tried == "Flushed DNS")).first() is not None
        ),
    ),
    "resolve": Click(
        user="alex",
        state=SessionDetailState,
        handler="resolve",
        page=lambda ids: f"/sessions/{ids['session']}",
        payload=lambda ids: {"form_data": {"fix": "Rebooted the router", "root_cause": "hardware"}},
        error=f"Could not resolve it — {NOT_ANSWERED}",
        success=lambda o: o.successes == ["Session resolved"],
        saved=lambda db, ids: _session(db, ids).status == "resolved",
    ),
    "pick up from the queue": Click(
        user="riley",
        state=QueueState,
        handler="pick_up",
        page=lambda ids: "/escalations",
        payload=lambda ids: {"handoff_id": ids["handoff"]},
        error=f"Could not pick this up — {NOT_ANSWERED}",
        success=lambda o: len(o.redirects) == 1 and o.redirects[0].startswith("/handoffs/"),
        flag="claiming_id",
        saved=lambda db, ids: _handoff(db, ids).claimed_by_id is not None,
    ),
    "pick up on the handoff screen": Click(
        user="riley",
        state=HandoffState,
        handler="pick_up",
        page=lambda ids: f"/handoffs/{ids['handoff']}",
        payload=lambda ids: {},
        error=f"Could not pick this up — {NOT_ANSWERED}",
        success=lambda o: o.successes == ["You picked this up"],
        saved=lambda db, ids: _handoff(db, ids).claimed_by_id is not None,
    ),
}


@pytest.fixture
def ids(world: World) -> dict:
    """A fresh session of Alex's with two steps, and an unclaimed escalation of theirs."""
    db = world.db
    session_id = world.new_session("alex", steps=2)
    handoff = db.exec(
        select(SessionHandoff).where(
            SessionHandoff.account_id == world.northwind.id,
            SessionHandoff.intent == "escalate",
            SessionHandoff.claimed_by_id.is_(None),  # type: ignore[union-attr]
        )
    ).first()
    db.commit()
    assert handoff is not None
    return {"session": session_id, "handoff": str(handoff.id)}


async def _open_page(browser: Browser, world: World, click: Click, ids: dict) -> Tab:
    tab = browser.tab()
    await tab.sign_in_as(world.users[click.user])
    outcome = await tab.fire(click.state, "load", path=click.page(ids))
    assert outcome.errors == [], outcome.toasts
    return tab


async def _flag(tab: Tab, click: Click) -> Any:
    return getattr(await tab.get(click.state), click.flag) if click.flag else None


@pytest.mark.parametrize("how", ["down", "cut before commit", "silent"])
@pytest.mark.parametrize("name", list(CLICKS))
async def test_a_click_without_the_database_says_so_saves_nothing_and_recovers(
    browser, world, ids, read, proxy, side_effects, caplog, name, how
):
    click = CLICKS[name]
    tab = await _open_page(browser, world, click, ids)
    before = fingerprint(read)

    with cut_before_commit(proxy) if how == "cut before commit" else contextlib.nullcontext() as sent:
        if how == "down":
            proxy.cut()
        elif how == "silent":
            proxy.stall()
        outcome = await tab.fire(click.state, click.handler, path=click.page(ids), **click.payload(ids))

    if how == "cut before commit":
        assert sent, "the click's transaction never got to write: the cut tested nothing"
    assert outcome.errors == [click.error], outcome.toasts
    assert outcome.successes == [] and outcome.redirects == []
    assert fingerprint(read) == before, "a click that failed changed the database"
    assert not read(lambda db: click.saved(db, ids))
    assert side_effects.created == [] and side_effects.claimed == []
    if click.flag:
        # The flag was set and shown before the database was asked...
        assert any(click.flag in str(delta) for delta in outcome.deltas)
        # ...and is clear again, on the server and in what the browser was last sent.
        assert not await _flag(tab, click)
    assert "the database did not answer" in caplog.text  # logged, with its cause
    assert "OperationalError" in caplog.text

    # The database is back: a reload of the same tab shows the page, the click works.
    proxy.restore()
    reload = await tab.fire(click.state, "load", path=click.page(ids))
    assert reload.errors == [], reload.toasts
    assert not await _flag(tab, click)
    again = await tab.fire(click.state, click.handler, path=click.page(ids), **click.payload(ids))
    assert click.success(again), again.toasts
    assert read(lambda db: click.saved(db, ids))
    assert not await _flag(tab, click)


async def test_a_page_load_without_the_database_says_so(browser, world, ids, proxy):
    tab = await _open_page(browser, world, CLICKS["escalate"], ids)
    proxy.cut()
    outcome = await tab.fire(SessionDetailState, "load", path=f"/sessions/{ids['session']}")
    assert outcome.errors == [
        "Could not load this session — the database did not answer. Try again in a moment."
    ]
    proxy.restore()
    outcome = await tab.fire(SessionDetailState, "load", path=f"/sessions/{ids['session']}")
    assert outcome.errors == []
    assert (await tab.get(SessionDetailState)).loaded


async def test_a_busy_flag_left_by_a_click_that_never_finished_is_clear_after_a_reload(browser, world, ids):
    """A worker that died mid-click leaves the flag in the stored state; the next load clears it."""
    engineer = await _open_page(browser, world, CLICKS["escalate"], ids)
    senior = await _open_page(browser, world, CLICKS["pick up from the queue"], ids)
    (await engineer.get(SessionDetailState)).busy = True
    (await senior.get(QueueState)).claiming_id = ids["handoff"]
    await engineer.fire(SessionDetailState, "load", path=f"/sessions/{ids['session']}")
    await senior.fire(QueueState, "load", path="/escalations")
    assert (await engineer.get(SessionDetailState)).busy is False
    assert (await senior.get(QueueState)).claiming_id == ""
