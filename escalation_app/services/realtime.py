"""Live updates: the server pushes; one read and one encoded packet per room.

Every tab that may receive the live feed joins socket.io rooms of the worker that holds
its socket, after its page's server-side role check:

- a **queue room** per team (`queue-<account>-<team>`, or `-all` for users without a
  team): the tabs on /escalations. When a handoff is created or claimed, the worker
  reads that team's queue once, checks in the same transaction that each member's
  sign-in still allows the feed (evicting any that does not), and sends the cards to
  the room as one Reflex state delta, encoded once. The tabs send nothing back.
- a **handoff room** per handoff: open handoff screens get a tick and re-read the
  handoff through their own role-checked handler (claimed or assessed elsewhere).
- a **user room** per user: when an escalation notifies a user, the worker reads that
  user's bell once (after the same sign-in check) and sends it to all their tabs.

Who is looking (`services/presence.py`): a handoff screen's tab is an entry of its
account's presence board from its role-checked load until it leaves, signs out or its
socket goes. Each change is announced like any other (kind `presence`, on the same
channel); every worker reads the account's board once per room and sends the handoff
room its viewers and each of the account's queue rooms the viewers of its cards.

Order: a tab's own queue or bell read (page load, reconnect, mark read) and the pushes
to its room take the same per-room lock, and each is on the socket before the lock is
released, so a tab never receives an older queue or bell after a newer one.

Several workers: with Reflex's Redis configured, a publish goes out on a Redis channel
and every worker delivers it to the sockets it holds. Publishing is an outbox job
(`run_live_job`) of the change's own transaction: a publish that fails is retried by
the outbox, and a push whose read fails (the database away) is tried again here until
it goes through, so open tabs converge on the database's truth after any fault.

Everything this module knows about Reflex (the socket.io server, the event namespace,
how a state delta is keyed) sits in `_Reflex`; the state classes a push updates
register themselves (`bind_views`), so services never import the state layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from reflex_base.constants.state import FIELD_MARKER

from escalation_app.domain import outbox
from escalation_app.domain.actors import Actor
from escalation_app.domain.auth import live_feed_members, token_digest
from escalation_app.domain.db import session_scope
from escalation_app.domain.handoffs import QueueCard, card_view, get_team_queue
from escalation_app.domain.models import User
from escalation_app.domain.notifications import notified_user_ids, read_bell
from escalation_app.services import presence, timing
from escalation_app.services.presence import PRESENCE, Viewer
from escalation_app.services.tasks import spawn

logger = logging.getLogger(__name__)

CHANNEL = "escalation-desk:live"
CREATED, CLAIMED, ASSESSED = "created", "claimed", "assessed"
# After the pick-up: a handoff ended, was released or reassigned (queues and its screens
# update); bell entries were written for the signal's `user_ids` (their bells update).
UPDATED, NOTIFIED = "updated", "notified"
QUEUE_KINDS = {CREATED, CLAIMED, UPDATED}
PUSH_WAIT_SECONDS = 5.0
# A push whose read failed is tried again after these waits (the last one repeats),
# for as long as its room has members.
PUSH_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
PUSH_RETRY_FOR_SECONDS = 30 * 60
# A fresh value per tick, so the page's effect keyed on it fires (the backend copy stays 0).
_ticks = itertools.count(1)


@dataclasses.dataclass(frozen=True, slots=True)
class QueueScope:
    """Who sees the same queue: one account's team (None: users with no team)."""

    account_id: int
    team_id: int | None

    @property
    def room(self) -> str:
        return f"queue-{self.account_id}-{'all' if self.team_id is None else self.team_id}"


@dataclasses.dataclass(slots=True)
class _Tab:
    """What one socket of this worker follows."""

    user_id: int
    digest: str = ""
    queue: QueueScope | None = None
    handoff_id: str = ""
    # Its entry in who-is-viewing while its page shows a handoff (see services/presence.py).
    viewing: Viewer | None = None

    def page_rooms(self) -> list[str]:
        """The rooms of what its page shows: the team's queue, or one handoff."""
        rooms = [self.queue.room] if self.queue is not None else []
        return rooms + ([handoff_room(self.handoff_id)] if self.handoff_id else [])

    def rooms(self) -> set[str]:
        return {user_room(self.user_id), *self.page_rooms()}


def handoff_room(handoff_id: str) -> str:
    return f"handoff-{handoff_id}"


def user_room(user_id: int) -> str:
    return f"user-{int(user_id)}"


class _Reflex:
    """The one adapter to Reflex internals: its socket.io server, namespace and delta keys."""

    EVENT = "event"

    @staticmethod
    def app():
        """The running Reflex app, or None where there is none (a script, a service test)."""
        from reflex_base.registry import RegistrationContext

        try:
            return RegistrationContext.get().app
        except Exception:  # no context here, or none with an app (a lifespan task, a script)
            pass
        # The served app has imported its module; anything else (a script, a worker
        # process, a test of a service) has no socket server, and importing the app here
        # would build a second one with whatever environment this process has.
        module = sys.modules.get("escalation_app.escalation_app")
        return getattr(module, "app", None)

    @classmethod
    def server(cls):
        """The app's socket.io server, or None where no websocket server runs."""
        app = cls.app()
        return app.sio if app is not None and app.event_namespace is not None else None

    @classmethod
    def namespace(cls) -> str:
        """The app's own event namespace (it follows any path prefix the app is served under)."""
        return cls.app().event_namespace.namespace

    @staticmethod
    def field(name: str) -> str:
        """A var's key in a Reflex delta."""
        return f"{name}{FIELD_MARKER}"

    @staticmethod
    def state_name(state_class: type) -> str:
        return state_class.get_full_name()


field = _Reflex.field


@dataclasses.dataclass(slots=True)
class _Views:
    """The full names of the state classes a push updates (set by `bind_views`)."""

    queue: str = ""
    bell: str = ""
    handoff: str = ""


views = _Views()


def bind_views(*, queue: type, bell: type, handoff: type) -> None:
    """Tell the pushes which state classes hold the queue cards, the bell and the handoff tick."""
    views.queue = _Reflex.state_name(queue)
    views.bell = _Reflex.state_name(bell)
    views.handoff = _Reflex.state_name(handoff)


class LiveHub:
    """This worker's rooms: who follows what, and the pushes to them.

    `server`, `board`, `announce` and `clock` are this worker's socket.io server, its
    presence board, how it tells every worker about a change, and the time (all default
    to the running app's; tests run two hubs side by side as two workers).
    """

    def __init__(self, *, server=None, board=None, announce=None, clock=time.time) -> None:
        self.tabs: dict[str, _Tab] = {}
        self._queue_locks: defaultdict[QueueScope, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._bell_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._presence_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Pushes waiting to be tried again, by room: at most one each (a push sends the truth).
        self._retrying: dict[str, asyncio.Task] = {}
        if server is not None:
            self._server = lambda: server
        self._board = board
        self._announce = announce
        self.clock = clock
        # This worker's part of every presence key: sockets of two workers never collide.
        self.instance = uuid.uuid4().hex[:12]
        self._next_heartbeat = 0.0
        # What each queue room last got of who is viewing (a change elsewhere sends nothing).
        self._viewing_sent: dict[QueueScope, list[dict[str, str]]] = {}

    # ------------------------------------------------------------------ membership

    _server = staticmethod(_Reflex.server)

    async def _enter(self, sid: str, room: str) -> None:
        if (sio := self._server()) is not None:
            await sio.enter_room(sid, room, namespace=_Reflex.namespace())

    async def _leave(self, sid: str, room: str) -> None:
        if (sio := self._server()) is not None:
            await sio.leave_room(sid, room, namespace=_Reflex.namespace())

    async def follow(
        self,
        sid: str,
        *,
        user_id: int,
        token: str,
        queue: QueueScope | None = None,
        handoff_id: str = "",
        viewing: Viewer | None = None,
        keep_page: bool = False,
    ) -> None:
        """Set what this tab follows: its user's bell, and the queue or handoff its page shows.

        Only for a tab whose actor passed the live-feed role check. `keep_page` keeps the
        page rooms a previous call set (the bell's load runs after the page's own).
        `viewing` is the tab's who-is-viewing entry on a handoff screen.
        """
        if not sid:
            return
        tab = self.tabs.get(sid)
        if tab is not None and tab.user_id != user_id:
            await self.forget(sid)
            tab = None
        if tab is None:
            tab = self.tabs[sid] = _Tab(user_id=user_id)
            await self._enter(sid, user_room(user_id))
        tab.digest = token_digest(token)
        if keep_page:
            return
        before = set(tab.page_rooms())
        tab.queue, tab.handoff_id = queue, handoff_id
        after = set(tab.page_rooms())
        for room in before - after:
            await self._leave(sid, room)
        for room in after - before:
            await self._enter(sid, room)
        was, tab.viewing = tab.viewing, viewing if handoff_id else None
        if tab.viewing != was:
            await self._viewing_moved(sid, was, tab.viewing)

    async def forget(self, sid: str) -> None:
        """This tab follows nothing any more (signed out, or no longer allowed the feed)."""
        tab = self.tabs.pop(sid, None)
        if tab is None:
            return
        for room in tab.rooms():
            await self._leave(sid, room)
        if tab.viewing is not None:
            await self._viewing_moved(sid, tab.viewing, None)

    async def prune(self) -> None:
        """Drop tabs whose socket has gone (socket.io has already taken them out of the rooms)."""
        if (sio := self._server()) is None:
            return
        namespace = _Reflex.namespace()
        gone = [sid for sid in self.tabs if not sio.manager.is_connected(sid, namespace)]
        for sid in gone:
            # Another prune (a push's, or the sweep's) may have taken it while this one waited.
            tab = self.tabs.pop(sid, None)
            if tab is not None and tab.viewing is not None:
                await self._viewing_moved(sid, tab.viewing, None)

    @asynccontextmanager
    async def queue_lock(self, scope: QueueScope) -> AsyncIterator[None]:
        """Held around a tab's own queue read until its delta is on the socket."""
        async with self._queue_locks[scope]:
            yield

    @asynccontextmanager
    async def bell_lock(self, user_id: int) -> AsyncIterator[None]:
        """Held around a tab's own bell read until its delta is on the socket."""
        async with self._bell_locks[user_id]:
            yield

    @asynccontextmanager
    async def presence_lock(self, handoff_id: str) -> AsyncIterator[None]:
        """Held around a handoff screen's own read of who is viewing until its delta is on the socket."""
        async with self._presence_locks[handoff_id]:
            yield

    # ------------------------------------------------------------------ who is viewing

    def board(self) -> presence.MemoryBoard | presence.RedisBoard:
        """Where the tabs on handoff screens are written: Redis with several workers, else memory."""
        if self._board is None:
            redis = _redis()
            self._board = presence.RedisBoard(redis) if redis is not None else presence.MemoryBoard()
        return self._board

    def _presence_key(self, sid: str) -> str:
        return f"{self.instance}:{sid}"

    async def _viewing_moved(self, sid: str, was: Viewer | None, now: Viewer | None) -> None:
        """A tab came onto a handoff screen, left it or moved on: write that, and tell every worker."""
        key = self._presence_key(sid)
        try:
            if now is not None:
                await self.board().put(key, now, self.clock() + presence.TTL_SECONDS)
            if was is not None and (now is None or now.account_id != was.account_id):
                await self.board().remove(was.account_id, [key])
        except Exception as error:
            # The heartbeat writes this worker's tabs again; a stale entry expires.
            logger.warning("who-is-viewing: the board did not take a change (%s)", type(error).__name__)
        for account_id, handoff_id in sorted({(v.account_id, v.handoff_id) for v in (was, now) if v}):
            await self._announce_presence(account_id, handoff_id)
        if was is not None and not any(tab.handoff_id == was.handoff_id for tab in self.tabs.values()):
            # No screen of that handoff left on this worker: its lock goes (one per handoff ever opened would pile up).
            lock = self._presence_locks.get(was.handoff_id)
            if lock is not None and not lock.locked():
                del self._presence_locks[was.handoff_id]

    async def _announce_presence(self, account_id: int, handoff_id: str) -> None:
        try:
            await (self._announce or publish)(account_id, PRESENCE, handoff_id)
        except Exception as error:
            # This worker's own tabs got it (see `publish`); the next change or heartbeat heals the rest.
            logger.warning(
                "who-is-viewing for handoff %s not announced (%s)", handoff_id, type(error).__name__
            )

    async def _viewers(self, account_id: int) -> list[Viewer]:
        return list((await self.board().read(account_id, self.clock())).live.values())

    async def viewers_of(
        self, account_id: int, handoff_id: str, *, strict: bool = False
    ) -> list[dict[str, str]]:
        """Who has this handoff's screen open (every page leaves out its own user).

        A page's own read never fails over this: without the board it shows nobody.
        """
        try:
            viewers = await self._viewers(account_id)
        except Exception as error:
            if strict:
                raise
            logger.warning("who-is-viewing could not be read (%s)", type(error).__name__)
            return []
        return presence.rows(v for v in viewers if v.handoff_id == str(handoff_id))

    async def queue_viewers(self, scope: QueueScope, *, strict: bool = False) -> list[dict[str, str]]:
        """Who has a handoff screen open, for the cards of this queue."""
        try:
            viewers = await self._viewers(scope.account_id)
        except Exception as error:
            if strict:
                raise
            logger.warning("who-is-viewing could not be read (%s)", type(error).__name__)
            return []
        return presence.rows(presence.on_queue(viewers, scope.team_id))

    async def _push_presence(self, handoff_id: str, account_id: int) -> None:
        """Send who is viewing to this handoff's room, and to each queue room of the account it changed."""
        if any(tab.handoff_id == handoff_id for tab in self.tabs.values()):
            room = handoff_room(handoff_id)
            async with _in_turn(self._presence_locks[handoff_id], room):
                viewers = await self.viewers_of(account_id, handoff_id, strict=True)
                await self._emit(room, {views.handoff: {field("viewers"): viewers}})
        for scope in self._scopes_of(account_id):
            async with _in_turn(self._queue_locks[scope], scope.room):
                viewing = await self.queue_viewers(scope, strict=True)
                if self._viewing_sent.get(scope) != viewing:
                    await self._emit(scope.room, {views.queue: {field("viewing"): viewing}})
                    self._viewing_sent[scope] = viewing

    async def withdraw(self) -> None:
        """This worker stops (a deploy, a restart): its tabs leave every board now, not at expiry.

        Their browsers reconnect to another worker and show up again from there.
        """
        leaving = [(sid, tab.viewing) for sid, tab in self.tabs.items() if tab.viewing is not None]
        for sid, viewing in leaving:
            if (tab := self.tabs.get(sid)) is not None:
                tab.viewing = None
            await self._viewing_moved(sid, viewing, None)

    async def sweep(self) -> None:
        """Every `presence.SWEEP_SECONDS`: tabs whose socket went leave now; and each heartbeat,
        the board is made true again (ended sign-ins leave, entries are refreshed, dead
        workers' entries are dropped)."""
        await self.prune()
        now = self.clock()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + presence.HEARTBEAT_SECONDS
            await self._heartbeat(now)

    async def _heartbeat(self, now: float) -> None:
        viewing: defaultdict[int, dict[str, str]] = defaultdict(dict)
        for sid, tab in self.tabs.items():
            if tab.viewing is not None:
                viewing[tab.viewing.account_id][sid] = tab.digest
        # A sign-in that ended (signed out elsewhere, idle, deactivated, made a viewer)
        # leaves every screen now, not when its tab next does something.
        for account_id, digests in viewing.items():
            try:
                allowed = await asyncio.to_thread(_allowed, account_id, set(digests.values()))
            except Exception as error:
                logger.warning("who-is-viewing: sign-ins not checked (%s)", type(error).__name__)
                continue
            await self._drop_unless(digests, allowed.__contains__)
        accounts = {tab.queue.account_id for tab in self.tabs.values() if tab.queue is not None}
        accounts |= {tab.viewing.account_id for tab in self.tabs.values() if tab.viewing is not None}
        until = now + presence.TTL_SECONDS
        for account_id in sorted(accounts):
            mine = {
                self._presence_key(sid): tab.viewing
                for sid, tab in self.tabs.items()
                if tab.viewing is not None and tab.viewing.account_id == account_id
            }
            try:
                missing = await self.board().refresh(account_id, mine, until)
                expired = (await self.board().read(account_id, now)).expired
                await self.board().remove(account_id, expired)
            except Exception as error:
                logger.warning("who-is-viewing heartbeat: board unavailable (%s)", type(error).__name__)
                continue
            changed = {mine[key].handoff_id for key in missing}
            changed |= {v.handoff_id for v in expired.values() if v.handoff_id}
            for handoff_id in sorted(changed):
                await self._announce_presence(account_id, handoff_id)

    # ------------------------------------------------------------------ delivery

    async def _emit(self, room: str, delta: dict[str, dict[str, Any]]) -> None:
        if (sio := self._server()) is None:
            return
        await sio.emit(_Reflex.EVENT, {"delta": delta, "events": []}, to=room, namespace=_Reflex.namespace())
        # The emit queues one send per member; let them reach the sockets before
        # whatever runs next (the next push must not overtake them).
        await asyncio.sleep(0)

    def _scopes_of(self, account_id: int) -> dict[QueueScope, list[str]]:
        scopes: dict[QueueScope, list[str]] = defaultdict(list)
        for sid, tab in self.tabs.items():
            if tab.queue is not None and tab.queue.account_id == account_id:
                scopes[tab.queue].append(sid)
        return scopes

    async def deliver(self, signal: dict[str, Any]) -> None:
        """Push one committed change to the tabs of this worker that follow it.

        A push that fails (its read, say, while the database is away) is logged and
        tried again later (`_retry_later`); the others of the same change still go out.
        """
        account_id = int(signal["account_id"])
        kind = signal["kind"]
        handoff_id = str(signal["handoff_id"])
        timing.stamp("push-start", kind=kind, handoff=handoff_id)
        await self.prune()
        pushes: list[tuple[Any, tuple]] = []
        if kind == PRESENCE:
            pushes.append((self._push_presence, (handoff_id, account_id)))
        if kind in QUEUE_KINDS:
            pushes += [
                (self._push_queue, (scope, sids)) for scope, sids in self._scopes_of(account_id).items()
            ]
        if kind in (CLAIMED, ASSESSED, UPDATED):
            tick = {views.handoff: {field("live_tick"): next(_ticks)}}
            pushes.append((self._emit, (handoff_room(handoff_id), tick)))
        if kind == CREATED:
            pushes.append((self._push_bells, (account_id, handoff_id)))
        if kind == NOTIFIED:
            user_ids = tuple(int(u) for u in signal.get("user_ids") or ())
            pushes.append((self._push_bells, (account_id, handoff_id, user_ids)))
        # In order, and one failing (a team's read, say) does not keep the others back.
        for push, args in pushes:
            try:
                await push(*args)
                timing.stamp(f"push-sent{push.__name__}", kind=kind, handoff=handoff_id)
            except Exception:
                logger.exception("live %s push for handoff %s failed; will try again", kind, handoff_id)
                self._retry_later(push, args)

    def _retry_later(self, push, args: tuple) -> None:
        """Try a failed push again until it goes through (one waiting retry per push target)."""
        key = f"{push.__name__}:{args[0]!r}"
        if key in self._retrying and not self._retrying[key].done():
            return  # the waiting retry reads the truth then, this change included

        async def again() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + PUSH_RETRY_FOR_SECONDS
            for attempt in itertools.count():
                await asyncio.sleep(PUSH_RETRY_SECONDS[min(attempt, len(PUSH_RETRY_SECONDS) - 1)])
                try:
                    await push(*args)
                    logger.info("live push %s went through on retry %d", key, attempt + 1)
                    return
                except Exception as error:
                    if loop.time() > deadline:
                        logger.error("live push %s gave up: %s", key, error)
                        return
                    logger.warning("live push %s failed again (%s)", key, type(error).__name__)

        self._retrying[key] = spawn(again(), name=f"live-retry-{key}")

    async def _drop_unless(self, digests: dict[str, str], allowed) -> None:
        for sid, digest in digests.items():
            if not allowed(digest):
                logger.info("live feed: dropping a tab whose sign-in no longer allows it")
                await self.forget(sid)

    async def _push_queue(self, scope: QueueScope, sids: list[str]) -> None:
        async with _in_turn(self._queue_locks[scope], scope.room):
            digests = {sid: self.tabs[sid].digest for sid in sids if sid in self.tabs}
            members, cards = await asyncio.to_thread(_read_queue, scope, set(digests.values()))
            await self._drop_unless(digests, lambda d: d in members and members[d] == scope.team_id)
            view = {field("cards"): [card_view(c) for c in cards], field("loaded"): True}
            await self._emit(scope.room, {views.queue: view})

    async def _push_bells(self, account_id: int, handoff_id: str, user_ids: tuple[int, ...] = ()) -> None:
        followed: defaultdict[int, list[str]] = defaultdict(list)
        for sid, tab in self.tabs.items():
            followed[tab.user_id].append(sid)
        if not followed:
            return
        for user_id in user_ids or await asyncio.to_thread(_notified, account_id, handoff_id):
            if user_id not in followed:
                continue
            async with _in_turn(self._bell_locks[user_id], user_room(user_id)):
                digests = {sid: self.tabs[sid].digest for sid in followed[user_id] if sid in self.tabs}
                allowed, bell = await asyncio.to_thread(
                    _read_user_bell, account_id, user_id, set(digests.values())
                )
                await self._drop_unless(digests, allowed.__contains__)
                if bell is not None:
                    view = {field(name): value for name, value in bell.items()}
                    await self._emit(user_room(user_id), {views.bell: view})


@asynccontextmanager
async def _in_turn(lock: asyncio.Lock, room: str) -> AsyncIterator[None]:
    """Take a room's lock for a push, but never wait on it forever.

    A tab's read holds it only until its delta is on the socket (milliseconds); should
    one ever hold it longer, the push goes ahead unordered rather than stall the room.
    """
    try:
        await asyncio.wait_for(lock.acquire(), PUSH_WAIT_SECONDS)
    except TimeoutError:
        logger.warning("live push to %s went ahead without waiting for its lock", room)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _read_queue(scope: QueueScope, digests: set[str]) -> tuple[dict[str, int | None], list[QueueCard]]:
    with session_scope() as db:
        members = live_feed_members(db=db, account_id=scope.account_id, digests=digests)
        return members, get_team_queue(db=db, account_id=scope.account_id, team_id=scope.team_id)


def _read_user_bell(account_id: int, user_id: int, digests: set[str]) -> tuple[set[str], dict | None]:
    with session_scope() as db:
        allowed = set(live_feed_members(db=db, account_id=account_id, digests=digests))
        user = db.get(User, user_id) if allowed else None
        if user is None:
            return allowed, None
        return allowed, read_bell(db, Actor.from_user(user))


def _allowed(account_id: int, digests: set[str]) -> set[str]:
    with session_scope() as db:
        return set(live_feed_members(db=db, account_id=account_id, digests=digests))


def _notified(account_id: int, handoff_id: str) -> list[int]:
    with session_scope() as db:
        return notified_user_ids(db=db, account_id=account_id, handoff_id=uuid.UUID(handoff_id))


hub = LiveHub()


# ---------------------------------------------------------------------- publishing


_publisher: Any = None


def _redis():
    """Reflex's Redis (a new client), or None when the app runs without it (one worker)."""
    from reflex.utils.prerequisites import get_redis

    return get_redis()


async def publish(
    account_id: int, kind: str, handoff_id: uuid.UUID | str, user_ids: list[int] | None = None
) -> None:
    """Tell every worker about a committed change. Raises if it could not be handed on.

    With Redis, the signal goes on the channel every worker listens to; if that fails
    this worker's own tabs still get it now, and the error reaches the outbox, which
    publishes again. Without Redis (one worker) this worker delivers it; a push that
    fails there is retried by the hub itself.
    """
    global _publisher
    signal = {"account_id": int(account_id), "kind": kind, "handoff_id": str(handoff_id)}
    if user_ids:
        signal["user_ids"] = [int(u) for u in user_ids]
    if _publisher is None:
        _publisher = _redis() or False
    if _publisher is False:
        await hub.deliver(signal)
        return
    try:
        await _publisher.publish(CHANNEL, json.dumps(signal))
    except Exception:
        logger.warning(
            "live update %s for handoff %s: Redis publish failed; this worker's tabs now", kind, handoff_id
        )
        await hub.deliver(signal)
        raise


async def run_live_job(job: outbox.JobView, engine=None) -> str:
    """The outbox job of a live push (`domain.effects.live`)."""
    if job.account_id is None:
        raise outbox.JobSkipped("No account")
    await publish(
        job.account_id,
        str(job.payload.get("event")),
        str(job.payload.get("handoff_id")),
        job.payload.get("user_ids"),
    )
    return "published"


async def run_relay() -> None:
    """With Redis (several workers): deliver what any worker publishes (a Reflex lifespan task)."""
    redis = _redis()
    if redis is None:
        return
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        await hub.deliver(json.loads(message["data"]))
                    except Exception:
                        logger.exception("live update could not be delivered: %r", message.get("data"))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("live relay lost Redis; reconnecting")
            await asyncio.sleep(1)


async def run_presence() -> None:
    """Keep who-is-viewing true on this worker: gone tabs leave, entries stay fresh (a lifespan task)."""
    try:
        while True:
            await asyncio.sleep(presence.SWEEP_SECONDS)
            try:
                await hub.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("who-is-viewing sweep failed; trying again")
    finally:
        # Shutting down: best effort, briefly (expiry covers the rest).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(hub.withdraw(), presence.SWEEP_SECONDS * 2)
