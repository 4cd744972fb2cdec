"""Who is looking: the people who have a handoff's screen open right now, across workers.

Presence informs, the claim decides: nothing here takes part in a Pick up.

A tab is written here only by `realtime.LiveHub.follow`, after the handoff screen's
server-side role check (the handoff is of the actor's account, and the actor is an
owner, admin or engineer: viewers follow no live room, so they neither appear nor see
who is looking). Each tab is one entry of its account's board, keyed by the worker and
socket that hold it, and carries an expiry that its worker refreshes while the socket
lives: a tab that leaves the screen, navigates away or disconnects is removed at once;
the entries of a worker that died without cleaning up expire.

Two boards with one interface:
- `RedisBoard` (several workers, with Reflex's Redis): one hash per account, a field per
  tab whose value holds the entry and its expiry (Redis 7.0 has no per-field TTL).
  Reading who looks at an account's handoffs is one HGETALL of a small hash.
- `MemoryBoard` (one worker, no Redis): the same entries in this process's memory.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

PRESENCE = "presence"
# A worker rewrites its tabs' entries this often; entries it stops refreshing (the
# worker died) are dropped by any other worker once they are older than the TTL.
HEARTBEAT_SECONDS = 5.0
TTL_SECONDS = 15.0
# How often a worker looks for sockets that have gone (closed tab, lost connection).
SWEEP_SECONDS = 1.0
KEY_PREFIX = "escalation-desk:presence"
# One handoff screen shows at most this many names (a room full of people says little more).
MAX_SHOWN = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """One tab on one handoff's screen: who, which handoff, and which queues show its card."""

    account_id: int
    handoff_id: str
    # The handoff's team: its card is on that team's queue and on the queues of users
    # without a team (None: a handoff of no team, on every queue of the account).
    team_id: int | None
    user_id: int
    name: str

    def dumps(self, until: float) -> str:
        return json.dumps({**dataclasses.asdict(self), "until": until})

    @classmethod
    def loads(cls, raw: str | bytes) -> tuple[Viewer, float]:
        data = json.loads(raw)
        until = float(data.pop("until"))
        return cls(**data), until


def on_queue(viewers: Iterable[Viewer], team_id: int | None) -> list[Viewer]:
    """The viewers of handoffs whose card is on `team_id`'s queue (None: the whole account's)."""
    return [v for v in viewers if team_id is None or v.team_id is None or v.team_id == team_id]


def rows(viewers: Iterable[Viewer]) -> list[dict[str, str]]:
    """What a page shows: one row per person and handoff (two tabs of one person show once).

    The same rows go to everyone in a room; each page leaves out its own user.
    """
    unique = {(v.handoff_id, v.user_id): v for v in viewers}
    ordered = sorted(unique.values(), key=lambda v: (v.handoff_id, v.name.casefold(), v.user_id))
    shown: dict[str, int] = {}
    result = []
    for v in ordered:
        shown[v.handoff_id] = shown.get(v.handoff_id, 0) + 1
        if shown[v.handoff_id] <= MAX_SHOWN:
            result.append({"handoff_id": v.handoff_id, "user_id": str(v.user_id), "name": v.name})
    return result


@dataclasses.dataclass(slots=True)
class Snapshot:
    """An account's board as read at one moment: live entries, and those past their expiry."""

    live: dict[str, Viewer]
    expired: dict[str, Viewer]


class MemoryBoard:
    """The board of a single worker: its own tabs, in memory."""

    def __init__(self) -> None:
        self._accounts: dict[int, dict[str, tuple[Viewer, float]]] = {}

    async def put(self, key: str, viewer: Viewer, until: float) -> None:
        self._accounts.setdefault(viewer.account_id, {})[key] = (viewer, until)

    async def remove(self, account_id: int, keys: Iterable[str]) -> None:
        entries = self._accounts.get(account_id, {})
        for key in keys:
            entries.pop(key, None)
        if not entries:
            self._accounts.pop(account_id, None)

    async def refresh(self, account_id: int, entries: dict[str, Viewer], until: float) -> set[str]:
        """Rewrite these entries with a new expiry; returns the keys that were missing."""
        board = self._accounts.setdefault(account_id, {})
        missing = {key for key in entries if key not in board}
        for key, viewer in entries.items():
            board[key] = (viewer, until)
        return missing

    async def read(self, account_id: int, now: float) -> Snapshot:
        snapshot = Snapshot(live={}, expired={})
        for key, (viewer, until) in self._accounts.get(account_id, {}).items():
            (snapshot.live if until >= now else snapshot.expired)[key] = viewer
        return snapshot


class RedisBoard:
    """The board shared by every worker: one Redis hash per account."""

    def __init__(self, redis: Any, prefix: str = KEY_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, account_id: int) -> str:
        return f"{self._prefix}:{int(account_id)}"

    async def put(self, key: str, viewer: Viewer, until: float) -> None:
        name = self._key(viewer.account_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(name, key, viewer.dumps(until))
            # The whole hash goes when no worker has refreshed any of it for a while.
            pipe.expire(name, int(TTL_SECONDS * 4))
            await pipe.execute()

    async def remove(self, account_id: int, keys: Iterable[str]) -> None:
        if keys := list(keys):
            await self._redis.hdel(self._key(account_id), *keys)

    async def refresh(self, account_id: int, entries: dict[str, Viewer], until: float) -> set[str]:
        if not entries:
            return set()
        name = self._key(account_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, viewer in entries.items():
                pipe.hset(name, key, viewer.dumps(until))
            pipe.expire(name, int(TTL_SECONDS * 4))
            added = await pipe.execute()
        return {key for key, new in zip(entries, added[:-1], strict=True) if new}

    async def read(self, account_id: int, now: float) -> Snapshot:
        snapshot = Snapshot(live={}, expired={})
        for raw_key, raw in (await self._redis.hgetall(self._key(account_id))).items():
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            try:
                viewer, until = Viewer.loads(raw)
            except (ValueError, TypeError, KeyError):
                snapshot.expired[key] = Viewer(account_id, "", None, 0, "")
                continue
            if viewer.account_id != account_id:
                continue
            (snapshot.live if until >= now else snapshot.expired)[key] = viewer
        return snapshot
