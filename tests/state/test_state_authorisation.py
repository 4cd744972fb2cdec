"""Authorisation at the state layer: every handler, driven like the server drives it, with crafted events.

The browser can call any handler with any arguments and any page path; identity comes
only from the server-side sign-in behind the `auth_token` cookie. Each refusal must
change nothing in the database and answer with a clear message; the positive controls
show the same calls succeed for someone allowed, so these tests can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from reflex_base.registry import RegistrationContext
from reflex_base.utils.format import json_dumps
from sqlmodel import SQLModel, select

from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain import users as user_rules
from escalation_app.domain.auth import end_auth_session, start_auth_session
from escalation_app.domain.db import session_scope
from escalation_app.domain.models import (
    AccountRole,
    SessionHandoff,
    SessionStep,
    SupportSession,
    Team,
    User,
)
from escalation_app.services import realtime
from escalation_app.services.realtime import QueueScope, handoff_room, user_room
from escalation_app.state.admin import UsersAdminState
from escalation_app.state.auth import LoginState
from escalation_app.state.base import AppState
from escalation_app.state.bell import BellState
from escalation_app.state.handoff import HandoffState
from escalation_app.state.queue import QueueState
from escalation_app.state.sessions import SessionDetailState, SessionHistoryState, SessionsState
from tests.factories import World
from tests.state.conftest import Browser, Outcome, Tab, run_live_jobs

SESSION_ENDED = "Your session has ended. Please sign in again."
HANDOFF_NOT_FOUND = "Handoff not found."
SESSION_NOT_FOUND = "Session not found."
USER_NOT_FOUND = "User not found."
VIEWERS_CANNOT_CLAIM = "Viewers cannot pick up handoffs."
READ_ONLY = "Viewers have read-only access."
MANAGERS_ONLY = "Only account owners and admins can manage users."
OWNERS_ONLY = "Only owners can grant or remove the owner role."
PASSWORD_HASH_MARK = "$2b$"

# Strings only the other account's data contains.
CONTOSO_ONLY = [
    "Contoso",
    "Casey Diaz",
    "Jordan Fox",
    "contoso.example",
    "Line-of-business",
    "Fabrikam",
    "C-1021",
]
NORTHWIND_ONLY = [
    "Northwind",
    "northwind.example",
    "Alex Kim",
    "Sam Patel",
    "Riley Chen",
    "Morgan Lee",
    "Val Ortiz",
    "Harbor Dental",
    "File share mapping",
    "VPN fails",
    "Mail flow stopped",
]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def fresh_hub(monkeypatch) -> None:
    """Each test's worker starts with no tabs (an earlier test's tabs would leave rooms mid-test)."""
    monkeypatch.setattr(realtime, "hub", realtime.LiveHub())


@dataclasses.dataclass(frozen=True)
class Ids:
    """The records the crafted events aim at."""

    nw_escalated: str  # alex's escalated handoff (Northwind)
    nw_parked: str  # alex's parked handoff (Northwind)
    cs_escalated: str  # casey's escalated handoff (Contoso)
    alex_session: int  # an active Northwind session owned by alex, with two steps
    cs_session: int  # casey's Contoso session
    users: dict[str, int]


@pytest.fixture
def ids(world: World) -> Ids:
    db = world.db
    handoffs = db.exec(select(SessionHandoff)).all()

    def handoff_of(account_id: int, intent: str) -> str:
        return next(str(h.id) for h in handoffs if h.account_id == account_id and h.intent == intent)

    alex_session = world.new_session("alex", steps=2)
    cs_session = db.exec(select(SupportSession).where(SupportSession.account_id == world.contoso.id)).one()
    db.commit()
    return Ids(
        nw_escalated=handoff_of(world.northwind.id, "escalate"),
        nw_parked=handoff_of(world.northwind.id, "park"),
        cs_escalated=handoff_of(world.contoso.id, "escalate"),
        alex_session=alex_session,
        cs_session=cs_session.id,
        users={name: user.id for name, user in world.users.items()},
    )


def fingerprint(read) -> dict[str, list[str]]:
    """Every row of every table (sign-in touch times aside): equal before and after means nothing changed."""

    def grab(db) -> dict[str, list[str]]:
        tables = {}
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name != "last_seen_at"]
            rows = db.execute(sa.select(*columns)).all()
            tables[table.name] = sorted(repr(tuple(row)) for row in rows)
        return tables

    return read(grab)


async def signed_in_tab(browser: Browser, world: World, name: str) -> Tab:
    tab = browser.tab()
    await tab.sign_in_as(world.users[name])
    return tab


def assert_refused(outcome: Outcome, message: str, label: Any = "") -> None:
    """A clear error toast with the domain's message, and nothing that looks like success."""
    assert outcome.errors == [message], (label, outcome.toasts)
    assert outcome.successes == [], label
    assert outcome.redirects == [], label


def assert_told_to_sign_in(outcome: Outcome, label: str = "") -> None:
    """No session: either sent to /login or told the session ended; never a success."""
    assert outcome.successes == [], label
    if outcome.redirects:
        assert all(path.startswith("/login") for path in outcome.redirects), (label, outcome.redirects)
    else:
        assert outcome.errors == [SESSION_ENDED], (label, outcome.toasts)


def handoff_row(read, handoff_id: str) -> SessionHandoff:
    return read(lambda db: db.get(SessionHandoff, uuid.UUID(handoff_id)))


def user_row(read, user_id: int) -> User:
    return read(lambda db: db.get(User, user_id))


NO_SESSION_COOKIES = ["", "forged-token-0123456789abcdef"]
# Every page's on_load handler, with the route it serves.
PAGES = [
    (QueueState, "/escalations"),
    (HandoffState, "/handoffs/{handoff}"),
    (SessionsState, "/sessions"),
    (SessionDetailState, "/sessions/{session}"),
    (SessionHistoryState, "/sessions/{session}/history"),
    (UsersAdminState, "/admin/users"),
]

# One entry per state-changing handler: (state, handler, path, payload), built from the ids.
Action = tuple[type, str, Callable[[Ids], str], Callable[[Ids], dict[str, Any]]]
ESCALATE_FORM = {"notes": "Need a hand", "priority": "high", "target_user_id": ""}
ACTIONS: dict[str, Action] = {
    "queue.pick_up": (
        QueueState,
        "pick_up",
        lambda i: "/escalations",
        lambda i: {"handoff_id": i.nw_escalated},
    ),
    "handoff.pick_up": (HandoffState, "pick_up", lambda i: f"/handoffs/{i.nw_escalated}", lambda i: {}),
    "session.escalate": (
        SessionDetailState,
        "escalate",
        lambda i: f"/sessions/{i.alex_session}",
        lambda i: {"form_data": ESCALATE_FORM},
    ),
    "session.park": (
        SessionDetailState,
        "park",
        lambda i: f"/sessions/{i.alex_session}",
        lambda i: {"form_data": {"notes": "Waiting on the customer"}},
    ),
    "session.add_step": (
        SessionDetailState,
        "add_step",
        lambda i: f"/sessions/{i.alex_session}",
        lambda i: {"form_data": {"tried": "Rebooted", "result": "No change"}},
    ),
    "session.resolve": (
        SessionDetailState,
        "resolve",
        lambda i: f"/sessions/{i.alex_session}",
        lambda i: {"form_data": {"fix": "Rebooted the router", "root_cause": "hardware"}},
    ),
    "sessions.create": (
        SessionsState,
        "create",
        lambda i: "/sessions",
        lambda i: {"form_data": {"problem_summary": "Printer on fire"}},
    ),
    "admin.change_role": (
        UsersAdminState,
        "change_role",
        lambda i: "/admin/users",
        lambda i: {"user_id": str(i.users["sam"]), "role": "admin"},
    ),
    "admin.deactivate": (
        UsersAdminState,
        "deactivate",
        lambda i: "/admin/users",
        lambda i: {"user_id": str(i.users["sam"])},
    ),
    "admin.add_user": (
        UsersAdminState,
        "add_user",
        lambda i: "/admin/users",
        lambda i: {
            "form_data": {
                "display_name": "Eve Intruder",
                "email": "eve@northwind.example",
                "role": "owner",
                "password": "correct-horse-battery",
            }
        },
    ),
}


async def fire(tab: Tab, ids: Ids, action: str, **overrides: Any) -> Outcome:
    state_cls, handler, path, payload = ACTIONS[action]
    return await tab.fire(
        state_cls, handler, path=overrides.pop("path", path(ids)), **{**payload(ids), **overrides}
    )


# --------------------------------------------------------------------------- no session at all


@pytest.mark.parametrize("cookie", NO_SESSION_COOKIES)
async def test_pages_without_a_session_redirect_to_login_and_show_nothing(browser, ids, cookie):
    tab = browser.tab()
    await tab.set_cookie(cookie)
    for state_cls, path in PAGES:
        page = path.format(handoff=ids.nw_escalated, session=ids.alex_session)
        outcome = await tab.fire(state_cls, "load", path=page)
        assert outcome.redirects == [f"/login?next={page.replace('/', '%2F')}"], page
        app = await tab.get(AppState)
        assert (app.signed_in, app.user_name, app.user_role) == (False, "", ""), page
        wire = outcome.wire_text()
        for text in NORTHWIND_ONLY:
            assert text not in wire, (page, text)


@pytest.mark.parametrize("cookie", NO_SESSION_COOKIES)
async def test_actions_without_a_session_change_nothing(browser, ids, read, side_effects, cookie):
    before = fingerprint(read)
    tab = browser.tab()
    await tab.set_cookie(cookie)
    for action in ACTIONS:
        outcome = await fire(tab, ids, action)
        assert_told_to_sign_in(outcome, action)
        assert fingerprint(read) == before, action
    assert side_effects.jobs == []


async def test_change_role_without_a_session_changes_nothing(browser, ids, read):
    before = fingerprint(read)
    tab = browser.tab()
    await tab.set_cookie("forged-token-0123456789abcdef")
    outcome = await fire(tab, ids, "admin.change_role")
    assert_told_to_sign_in(outcome)
    assert fingerprint(read) == before


async def test_a_revoked_sign_in_is_no_session(browser, world, ids, read):
    tab = browser.tab()
    token = await tab.sign_in_as(world.users["riley"])
    await tab.fire(AppState, "sign_out", path="/escalations")
    await tab.set_cookie(token)  # a copy of the old cookie, replayed
    before = fingerprint(read)
    outcome = await fire(tab, ids, "queue.pick_up")
    assert_told_to_sign_in(outcome)
    assert fingerprint(read) == before


async def test_a_deactivated_user_is_signed_out_on_the_next_event(browser, world, ids, read):
    sam = await signed_in_tab(browser, world, "sam")
    riley = await signed_in_tab(browser, world, "riley")
    outcome = await riley.fire(
        UsersAdminState, "deactivate", path="/admin/users", user_id=str(ids.users["sam"])
    )
    assert outcome.successes == ["User deactivated"]
    before = fingerprint(read)
    outcome = await fire(sam, ids, "queue.pick_up")
    assert_told_to_sign_in(outcome)
    assert fingerprint(read) == before


# --------------------------------------------------------------------------- viewers


async def test_viewer_cannot_pick_up_or_create_sessions(browser, world, ids, read, side_effects):
    val = await signed_in_tab(browser, world, "val")
    before = fingerprint(read)
    for action in ["queue.pick_up", "handoff.pick_up"]:
        assert_refused(await fire(val, ids, action), VIEWERS_CANNOT_CLAIM, action)
        assert handoff_row(read, ids.nw_escalated).claimed_by_id is None
        assert fingerprint(read) == before, action
    assert_refused(await fire(val, ids, "sessions.create"), READ_ONLY)
    assert fingerprint(read) == before
    assert side_effects.jobs == []


async def test_viewer_reads_the_queue_and_handoff_without_pick_up(browser, world, ids):
    val = await signed_in_tab(browser, world, "val")
    await val.fire(QueueState, "load", path="/escalations")
    queue = await val.get(QueueState)
    assert {c["id"] for c in queue.cards} == {ids.nw_escalated, ids.nw_parked}
    # The page shows Pick up only where `can_work` (false for viewers) and the card is not theirs.
    assert not queue.can_work
    await val.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_escalated}")
    handoff = await val.get(HandoffState)
    assert handoff.found and not handoff.can_pick_up


def _own_rooms(user, *, queue: bool = False) -> set[str]:
    rooms = {user_room(user.id)}
    if queue:
        rooms.add(QueueScope(user.account_id, user.team_id).room)
    return rooms


async def test_only_workers_follow_live_rooms_and_only_their_own(browser, world, ids):
    for name in ["val", "alex", "riley", "casey"]:
        user = world.users[name]
        tab = await signed_in_tab(browser, world, name)
        await tab.fire(QueueState, "load", path="/escalations")
        await tab.fire(BellState, "load", path="/escalations")
        assert tab.live_rooms() == (set() if name == "val" else _own_rooms(user, queue=True)), name
        # Another page leaves the queue's room; the bell stays live.
        await tab.fire(BellState, "load", path="/sessions")
        assert tab.live_rooms() == (set() if name == "val" else _own_rooms(user)), name

    # Another account's handoff page never follows that handoff.
    casey = await signed_in_tab(browser, world, "casey")
    await casey.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_escalated}")
    await casey.fire(BellState, "load", path=f"/handoffs/{ids.nw_escalated}")
    assert casey.live_rooms() == _own_rooms(world.users["casey"])
    riley = await signed_in_tab(browser, world, "riley")
    await riley.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_escalated}")
    await riley.fire(BellState, "load", path=f"/handoffs/{ids.nw_escalated}")
    assert riley.live_rooms() == _own_rooms(world.users["riley"]) | {handoff_room(ids.nw_escalated)}

    await riley.fire(AppState, "sign_out", path=f"/handoffs/{ids.nw_escalated}")
    assert riley.live_rooms() == set()


async def _queue_tab(browser, world, name: str) -> Tab:
    tab = await signed_in_tab(browser, world, name)
    await tab.fire(QueueState, "load", path="/escalations")
    assert tab.live_rooms(), name
    return tab


async def _deliver(browser, account_id: int, kind: str, handoff_id: str) -> None:
    """What a worker does with a published change."""
    # The test's own DB session must not hold SQLite's write lock while the push reads.
    browser.db.commit()
    registered = RegistrationContext.set(browser.registry)
    try:
        await realtime.hub.deliver({"account_id": account_id, "kind": kind, "handoff_id": handoff_id})
    finally:
        RegistrationContext.reset(registered)


async def _push_created(browser, world, ids) -> None:
    await _deliver(browser, world.northwind.id, "created", ids.nw_escalated)


VIEWING = {"viewing_rx_state_", "viewers_rx_state_"}


def _is_presence(packet: dict) -> bool:
    """A who-is-viewing delta (tests/state/test_presence.py covers those)."""
    return all(set(fields) <= VIEWING for fields in packet["delta"].values())


def _pushed(browser, tab: Tab, state_cls) -> list[dict]:
    """The deltas for `state_cls` pushed to rooms `tab` was in, who-is-viewing left out."""
    name = state_cls.get_full_name()
    reached = browser.sockets.reached(tab.sid)
    return [p["delta"][name] for p in reached if name in p["delta"] and set(p["delta"][name]) - VIEWING]


async def test_pushes_reach_the_rooms_that_follow_them_and_no_one_else(browser, world, ids, side_effects):
    riley = await _queue_tab(browser, world, "riley")
    casey = await _queue_tab(browser, world, "casey")
    val = await signed_in_tab(browser, world, "val")
    await val.fire(QueueState, "load", path="/escalations")
    sam = await signed_in_tab(browser, world, "sam")
    await sam.fire(BellState, "load", path="/sessions")
    morgan = await signed_in_tab(browser, world, "morgan")
    await morgan.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_escalated}")

    session_id = world.new_session("alex", summary="VPN drops every hour")
    handoff = handoff_rules.create_handoff(
        db=world.db,
        actor=world.actor("alex"),
        session_id=session_id,
        intent="escalate",
        notes="",
        priority="high",
    )
    new_id = str(handoff.id)
    # The escalation committed its live push; the committing process runs it.
    [created] = side_effects.live("created")
    assert (str(created.handoff_id), created.account_id) == (new_id, world.northwind.id)
    # Nothing but who-is-viewing is pushed until the job runs.
    assert [sent for sent in browser.sockets.sent if not _is_presence(sent[2])] == []
    await run_live_jobs(browser, [created])

    # Riley's queue: the team's whole queue, newest first, with the new card.
    [queue] = _pushed(browser, riley, QueueState)
    cards = queue["cards_rx_state_"]
    assert cards[0]["id"] == new_id and cards[0]["summary"] == "VPN drops every hour"
    assert {c["id"] for c in cards} >= {ids.nw_escalated, ids.nw_parked}
    # Bells: each notified user following theirs gets it once, with the new notification on top.
    for tab in (riley, sam):
        [bell] = _pushed(browser, tab, BellState)
        assert bell["items_rx_state_"][0]["title"] == "New escalation: VPN drops every hour"
        assert bell["unread_rx_state_"] >= 1
    # Contoso and the viewer get nothing; Morgan's open screen shows another handoff (bell only).
    assert browser.sockets.reached(casey.sid) == []
    assert browser.sockets.reached(val.sid) == []
    assert _pushed(browser, morgan, HandoffState) == [] and _pushed(browser, morgan, QueueState) == []

    # A claim: the card leaves the team's queue; open screens of that handoff get a tick.
    await morgan.fire(HandoffState, "load", path=f"/handoffs/{new_id}")
    handoff_rules.claim_handoff(db=world.db, actor=world.actor("riley"), handoff_id=new_id)
    before = len(browser.sockets.sent)
    [claimed] = side_effects.live("claimed")
    assert str(claimed.handoff_id) == new_id
    await run_live_jobs(browser, [claimed])
    sent = {room: (sids, payload["delta"]) for room, sids, payload in browser.sockets.sent[before:]}
    team_room = QueueScope(world.northwind.id, world.users["riley"].team_id).room
    assert set(sent) == {team_room, handoff_room(new_id)}
    sids, delta = sent[handoff_room(new_id)]
    assert sids == {morgan.sid} and list(delta) == [HandoffState.get_full_name()]
    assert list(delta[HandoffState.get_full_name()]) == ["live_tick_rx_state_"]
    sids, delta = sent[team_room]
    assert riley.sid in sids and casey.sid not in sids and val.sid not in sids
    assert new_id not in {c["id"] for c in delta[QueueState.get_full_name()]["cards_rx_state_"]}


async def test_a_failed_queue_push_is_logged_and_the_bells_still_go(browser, world, ids, monkeypatch, caplog):
    riley = await _queue_tab(browser, world, "riley")

    def database_down(*_args):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(realtime, "_read_queue", database_down)
    await _push_created(browser, world, ids)
    assert _pushed(browser, riley, QueueState) == []
    assert len(_pushed(browser, riley, BellState)) == 1
    assert "live created push for handoff" in caplog.text and "database unavailable" in caplog.text


async def test_the_live_push_drops_tabs_whose_sign_in_ended(browser, world, ids):
    """A tab that sends nothing keeps no feed after its sign-in ends elsewhere."""
    signed_out, deactivated, demoted, moved, staying = [
        await _queue_tab(browser, world, name) for name in ["riley", "sam", "alex", "morgan", "riley"]
    ]
    # Tabs on other pages follow only their bell; a new escalation's bell push checks them too.
    bell_only = {}
    for name in ["sam", "riley"]:
        tab = await signed_in_tab(browser, world, name)
        await tab.fire(BellState, "load", path="/sessions")
        assert tab.live_rooms() == _own_rooms(world.users[name]), name
        bell_only[name] = tab
    # Signed out from another tab holding the same cookie: this socket is not told.
    end_token = signed_out.cookie_token

    def end_and_change(db):
        end_auth_session(db=db, token=end_token)
        sam = db.get(User, ids.users["sam"])
        sam.is_active = False
        alex = db.get(User, ids.users["alex"])
        alex.account_role = "viewer"
        other_team = Team(account_id=world.northwind.id, name="Projects")
        db.add(other_team)
        db.flush()
        morgan = db.get(User, ids.users["morgan"])
        morgan.team_id = other_team.id
        db.add_all([sam, alex, morgan])
        db.commit()

    with session_scope() as db:
        end_and_change(db)
    await _push_created(browser, world, ids)
    for tab in (signed_out, deactivated, demoted, moved, bell_only["sam"]):
        assert tab.live_rooms() == set()
    assert staying.live_rooms() == _own_rooms(world.users["riley"], queue=True)
    assert bell_only["riley"].live_rooms() == _own_rooms(world.users["riley"])


# --------------------------------------------------------------------------- another account's ids


async def test_other_accounts_handoff_is_not_found(browser, world, ids, read, side_effects):
    tabs = {who: await signed_in_tab(browser, world, who) for who in ["casey", "jordan"]}
    before = fingerprint(read)
    for who, tab in tabs.items():
        for action in ["queue.pick_up", "handoff.pick_up"]:
            assert_refused(await fire(tab, ids, action), HANDOFF_NOT_FOUND, (who, action))
            assert handoff_row(read, ids.nw_escalated).claimed_by_id is None
            assert fingerprint(read) == before, (who, action)
    assert side_effects.jobs == []


async def test_loading_another_accounts_handoff_shows_nothing(browser, world, ids):
    casey = await signed_in_tab(browser, world, "casey")
    outcome = await casey.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_escalated}")
    handoff = await casey.get(HandoffState)
    assert handoff.loaded and not handoff.found
    assert (handoff.summary, handoff.notes, handoff.steps, handoff.handed_off_by) == ("", "", [], "")
    wire = outcome.wire_text() + json_dumps(await casey.snapshot())
    for text in NORTHWIND_ONLY:
        assert text not in wire, text


@pytest.mark.parametrize("who", ["casey", "sam"])
async def test_someone_elses_session_is_not_found(browser, world, ids, read, side_effects, who):
    """Another account (casey) and a teammate (sam) alike: only the owner may act on a session."""
    tab = await signed_in_tab(browser, world, who)
    before = fingerprint(read)
    for action in ["session.escalate", "session.park", "session.add_step", "session.resolve"]:
        assert_refused(await fire(tab, ids, action), SESSION_NOT_FOUND, action)
        assert fingerprint(read) == before, action
    assert side_effects.jobs == []


@pytest.mark.parametrize("who", ["casey", "sam"])
async def test_loading_someone_elses_session_shows_nothing(browser, world, ids, who):
    tab = await signed_in_tab(browser, world, who)
    outcome = await tab.fire(SessionDetailState, "load", path=f"/sessions/{ids.alex_session}")
    detail = await tab.get(SessionDetailState)
    assert detail.loaded and not detail.found
    assert (detail.summary, detail.steps_0, detail.step_count, detail.session_pk) == ("", [], 0, 0)
    assert "Mail flow stopped" not in outcome.wire_text()


async def test_another_accounts_session_history_shows_nothing(browser, world, ids):
    # (A session's handoff history is account-wide by design: teammates may read it.)
    casey = await signed_in_tab(browser, world, "casey")
    outcome = await casey.fire(SessionHistoryState, "load", path=f"/sessions/{ids.alex_session}/history")
    history = await casey.get(SessionHistoryState)
    assert history.loaded and not history.found
    assert (history.summary, history.rows) == ("", [])
    assert "Mail flow stopped" not in outcome.wire_text()


async def test_other_accounts_user_is_not_found(browser, world, ids, read):
    jordan = await signed_in_tab(browser, world, "jordan")  # Contoso admin
    before = fingerprint(read)
    for handler, payload in [("change_role", {"role": "viewer"}), ("deactivate", {})]:
        outcome = await jordan.fire(
            UsersAdminState, handler, path="/admin/users", user_id=str(ids.users["riley"]), **payload
        )
        assert_refused(outcome, USER_NOT_FOUND, handler)
        assert fingerprint(read) == before, handler
    users = (await jordan.get(UsersAdminState)).users
    assert {u["name"] for u in users} <= {"Casey Diaz", "Jordan Fox"}


# --------------------------------------------------------------------------- crafted arguments


async def test_pick_up_with_a_malformed_or_unknown_id_is_not_found(browser, world, ids, read):
    riley = await signed_in_tab(browser, world, "riley")
    before = fingerprint(read)
    crafted = ["not-a-uuid", "", "' OR 1=1 --", "00000000-0000-0000-0000-000000000000", 12345, None, ["x"]]
    for handoff_id in crafted:
        outcome = await riley.fire(QueueState, "pick_up", path="/escalations", handoff_id=handoff_id)
        assert_refused(outcome, HANDOFF_NOT_FOUND, handoff_id)
        assert fingerprint(read) == before, handoff_id
        assert (await riley.get(QueueState)).claiming_id == ""
    for path in ["/handoffs/not-a-uuid", "/handoffs/", "/handoffs", f"/handoffs/{ids.cs_escalated}"]:
        outcome = await riley.fire(HandoffState, "pick_up", path=path)
        assert_refused(outcome, HANDOFF_NOT_FOUND, path)
        assert fingerprint(read) == before, path


NOT_A_TEAMMATE = "That teammate was not found or cannot take escalations."
CRAFTED_ESCALATIONS = [
    ({"priority": "asap"}, "Priority must be one of: low, normal, high, urgent."),
    ({"notes": "x" * 5001}, "Notes must be at most 5,000 characters."),
    ({"target_user_id": "casey"}, NOT_A_TEAMMATE),  # another account's user
    ({"target_user_id": "jordan"}, NOT_A_TEAMMATE),
    ({"target_user_id": "val"}, NOT_A_TEAMMATE),  # a viewer
    ({"target_user_id": "-1"}, NOT_A_TEAMMATE),
    ({"target_user_id": "not-a-number"}, "Send to must be a teammate."),
    ({"target_user_id": "alex"}, "Cannot escalate a session to yourself. Use park instead."),
]


async def test_escalate_with_crafted_fields_changes_nothing(browser, world, ids, read, side_effects):
    alex = await signed_in_tab(browser, world, "alex")
    before = fingerprint(read)
    for form, message in CRAFTED_ESCALATIONS:
        target = form.get("target_user_id")
        if target in ids.users:
            form = {**form, "target_user_id": str(ids.users[target])}
        outcome = await fire(alex, ids, "session.escalate", form_data={**ESCALATE_FORM, **form})
        assert_refused(outcome, message, form)
        assert fingerprint(read) == before, form
    outcome = await fire(
        alex, ids, "session.park", form_data={"notes": "", "target_user_id": str(ids.users["sam"])}
    )
    assert_refused(outcome, "Only escalations can be sent to a teammate.")
    assert fingerprint(read) == before
    assert side_effects.jobs == []
    assert read(lambda db: db.get(SupportSession, ids.alex_session)).status == "active"


async def test_session_actions_with_a_crafted_path_are_not_found(browser, world, ids, read):
    alex = await signed_in_tab(browser, world, "alex")
    before = fingerprint(read)
    for path in [
        "/sessions/abc",
        "/sessions/-1",
        "/sessions/0",
        "/sessions/1.5",
        f"/sessions/{ids.cs_session}",
    ]:
        for action in ["session.escalate", "session.add_step", "session.resolve"]:
            outcome = await fire(alex, ids, action, path=path)
            assert_refused(outcome, SESSION_NOT_FOUND, (action, path))
            assert fingerprint(read) == before, (action, path)


@pytest.mark.parametrize(
    "path",
    [
        "/sessions/99999999999999999999",
        "/sessions",
    ],
)
async def test_session_actions_with_an_unparseable_path_are_not_found(browser, world, ids, read, path):
    alex = await signed_in_tab(browser, world, "alex")
    before = fingerprint(read)
    outcome = await fire(alex, ids, "session.escalate", path=path)
    assert_refused(outcome, SESSION_NOT_FOUND)
    assert fingerprint(read) == before


async def test_user_admin_with_crafted_arguments_changes_nothing(browser, world, ids, read):
    riley = await signed_in_tab(browser, world, "riley")
    before = fingerprint(read)
    sam = str(ids.users["sam"])
    cases = [
        ("change_role", {"user_id": "abc", "role": "viewer"}, USER_NOT_FOUND),
        ("change_role", {"user_id": "-1", "role": "viewer"}, USER_NOT_FOUND),
        (
            "change_role",
            {"user_id": sam, "role": "superuser"},
            "Role must be one of: owner, admin, engineer, viewer.",
        ),
        ("deactivate", {"user_id": "abc"}, USER_NOT_FOUND),
        ("deactivate", {"user_id": str(ids.users["casey"])}, USER_NOT_FOUND),
    ]
    for handler, payload, message in cases:
        outcome = await riley.fire(UsersAdminState, handler, path="/admin/users", **payload)
        assert_refused(outcome, message, (handler, payload))
        assert fingerprint(read) == before, (handler, payload)


async def test_change_role_with_an_out_of_range_id_is_not_found(browser, world, read):
    riley = await signed_in_tab(browser, world, "riley")
    before = fingerprint(read)
    outcome = await riley.fire(
        UsersAdminState, "change_role", path="/admin/users", user_id="99999999999999999999", role="viewer"
    )
    assert_refused(outcome, USER_NOT_FOUND)
    assert fingerprint(read) == before


async def test_escalating_to_an_out_of_range_user_id_is_refused(browser, world, ids, read):
    alex = await signed_in_tab(browser, world, "alex")
    before = fingerprint(read)
    form = {**ESCALATE_FORM, "target_user_id": "99999999999999999999"}
    assert_refused(await fire(alex, ids, "session.escalate", form_data=form), NOT_A_TEAMMATE)
    assert fingerprint(read) == before


# --------------------------------------------------------------------------- user administration


async def test_non_managers_cannot_manage_users(browser, world, ids, read):
    tabs = {who: await signed_in_tab(browser, world, who) for who in ["alex", "val"]}
    before = fingerprint(read)
    for who, tab in tabs.items():
        outcome = await tab.fire(UsersAdminState, "load", path="/admin/users")
        admin = await tab.get(UsersAdminState)
        assert admin.loaded and not admin.allowed and admin.users == [], who
        assert "riley@northwind.example" not in outcome.wire_text(), who
        for action in ["admin.deactivate", "admin.add_user"]:
            assert_refused(await fire(tab, ids, action), MANAGERS_ONLY, (who, action))
            assert fingerprint(read) == before, (who, action)


async def test_non_managers_cannot_change_roles(browser, world, ids, read):
    alex = await signed_in_tab(browser, world, "alex")
    before = fingerprint(read)
    assert_refused(await fire(alex, ids, "admin.change_role"), MANAGERS_ONLY)
    assert fingerprint(read) == before


async def test_admin_cannot_change_or_deactivate_themselves(browser, world, ids, read):
    riley = await signed_in_tab(browser, world, "riley")
    before = fingerprint(read)
    for handler, payload, message in [
        ("change_role", {"role": "engineer"}, "You cannot change your own role."),
        ("change_role", {"role": "owner"}, "You cannot change your own role."),
        ("deactivate", {}, "You cannot deactivate yourself."),
    ]:
        outcome = await riley.fire(
            UsersAdminState, handler, path="/admin/users", user_id=str(ids.users["riley"]), **payload
        )
        assert_refused(outcome, message, (handler, payload))
        assert fingerprint(read) == before, (handler, payload)


async def test_admin_cannot_touch_the_owner_role(browser, world, ids, read):
    riley = await signed_in_tab(browser, world, "riley")
    before = fingerprint(read)
    for handler, target, payload, message in [
        ("change_role", "morgan", {"role": "admin"}, OWNERS_ONLY),
        ("change_role", "morgan", {"role": "viewer"}, OWNERS_ONLY),
        ("change_role", "alex", {"role": "owner"}, OWNERS_ONLY),
        ("deactivate", "morgan", {}, "Only owners can deactivate an owner."),
    ]:
        outcome = await riley.fire(
            UsersAdminState, handler, path="/admin/users", user_id=str(ids.users[target]), **payload
        )
        assert_refused(outcome, message, (handler, target, payload))
        assert fingerprint(read) == before, (handler, target, payload)
    assert_refused(await fire(riley, ids, "admin.add_user"), "Only owners can add another owner.")
    assert fingerprint(read) == before
    assert user_row(read, ids.users["morgan"]).account_role == AccountRole.OWNER


async def test_the_last_owner_stays(browser, world, ids, read):
    """Morgan is the only owner: no one can demote or deactivate them, themselves included."""
    morgan_id = ids.users["morgan"]
    morgan = await signed_in_tab(browser, world, "morgan")
    before = fingerprint(read)
    for role in ("admin", "engineer", "viewer"):
        outcome = await morgan.fire(
            UsersAdminState, "change_role", path="/admin/users", user_id=str(morgan_id), role=role
        )
        assert_refused(outcome, "You cannot change your own role.")
    outcome = await morgan.fire(UsersAdminState, "deactivate", path="/admin/users", user_id=str(morgan_id))
    assert_refused(outcome, "You cannot deactivate yourself.")
    assert fingerprint(read) == before

    # A second owner, demoted by Morgan (allowed: Morgan stays), cannot then demote Morgan:
    # the role is re-read from the database on every event, not taken from the tab.
    olive = world.add_user("olive@northwind.example", "Olive Park", "owner")
    olive_tab = browser.tab()
    await olive_tab.sign_in_as(world.users["olive"])
    await olive_tab.fire(UsersAdminState, "load", path="/admin/users")
    outcome = await morgan.fire(
        UsersAdminState, "change_role", path="/admin/users", user_id=str(olive.id), role="admin"
    )
    assert outcome.successes == ["Role changed"] and outcome.errors == []
    before = fingerprint(read)
    for handler, payload, message in [
        ("change_role", {"role": "admin"}, OWNERS_ONLY),
        ("deactivate", {}, "Only owners can deactivate an owner."),
    ]:
        outcome = await olive_tab.fire(
            UsersAdminState, handler, path="/admin/users", user_id=str(morgan_id), **payload
        )
        assert_refused(outcome, message)
    assert fingerprint(read) == before
    owner = user_row(read, morgan_id)
    assert (owner.account_role, owner.is_active) == (AccountRole.OWNER, True)


async def test_two_owners_demoting_each_other_at_once_leave_an_owner(
    browser, world, ids, read, monkeypatch, request
):
    """The last-owner rule must hold when two owners act at the same moment."""
    olive_id = world.add_user("olive@northwind.example", "Olive Park", "owner").id
    morgan = await signed_in_tab(browser, world, "morgan")
    olive = await signed_in_tab(browser, world, "olive")

    # Both requests count the owners before either writes (on SQLite the second waits
    # for the first's write lock instead, and the barrier times out).
    barrier = threading.Barrier(2, timeout=1)
    count_owners = user_rules._active_owner_count

    def counted_together(db, account_id):
        count = count_owners(db, account_id)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return count

    monkeypatch.setattr(user_rules, "_active_owner_count", counted_together)
    await asyncio.gather(
        morgan.fire(UsersAdminState, "change_role", path="/admin/users", user_id=str(olive_id), role="admin"),
        olive.fire(
            UsersAdminState,
            "change_role",
            path="/admin/users",
            user_id=str(ids.users["morgan"]),
            role="admin",
        ),
    )
    owners = read(
        lambda db: db.exec(
            select(User).where(User.account_id == world.northwind.id, User.account_role == AccountRole.OWNER)
        ).all()
    )
    assert len(owners) >= 1


# --------------------------------------------------------------------------- public vars carry no secrets


def _walk_vars(tree: dict[str, dict[str, Any]]):
    for state_name, fields in tree.items():
        for field_name, value in fields.items():
            yield state_name, field_name, json_dumps(value)


SECRET_CHECKS = [
    ("riley", "File share mapping", CONTOSO_ONLY),
    ("morgan", "File share mapping", CONTOSO_ONLY),
    ("alex", "Mail flow stopped", CONTOSO_ONLY),
    ("val", "File share mapping", CONTOSO_ONLY),
    ("casey", "Line-of-business", NORTHWIND_ONLY),
    ("jordan", "Line-of-business", NORTHWIND_ONLY),
]


async def test_public_vars_carry_no_secrets_and_nothing_from_another_account(browser, world, ids):
    # Every user has a live sign-in; only a tab's own token may reach that tab.
    tokens = {name: start_auth_session(db=world.db, user=user) for name, user in world.users.items()}
    for who, own_text, foreign in SECRET_CHECKS:
        await _check_one_users_tab(browser, world, ids, tokens, who, own_text, foreign)


async def _check_one_users_tab(browser, world, ids, tokens, who, own_text, foreign) -> None:
    tab = browser.tab()
    await tab.set_cookie(tokens[who])
    northwind = world.users[who].account_id == world.northwind.id
    handoff = ids.nw_escalated if northwind else ids.cs_escalated
    session = ids.alex_session if northwind else ids.cs_session
    wire = []
    for state_cls, path in PAGES:
        outcome = await tab.fire(state_cls, "load", path=path.format(handoff=handoff, session=session))
        assert outcome.errors == [] and outcome.redirects == [], (who, state_cls, outcome.toasts)
        wire.append(outcome.wire_text())
    hydrate = await tab.hydrate("/escalations")
    wire.append(hydrate.wire_text())
    snapshot = await tab.snapshot()
    everything = "\n".join([*wire, json_dumps(snapshot)])

    assert own_text in everything, who  # the tab did get its own data (so the checks below can fail)
    assert any("cards" in name for _, name, _ in _walk_vars(hydrate.deltas[0]))
    assert PASSWORD_HASH_MARK not in everything, who
    for name, token in tokens.items():
        assert hashlib.sha256(token.encode()).hexdigest() not in everything, who
        if name != who:
            assert token not in everything, f"{name}'s token reached {who}'s tab"
    trees = [snapshot, *hydrate.deltas]
    for tree in trees:
        for state_name, field_name, text in _walk_vars(tree):
            # The cookie is HttpOnly: not even the tab's own token travels in its state.
            assert tokens[who] not in text, f"{who}'s sign-in token in {state_name}.{field_name}"
    for text in foreign:
        assert text not in everything, (who, text)


async def test_signing_out_leaves_nothing_for_the_next_user_of_the_tab(browser, world, ids):
    tab = await signed_in_tab(browser, world, "alex")
    for state_cls, path in PAGES:
        await tab.fire(
            state_cls, "load", path=path.format(handoff=ids.nw_escalated, session=ids.alex_session)
        )
    outcome = await tab.fire(AppState, "sign_out", path="/escalations")
    assert outcome.redirects == ["/login"]
    await tab.fire(LoginState, "load", path="/login")
    # Casey signs in through the sign-in endpoint: the browser then loads /sessions with
    # the new cookie.
    await tab.sign_in_as(world.users["casey"])
    hydrate = await tab.hydrate("/sessions")
    wire = hydrate.wire_text()
    leaked = [text for text in NORTHWIND_ONLY if text in wire]
    assert leaked == []


# --------------------------------------------------------------------------- positive controls


async def test_senior_picks_up_from_the_queue(browser, world, ids, read, side_effects):
    riley = await signed_in_tab(browser, world, "riley")
    await riley.fire(QueueState, "load", path="/escalations")
    outcome = await fire(riley, ids, "queue.pick_up")
    assert outcome.errors == []
    assert outcome.redirects == [f"/handoffs/{ids.nw_escalated}"]
    row = handoff_row(read, ids.nw_escalated)
    assert row.claimed_by_id == ids.users["riley"]
    assert read(lambda db: db.get(SupportSession, row.session_id)).status == "active"
    # The claim committed its live push (no PSA connection: no ticket note), and nothing else.
    assert [str(h) for h in side_effects.claimed] == [ids.nw_escalated]
    # The live push, and the stalled-claim reminder of the escalation clock.
    assert side_effects.kinds_of(ids.nw_escalated) == ["live", "timer"] and len(side_effects.jobs) == 2
    await riley.fire(QueueState, "load", path="/escalations")
    assert ids.nw_escalated not in {c["id"] for c in (await riley.get(QueueState)).cards}

    await riley.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_escalated}")
    handoff = await riley.get(HandoffState)
    assert handoff.found and handoff.claimed_by == "Riley Chen" and not handoff.can_pick_up

    # The next senior is told who won; nothing changes.
    sam = await signed_in_tab(browser, world, "sam")
    before = fingerprint(read)
    outcome = await fire(sam, ids, "queue.pick_up")
    assert len(outcome.errors) == 1 and outcome.errors[0].startswith("Already claimed by Riley Chen")
    assert fingerprint(read) == before
    assert len(side_effects.jobs) == 2  # still only the winner's


async def test_senior_picks_up_on_the_handoff_screen(browser, world, ids, read, side_effects):
    riley = await signed_in_tab(browser, world, "riley")
    await riley.fire(HandoffState, "load", path=f"/handoffs/{ids.nw_parked}")
    assert (await riley.get(HandoffState)).can_pick_up
    outcome = await riley.fire(HandoffState, "pick_up", path=f"/handoffs/{ids.nw_parked}")
    assert outcome.successes == ["You picked this up"] and outcome.errors == []
    assert handoff_row(read, ids.nw_parked).claimed_by_id == ids.users["riley"]
    assert (await riley.get(HandoffState)).claimed_by == "Riley Chen"
    assert [str(h) for h in side_effects.claimed] == [ids.nw_parked]
    assert len(side_effects.jobs) == 1


async def test_owner_of_a_session_works_it(browser, world, ids, read, side_effects):
    alex = await signed_in_tab(browser, world, "alex")
    await alex.fire(SessionDetailState, "load", path=f"/sessions/{ids.alex_session}")
    detail = await alex.get(SessionDetailState)
    assert detail.found and detail.summary == "Mail flow stopped"
    assert "Casey Diaz" not in {m["name"] for m in detail.teammates}
    assert "Val Ortiz" not in {m["name"] for m in detail.teammates}

    outcome = await fire(alex, ids, "session.add_step")
    assert "Step added" in outcome.successes and outcome.errors == []
    steps = read(
        lambda db: db.exec(select(SessionStep).where(SessionStep.session_id == ids.alex_session)).all()
    )
    assert len(steps) == 3

    outcome = await fire(
        alex, ids, "session.escalate", form_data={**ESCALATE_FORM, "target_user_id": str(ids.users["sam"])}
    )
    assert outcome.successes == ["Escalated — your team has been notified"] and outcome.errors == []
    assert read(lambda db: db.get(SupportSession, ids.alex_session)).status == "escalated"
    (handoff_id,) = side_effects.created
    handoff = handoff_row(read, str(handoff_id))
    assert (handoff.session_id, handoff.priority, handoff.target_user_id) == (
        ids.alex_session,
        "high",
        ids.users["sam"],
    )
    # Committed with it: the live push, an email to each teammate who takes escalations,
    # and the AI assessment (the account has no webhooks or PSA connection).
    assert side_effects.kinds_of(handoff_id) == ["assessment", "email", "email", "email", "live", "timer"]
    emailed = {j.recipient for j in side_effects.jobs if j.kind == "email"}
    assert emailed == {world.users[n].email for n in ["sam", "riley", "morgan"]}

    outcome = await fire(alex, ids, "session.resolve")
    assert outcome.successes == ["Session resolved"]
    assert read(lambda db: db.get(SupportSession, ids.alex_session)).status == "resolved"


async def test_admin_manages_users(browser, world, ids, read):
    riley = await signed_in_tab(browser, world, "riley")
    await riley.fire(UsersAdminState, "load", path="/admin/users")
    admin = await riley.get(UsersAdminState)
    assert admin.allowed and {u["name"] for u in admin.users} >= {"Alex Kim", "Morgan Lee"}
    assert all("Contoso" not in u["email"] and "contoso" not in u["email"] for u in admin.users)

    outcome = await riley.fire(
        UsersAdminState, "change_role", path="/admin/users", user_id=str(ids.users["sam"]), role="viewer"
    )
    assert outcome.successes == ["Role changed"]
    assert user_row(read, ids.users["sam"]).account_role == "viewer"

    outcome = await fire(
        riley,
        ids,
        "admin.add_user",
        form_data={**ACTIONS["admin.add_user"][3](ids)["form_data"], "role": "engineer"},
    )
    assert outcome.successes == ["User added"]
    added = read(lambda db: db.exec(select(User).where(User.email == "eve@northwind.example")).one())
    assert (added.account_id, added.account_role) == (world.northwind.id, "engineer")


async def test_a_push_never_waits_forever_on_a_held_room_lock(browser, world, ids, monkeypatch, caplog):
    riley = await _queue_tab(browser, world, "riley")
    monkeypatch.setattr(realtime, "PUSH_WAIT_SECONDS", 0.2)
    scope = QueueScope(world.northwind.id, world.users["riley"].team_id)
    async with realtime.hub.queue_lock(scope):
        await _push_created(browser, world, ids)
    assert len(_pushed(browser, riley, QueueState)) == 1
    assert f"live push to {scope.room} went ahead without waiting for its lock" in caplog.text
