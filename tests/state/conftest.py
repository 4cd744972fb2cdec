"""Drive the Reflex state classes the way the server does, without a browser or a server.

A `Tab` is one browser tab: a client token whose state tree lives in a
`StateManagerMemory`. `Tab.fire` runs one event like Reflex's event processor
(`BaseStateEventProcessor._execute_event`): lock the tree with its linked shared
states, apply the event's router data (the page the browser says it is on), then
`process_event` the handler, which transforms the payload, runs the handler and
chains what it returns or yields. The deltas and frontend events the browser would
receive are recorded, so a test sees exactly what reaches the client.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState, State
from reflex_base.event import Event
from reflex_base.event.context import EventContext
from reflex_base.event.processor.base_state_processor import process_event
from reflex_base.registry import RegistrationContext
from reflex_base.utils.format import json_dumps
from sqlalchemy import Engine
from sqlmodel import Session

from escalation_app import routes
from escalation_app.domain import outbox
from escalation_app.domain.auth import start_auth_session
from escalation_app.domain.outbox import JobKind, JobView
from escalation_app.services import realtime
from escalation_app.state.base import TOKEN_COOKIE
from tests.conftest import app_uses_database
from tests.factories import World

ORIGIN = "http://localhost:3000"
# The app's event namespace, as behind a path prefix: pushes must use it, not "/_event".
NAMESPACE = "/desk/_event"
BACKEND_HOST = "localhost:8000"
ROUTE_PATTERNS = [
    routes.SESSION_HISTORY,
    routes.SESSION_DETAIL,
    routes.HANDOFF,
    routes.ESCALATIONS,
    routes.SESSIONS,
    routes.ADMIN_USERS,
    routes.LOGIN,
]
# `refs['__toast']?.["error"]("Handoff not found.")`: the toast call rx.toast.* compiles to.
TOAST_CALL = re.compile(r"""refs\['__toast'\]\?\.\["(?P<level>\w+)"\]\((?P<message>"(?:[^"\\]|\\.)*")""")


def route_pattern(path: str) -> str:
    """The route a concrete path matches ("/handoffs/abc" -> "/handoffs/[handoff_id]")."""
    parts = path.strip("/").split("/")
    for pattern in ROUTE_PATTERNS:
        pattern_parts = pattern.strip("/").split("/")
        if len(pattern_parts) == len(parts) and all(
            p.startswith("[") or p == q for p, q in zip(pattern_parts, parts, strict=True)
        ):
            return pattern
    return path


@dataclasses.dataclass
class Outcome:
    """What the browser received for one event."""

    events: list[Event]
    deltas: list[dict[str, Any]]

    @property
    def toasts(self) -> list[tuple[str, str]]:
        """(level, message) of every toast, in order."""
        found = []
        for event in self.events:
            if event.name == "_call_function":
                match = TOAST_CALL.search(str(event.payload.get("function", "")))
                if match:
                    found.append((match["level"], json.loads(match["message"])))
        return found

    @property
    def errors(self) -> list[str]:
        return [message for level, message in self.toasts if level == "error"]

    @property
    def successes(self) -> list[str]:
        return [message for level, message in self.toasts if level == "success"]

    @property
    def redirects(self) -> list[str]:
        return [str(e.payload["path"]) for e in self.events if e.name == "_redirect"]

    def wire_text(self) -> str:
        """Everything this event sent to the browser, as JSON."""
        return json_dumps({"deltas": self.deltas, "events": [dataclasses.asdict(e) for e in self.events]})


class RecordingSockets:
    """The socket.io server's room calls, recorded: which sockets are in which room, what each emit reached."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.sent: list[tuple[str, frozenset[str], dict]] = []  # (room, its sockets then, payload)
        self.manager = SimpleNamespace(is_connected=lambda sid, namespace: True)

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        assert namespace == NAMESPACE, namespace
        self.rooms.setdefault(room, set()).add(sid)

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        assert namespace == NAMESPACE, namespace
        self.rooms.get(room, set()).discard(sid)

    async def emit(self, event: str, data: dict, to: str, namespace: str | None = None) -> None:
        assert namespace == NAMESPACE, namespace
        self.sent.append((to, frozenset(self.rooms.get(to, set())), json.loads(json_dumps(data))))

    def reached(self, sid: str) -> list[dict]:
        """Every payload pushed to a room `sid` was in."""
        return [payload for _room, sids, payload in self.sent if sid in sids]


class Browser:
    """Tabs sharing one in-memory state manager, and one recorded socket.io server for live rooms."""

    def __init__(self, db: Session):
        self.db = db
        self.manager = StateManagerMemory()
        self.tabs: list[Tab] = []
        self.sockets = RecordingSockets()
        self.registry = RegistrationContext.ensure_context().fork()
        self.registry._set_app(
            SimpleNamespace(event_namespace=SimpleNamespace(namespace=NAMESPACE), sio=self.sockets)
        )

    def tab(self) -> Tab:
        tab = Tab(self)
        self.tabs.append(tab)
        return tab

    async def close(self) -> None:
        await self.manager.close()


class Tab:
    """One browser tab (one client token) of the app."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.client_token = str(uuid.uuid4())
        # The socket.io session id the server would see: live rooms are kept per socket.
        self.sid = f"sid-{uuid.uuid4().hex}"
        self.outcomes: list[Outcome] = []
        self.cookie_token = ""

    def _context(self, outcome: Outcome) -> EventContext:
        async def emit_delta(token: str, delta: Any) -> None:
            assert token == self.client_token
            outcome.deltas.append(dict(delta))

        async def emit_event(token: str, *events: Event) -> None:
            assert token == self.client_token
            outcome.events.extend(events)

        return EventContext(
            token=self.client_token,
            state_manager=self.browser.manager,
            enqueue_impl=emit_event,
            emit_delta_impl=emit_delta,
            emit_event_impl=emit_event,
        )

    async def set_cookie(self, token: str) -> None:
        """What the browser's HttpOnly sign-in cookie says: the websocket handshake carries it.

        (A new cookie reaches the server on the next connection; the tab's events carry
        it in their headers from now on, as a reconnect's would.)
        """
        self.cookie_token = token

    async def sign_in_as(self, user) -> str:
        """Start a server-side sign-in for `user` (a User row) and put its token in the cookie."""
        token = start_auth_session(db=self.browser.db, user=user)
        await self.set_cookie(token)
        return token

    async def fire(
        self, state_cls: type[BaseState], handler: str, path: str = "/", **payload: Any
    ) -> Outcome:
        """Send one event from a page at `path`, with any (possibly crafted) arguments."""
        # The test's own DB session must not hold SQLite's write lock while the handler runs.
        self.browser.db.commit()
        outcome = Outcome(events=[], deltas=[])
        event_handler = state_cls.event_handlers[handler]
        registered = RegistrationContext.set(self.browser.registry)
        try:
            await self._process(state_cls, event_handler, path, payload, outcome)
        finally:
            RegistrationContext.reset(registered)
        self.outcomes.append(outcome)
        return outcome

    async def _process(self, state_cls, event_handler, path: str, payload: dict, outcome: Outcome) -> None:
        manager = self.browser.manager
        with self._context(outcome):
            async with manager.modify_state_with_links(
                BaseStateToken(ident=self.client_token, cls=state_cls)
            ) as root:
                router_data = {
                    "pathname": route_pattern(path),
                    "asPath": path,
                    "query": {},
                    "headers": {
                        "origin": ORIGIN,
                        "host": BACKEND_HOST,
                        **({"cookie": f"{TOKEN_COOKIE}={self.cookie_token}"} if self.cookie_token else {}),
                    },
                    "token": self.client_token,
                    "sid": self.sid,
                }
                merged = root._update_router_vars(router_data, root.router_data)
                if merged != root.router_data:
                    root.router_data = merged
                substate = await root.get_state(state_cls)
                await process_event(
                    handler=event_handler,
                    payload=payload,
                    state=substate,
                    root_state=root._get_root_state(),
                )

    async def hydrate(self, path: str = "/") -> Outcome:
        """A page reload: the full state snapshot the browser receives."""
        return await self.fire(State, "hydrate", path=path)

    async def root(self) -> State:
        return await self.browser.manager.get_state(BaseStateToken(ident=self.client_token, cls=State))

    async def get(self, state_cls: type[BaseState]) -> Any:
        """This tab's instance of `state_cls`, to read its vars."""
        return await (await self.root()).get_state(state_cls)

    async def snapshot(self) -> dict[str, dict[str, Any]]:
        """The whole state tree of this tab, as `state.dict()` gives it (every public var)."""
        return (await self.root()).dict()

    def live_rooms(self) -> set[str]:
        """The socket.io rooms this tab's socket is in (empty when none)."""
        return {room for room, sids in self.browser.sockets.rooms.items() if self.sid in sids}


@pytest.fixture
def app_database(backend_url) -> Iterator[str]:
    """Point the app's own engine (`session_scope()`) at this backend's test database."""
    with app_uses_database(backend_url):
        yield backend_url


@pytest.fixture
def world(db, app_database) -> World:
    """The demo accounts, loaded into a clean database."""
    world = World(db)
    db.commit()
    return world


@dataclasses.dataclass
class SideEffects:
    """The outbox jobs the state layer's commits added (live push, email, webhooks, PSA, AI), in order."""

    jobs: list[JobView] = dataclasses.field(default_factory=list)

    def live(self, event: str) -> list[JobView]:
        """The live pushes of `event` ("created", "claimed", "assessed")."""
        return [j for j in self.jobs if j.kind == JobKind.LIVE and j.payload.get("event") == event]

    @property
    def created(self) -> list[uuid.UUID]:
        """The handoffs whose creation was committed (one live push each)."""
        return [j.handoff_id for j in self.live("created")]

    @property
    def claimed(self) -> list[uuid.UUID]:
        """The handoffs whose claim was committed (one live push each)."""
        return [j.handoff_id for j in self.live("claimed")]

    def kinds_of(self, handoff_id: uuid.UUID | str) -> list[str]:
        """The kinds of the jobs committed for one handoff, sorted."""
        return sorted(j.kind for j in self.jobs if str(j.handoff_id) == str(handoff_id))


@pytest.fixture
def side_effects() -> Iterator[SideEffects]:
    """Record what the outbox is told after each commit; nothing runs unless a test runs it."""
    recorded = SideEffects()
    outbox.set_commit_listener(recorded.jobs.extend)
    try:
        yield recorded
    finally:
        outbox.set_commit_listener(None)


async def run_live_jobs(browser: Browser, jobs: list[JobView]) -> None:
    """Run live-push jobs through their real handler, as the committing process does, with
    this browser's recorded socket.io server as the app's."""
    # The test's own DB session must not hold SQLite's write lock while the push reads.
    browser.db.commit()
    registered = RegistrationContext.set(browser.registry)
    try:
        for job in jobs:
            assert job.kind == JobKind.LIVE, job.kind
            assert await realtime.run_live_job(job) == "published"
    finally:
        RegistrationContext.reset(registered)


@pytest.fixture
async def browser(world, side_effects) -> AsyncIterator[Browser]:
    browser = Browser(world.db)
    yield browser
    await browser.close()


@pytest.fixture
def read(engine: Engine):
    """Read the database through a fresh session (never the test's own, possibly stale, one)."""

    def _read(fn):
        with Session(engine, expire_on_commit=False) as db:
            return fn(db)

    return _read
