"""Who is looking: "Riley is viewing" on a handoff screen and on its queue card, live.

Driven like the server drives the state classes (tests/state/conftest.py's tabs), with a
recorded socket.io server: what each tab's page holds is worked out from its own
handlers' deltas and the pushes to the rooms its socket was in, in the order they were
sent. Time comes from the test's clock. The two-worker tests share a real Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio
from reflex_base.constants.state import FIELD_MARKER
from reflex_base.registry import RegistrationContext
from reflex_base.utils.format import json_dumps
from sqlmodel import select

from escalation_app.domain.models import SessionHandoff
from escalation_app.services import presence, realtime
from escalation_app.services.presence import MemoryBoard, RedisBoard
from escalation_app.services.realtime import CLAIMED, LiveHub, QueueScope, handoff_room
from escalation_app.state.auth import LoginState  # noqa: F401  (registers the whole state tree)
from escalation_app.state.base import AppState
from escalation_app.state.handoff import HandoffState
from escalation_app.state.queue import QueueState
from tests.conftest import require_or_skip
from tests.factories import World
from tests.state.conftest import NAMESPACE, Browser, Outcome, RecordingSockets, Tab

REDIS_URL = "redis://127.0.0.1:6379"


# --------------------------------------------------------------------------- harness


class Clock:
    """The hubs' time: moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sockets(RecordingSockets):
    """One worker's socket.io server: rooms, what each emit reached, and sockets that went away."""

    def __init__(self, timeline: list) -> None:
        super().__init__()
        self.timeline = timeline
        self.gone: set[str] = set()
        self.manager = SimpleNamespace(is_connected=lambda sid, namespace: sid not in self.gone)

    async def emit(self, event: str, data: dict, to: str, namespace: str | None = None) -> None:
        await super().emit(event, data, to, namespace)
        self.timeline.append((frozenset(self.rooms.get(to, set())), self.sent[-1][2]["delta"], True))

    def disconnect(self, sid: str) -> None:
        """The tab closed: socket.io takes the socket out of every room."""
        self.gone.add(sid)
        for sids in self.rooms.values():
            sids.discard(sid)


class Worker:
    """One backend worker: its socket.io server and its hub, on a shared board or its own memory."""

    def __init__(self, browser: PresenceBrowser, board) -> None:
        self.sockets = Sockets(browser.timeline)
        self.registry = RegistrationContext.ensure_context().fork()
        self.registry._set_app(
            SimpleNamespace(event_namespace=SimpleNamespace(namespace=NAMESPACE), sio=self.sockets)
        )
        self.hub = LiveHub(server=self.sockets, board=board, announce=browser.announce, clock=browser.clock)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Code that runs on this worker (its handlers and its lifespan tasks)."""
        token = RegistrationContext.set(self.registry)
        try:
            yield
        finally:
            RegistrationContext.reset(token)

    async def sweep(self) -> None:
        with self.running():
            await self.hub.sweep()


class PresenceBrowser(Browser):
    """Tabs on one or more workers; what each tab's page shows, from everything it received."""

    def __init__(self, db, clock: Clock, monkeypatch) -> None:
        super().__init__(db)
        self.clock = clock
        # (sockets reached, delta, pushed to a room), in the order sent.
        self.timeline: list[tuple[frozenset[str], dict, bool]] = []
        self.workers: list[Worker] = []
        self._monkeypatch = monkeypatch

    def worker(self, board=None) -> Worker:
        worker = Worker(self, board if board is not None else MemoryBoard())
        self.workers.append(worker)
        return worker

    async def announce(self, account_id: int, kind: str, handoff_id: str) -> None:
        """The channel between workers: every worker delivers every change to its own tabs."""
        for worker in self.workers:
            with worker.running():
                await worker.hub.deliver({"account_id": account_id, "kind": kind, "handoff_id": handoff_id})

    def tab_on(self, worker: Worker) -> LiveTab:
        tab = LiveTab(self, worker)
        self.tabs.append(tab)
        return tab


class LiveTab(Tab):
    """A tab whose socket is held by one worker."""

    def __init__(self, browser: PresenceBrowser, worker: Worker) -> None:
        super().__init__(browser)
        self.worker = worker

    def _context(self, outcome: Outcome):
        context = super()._context(outcome)
        own = context.emit_delta_impl

        async def emit_delta(token: str, delta: Any) -> None:
            await own(token, delta)
            self.browser.timeline.append((frozenset({self.sid}), json.loads(json_dumps(delta)), False))

        return dataclasses.replace(context, emit_delta_impl=emit_delta)

    async def fire(self, state_cls, handler: str, path: str = "/", **payload: Any) -> Outcome:
        # The handler runs on this tab's worker: its hub is the one `realtime.hub` names.
        self.browser._monkeypatch.setattr(realtime, "hub", self.worker.hub)
        self.browser.registry = self.worker.registry
        return await super().fire(state_cls, handler, path=path, **payload)

    def shows(self, state_cls: type, var: str) -> Any:
        """The value of `var` on this tab's page: the last delta that reached it and set it."""
        name, key = state_cls.get_full_name(), f"{var}{FIELD_MARKER}"
        value = None
        for sids, delta, _pushed in self.browser.timeline:
            if self.sid in sids and key in delta.get(name, {}):
                value = delta[name][key]
        return value

    def names_viewing(self, handoff_id: str, *, on_queue: bool = False) -> list[str]:
        """The "… is viewing" names this page shows for a handoff (its own user left out)."""
        rows = self.shows(QueueState, "viewing") if on_queue else self.shows(HandoffState, "viewers")
        return [
            r["name"] for r in rows or [] if r["handoff_id"] == handoff_id and r["user_id"] != self.user_id
        ]

    def live_rooms(self) -> set[str]:
        return {room for room, sids in self.worker.sockets.rooms.items() if self.sid in sids}

    def received(self) -> str:
        """Everything pushed to rooms this tab was in, as JSON."""
        return json.dumps(
            [delta for sids, delta, pushed in self.browser.timeline if pushed and self.sid in sids]
        )

    user_id = ""

    async def sign_in_as(self, user) -> str:
        self.user_id = str(user.id)
        return await super().sign_in_as(user)

    async def open_handoff(self, handoff_id: str) -> Outcome:
        return await self.fire(HandoffState, "load", path=f"/handoffs/{handoff_id}")

    async def open_queue(self) -> Outcome:
        return await self.fire(QueueState, "load", path="/escalations")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def people(world, clock, monkeypatch) -> AsyncIterator[PresenceBrowser]:
    browser = PresenceBrowser(world.db, clock, monkeypatch)
    yield browser
    await browser.close()


@pytest.fixture
def handoffs(world: World) -> dict[str, str]:
    """Unclaimed handoffs of the demo data: Northwind's escalation and park, Contoso's escalation."""
    rows = world.db.exec(select(SessionHandoff).where(SessionHandoff.claimed_by_id.is_(None))).all()

    def first(account_id: int, intent: str) -> str:
        return next(str(h.id) for h in rows if h.account_id == account_id and h.intent == intent)

    return {
        "nw": first(world.northwind.id, "escalate"),
        "nw_park": first(world.northwind.id, "park"),
        "cs": first(world.contoso.id, "escalate"),
    }


async def signed_in(people: PresenceBrowser, worker: Worker, world: World, name: str) -> LiveTab:
    tab = people.tab_on(worker)
    await tab.sign_in_as(world.users[name])
    return tab


def pushes_to(worker: Worker, room: str) -> list[dict]:
    return [payload["delta"] for to, _sids, payload in worker.sockets.sent if to == room]


# --------------------------------------------------------------------------- one worker


async def test_a_handoff_screen_shows_on_the_queue_card_and_on_other_screens_live(people, world, handoffs):
    worker = people.worker()
    morgan_queue = await signed_in(people, worker, world, "morgan")
    assert not (await morgan_queue.open_queue()).errors
    sam_screen = await signed_in(people, worker, world, "sam")
    await sam_screen.open_handoff(handoffs["nw"])
    # Sam alone: Morgan's card says so, Sam's own screen names nobody.
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == ["Sam Patel"]
    assert sam_screen.names_viewing(handoffs["nw"]) == []

    riley = await signed_in(people, worker, world, "riley")
    sent_before = len(worker.sockets.sent)
    outcome = await riley.open_handoff(handoffs["nw"])
    assert not outcome.errors
    # Riley's own read names Sam; Sam's screen and Morgan's card get Riley without a reload.
    assert riley.names_viewing(handoffs["nw"]) == ["Sam Patel"]
    assert sam_screen.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen", "Sam Patel"]
    # One push per room for the change, whatever the number of tabs in it.
    new = worker.sockets.sent[sent_before:]
    assert sorted(to for to, _sids, _payload in new) == sorted(
        [handoff_room(handoffs["nw"]), QueueScope(world.northwind.id, world.users["morgan"].team_id).room]
    )
    # Cards of other handoffs name nobody; a second tab of Riley's still shows one Riley.
    assert morgan_queue.names_viewing(handoffs["nw_park"], on_queue=True) == []
    second = people.tab_on(worker)
    await second.sign_in_as(world.users["riley"])
    await second.open_handoff(handoffs["nw"])
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen", "Sam Patel"]


async def test_viewing_clears_on_leaving_closing_and_signing_out(people, world, handoffs):
    worker = people.worker()
    morgan = await signed_in(people, worker, world, "morgan")
    await morgan.open_handoff(handoffs["nw"])
    morgan_queue = await signed_in(people, worker, world, "morgan")
    await morgan_queue.open_queue()

    # Riley navigates from the screen to the queue (the same socket, another page).
    riley = await signed_in(people, worker, world, "riley")
    await riley.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    await riley.open_queue()
    assert morgan.names_viewing(handoffs["nw"]) == []
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == []

    # Sam closes his tab: gone at the next sweep (every second), not at the next push.
    sam = await signed_in(people, worker, world, "sam")
    await sam.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Sam Patel"]
    worker.sockets.disconnect(sam.sid)
    await worker.sweep()
    assert morgan.names_viewing(handoffs["nw"]) == []
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == []

    # Alex goes to a page that follows no handoff (the bell's load leaves the page's rooms).
    from escalation_app.state.bell import BellState

    alex = await signed_in(people, worker, world, "alex")
    await alex.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Alex Kim"]
    await alex.fire(BellState, "load", path="/sessions")
    assert morgan.names_viewing(handoffs["nw"]) == []

    # Riley again, then signs out.
    await riley.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    await riley.fire(AppState, "sign_out", path=f"/handoffs/{handoffs['nw']}")
    assert morgan.names_viewing(handoffs["nw"]) == []


async def test_a_sign_in_ended_elsewhere_leaves_at_the_next_heartbeat(people, world, handoffs, clock):
    from escalation_app.domain.auth import end_auth_session

    worker = people.worker()
    morgan = await signed_in(people, worker, world, "morgan")
    await morgan.open_handoff(handoffs["nw"])
    riley = people.tab_on(worker)
    token = await riley.sign_in_as(world.users["riley"])
    await riley.open_handoff(handoffs["nw"])
    await worker.sweep()  # the first heartbeat: both still signed in
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]

    end_auth_session(db=world.db, token=token)  # signed out in another tab
    world.db.commit()
    clock.advance(presence.HEARTBEAT_SECONDS - 1)
    await worker.sweep()
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]  # not a heartbeat yet
    clock.advance(1)
    await worker.sweep()
    assert morgan.names_viewing(handoffs["nw"]) == []
    assert riley.sid not in worker.hub.tabs


async def test_viewers_and_other_accounts_never_appear_and_never_see(people, world, handoffs):
    worker = people.worker()
    morgan = await signed_in(people, worker, world, "morgan")
    await morgan.open_handoff(handoffs["nw"])
    morgan_queue = await signed_in(people, worker, world, "morgan")
    await morgan_queue.open_queue()
    jordan_queue = await signed_in(people, worker, world, "jordan")  # Contoso's admin
    await jordan_queue.open_queue()
    casey = await signed_in(people, worker, world, "casey")  # Contoso's engineer
    await casey.open_handoff(handoffs["cs"])

    # Contoso's admin aims at Northwind's handoff: not found, and nobody sees him.
    jordan = await signed_in(people, worker, world, "jordan")
    outcome = await jordan.open_handoff(handoffs["nw"])
    assert (await jordan.get(HandoffState)).found is False
    assert jordan.live_rooms() == {realtime.user_room(world.users["jordan"].id)}
    # Northwind's viewer (read-only role) reads the handoff but neither appears nor gets pushes.
    val = await signed_in(people, worker, world, "val")
    outcome = await val.open_handoff(handoffs["nw"])
    assert not outcome.errors and (await val.get(HandoffState)).found is True
    assert val.live_rooms() == set()
    riley = await signed_in(people, worker, world, "riley")
    await riley.open_handoff(handoffs["nw"])

    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen"]
    assert "Casey" not in morgan_queue.received() + morgan.received()
    assert "Jordan" not in morgan_queue.received() + morgan.received()
    # Contoso's queue names Casey on its own card and nothing of Northwind's.
    assert jordan_queue.names_viewing(handoffs["cs"], on_queue=True) == ["Casey Diaz"]
    for name in ("Riley", "Morgan", "Val", handoffs["nw"]):
        assert name not in jordan_queue.received() + casey.received() + jordan.received()
    assert val.received() == "[]"
    # Nor does the viewer's own read of the screen or the queue name anyone.
    assert (await val.get(HandoffState)).viewers == []
    await val.open_queue()
    assert (await val.get(QueueState)).viewing == []
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen"]
    # A positive control: the same wire check finds Northwind's names where they belong.
    assert "Riley Chen" in morgan_queue.received()


async def test_picking_up_a_card_someone_is_viewing_works_and_viewing_goes_on(people, world, handoffs, read):
    worker = people.worker()
    riley = await signed_in(people, worker, world, "riley")
    await riley.open_handoff(handoffs["nw"])
    morgan = await signed_in(people, worker, world, "morgan")
    await morgan.open_queue()
    assert morgan.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen"]

    outcome = await morgan.fire(QueueState, "pick_up", path="/escalations", handoff_id=handoffs["nw"])
    assert not outcome.errors
    assert outcome.redirects == [f"/handoffs/{handoffs['nw']}"]
    row = read(lambda db: db.get(SessionHandoff, uuid.UUID(handoffs["nw"])))
    assert row.claimed_by_id == world.users["morgan"].id
    await morgan.open_handoff(handoffs["nw"])
    # The claim's push ticks the open screens; they re-read and still name each other.
    await people.announce(world.northwind.id, CLAIMED, handoffs["nw"])
    await riley.fire(HandoffState, "refresh", path=f"/handoffs/{handoffs['nw']}")
    assert (await riley.get(HandoffState)).claimed_by == "Morgan Lee"
    assert riley.names_viewing(handoffs["nw"]) == ["Morgan Lee"]
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]


# --------------------------------------------------------------------------- several workers


@pytest.fixture
async def shared_board() -> AsyncIterator[RedisBoard]:
    """A board on the real Redis, under a key prefix of this test's own."""
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        require_or_skip(f"Redis not reachable at {REDIS_URL}: {error}")
    prefix = f"test-presence-{uuid.uuid4().hex}"
    yield RedisBoard(client, prefix=prefix)
    async for key in client.scan_iter(f"{prefix}:*"):
        await client.delete(key)
    await client.aclose()


async def test_viewing_crosses_workers_and_a_dead_workers_tabs_expire(
    people, world, handoffs, clock, shared_board
):
    one, two = people.worker(shared_board), people.worker(shared_board)
    morgan_queue = await signed_in(people, two, world, "morgan")
    await morgan_queue.open_queue()
    morgan = await signed_in(people, two, world, "morgan")
    await morgan.open_handoff(handoffs["nw"])
    riley = await signed_in(people, one, world, "riley")
    await riley.open_handoff(handoffs["nw"])
    # Riley's socket is on worker one; Morgan's tabs on worker two see her, and she sees Morgan.
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen"]
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    assert riley.names_viewing(handoffs["nw"]) == ["Morgan Lee"]

    # Riley leaves through worker one: gone on worker two at once.
    await riley.open_queue()
    assert morgan.names_viewing(handoffs["nw"]) == []
    await riley.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]

    # Worker one dies without a word. Worker two's heartbeats keep Morgan, and drop Riley
    # once her entry is past its expiry.
    people.workers.remove(one)
    await two.sweep()
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    clock.advance(presence.TTL_SECONDS - 1)
    await two.sweep()
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    clock.advance(presence.HEARTBEAT_SECONDS)
    await two.sweep()
    assert morgan.names_viewing(handoffs["nw"]) == []
    assert morgan_queue.names_viewing(handoffs["nw"], on_queue=True) == []
    # Morgan's own entry was refreshed all along: a new tab on worker two still sees her.
    sam = await signed_in(people, two, world, "sam")
    await sam.open_handoff(handoffs["nw"])
    assert sam.names_viewing(handoffs["nw"]) == ["Morgan Lee"]


async def test_a_worker_that_stops_withdraws_its_tabs_at_once(people, world, handoffs, shared_board):
    one, two = people.worker(shared_board), people.worker(shared_board)
    morgan = await signed_in(people, two, world, "morgan")
    await morgan.open_handoff(handoffs["nw"])
    riley = await signed_in(people, one, world, "riley")
    await riley.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]
    with one.running():
        await one.hub.withdraw()
    assert morgan.names_viewing(handoffs["nw"]) == []
    # Her browser reconnects to worker two and re-opens the screen: back again.
    again = people.tab_on(two)
    again.user_id = str(world.users["riley"].id)
    await again.set_cookie(riley.cookie_token)
    await again.open_handoff(handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"]) == ["Riley Chen"]


async def test_a_lost_entry_is_written_again_by_the_heartbeat(people, world, handoffs, clock, shared_board):
    worker = people.worker(shared_board)
    morgan = await signed_in(people, worker, world, "morgan")
    await morgan.open_queue()
    riley = await signed_in(people, worker, world, "riley")
    await riley.open_handoff(handoffs["nw"])
    await worker.sweep()
    assert morgan.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen"]

    # Redis lost the board (a restart without persistence); the next heartbeat puts it back.
    await shared_board.remove(world.northwind.id, [worker.hub._presence_key(riley.sid)])
    await people.announce(world.northwind.id, presence.PRESENCE, handoffs["nw"])
    assert morgan.names_viewing(handoffs["nw"], on_queue=True) == []
    clock.advance(presence.HEARTBEAT_SECONDS)
    await worker.sweep()
    assert morgan.names_viewing(handoffs["nw"], on_queue=True) == ["Riley Chen"]
