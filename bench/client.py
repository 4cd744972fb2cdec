"""A Reflex tab without a browser: python-socketio's AsyncClient speaking Reflex's wire protocol.

- connects to `/_event` with a fresh client token (uuid4) and the hydrate event in the
  socket.io CONNECT auth, exactly as the compiled frontend's `bootAuth` does; the
  HttpOnly sign-in cookie travels in the websocket handshake's `Cookie` header, as a
  browser sends it;
- on every delta, merges it into a local copy of the state (queue cards and the bell
  arrive pushed by the server; a queue tab sends nothing back, as in the browser);
- records every message with its receive time, so benches can wait for conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import socketio

from escalation_app.state.base import TOKEN_COOKIE, AppState
from escalation_app.state.bell import BellState
from escalation_app.state.queue import QueueState
from escalation_app.state.sessions import SessionDetailState

ROOT_STATE = AppState.get_full_name().split(".")[0]
FIELD = "_rx_state_"
BELL = BellState.get_full_name()
QUEUE = QueueState.get_full_name()
DETAIL = SessionDetailState.get_full_name()
HYDRATE = f"{ROOT_STATE}.hydrate_and_load"
PICK_UP = f"{QUEUE}.pick_up"
ESCALATE = f"{DETAIL}.escalate"


def router(path: str) -> dict:
    return {"pathname": path, "query": {}, "asPath": path}


class Msg:
    __slots__ = ("data", "size", "t", "tab")

    def __init__(self, t: float, data: Any, size: int, tab: Any = None):
        self.tab = tab
        self.t = t
        self.data = data
        self.size = size

    @property
    def delta(self) -> dict:
        return (self.data or {}).get("delta") or {} if isinstance(self.data, dict) else {}

    @property
    def events(self) -> list:
        return (self.data or {}).get("events") or [] if isinstance(self.data, dict) else []


class ReflexTab:
    """One browser tab on `path`, signed in with `auth_token`."""

    def __init__(
        self, url: str, auth_token: str, path: str, *, label: str = "", headers: dict[str, str] | None = None
    ):
        self.url = url
        # Extra handshake headers (e.g. an Origin); the cookie is added to them.
        self.headers = dict(headers or {})
        self.auth_token = auth_token
        self.path = path
        self.label = label
        self.token = str(uuid.uuid4())
        self.sio = socketio.AsyncClient(reconnection=False, ssl_verify=False)
        self.state: dict[str, dict] = {}
        self.messages: list[Msg] = []
        self.changed = asyncio.Event()
        self.last_t = 0.0
        self.sio.on("event", self._on_event, namespace="/_event")

    # ------------------------------------------------------------------ wire

    async def connect(self, timeout: float = 30.0) -> None:
        boot = {"name": HYDRATE, "payload": {}, "router_data": router(self.path)}
        headers = dict(self.headers)
        if self.auth_token:
            headers["Cookie"] = f"{TOKEN_COOKIE}={self.auth_token}"
        await self.sio.connect(
            f"{self.url}?token={self.token}",
            headers=headers,
            socketio_path="/_event",
            namespaces=["/_event"],
            transports=["websocket"],
            auth={"event": boot},
            wait_timeout=timeout,
        )

    async def emit(self, name: str, payload: dict | None = None, path: str | None = None) -> float:
        """Send one event; returns the send time (time.time())."""
        t = time.time()
        await self.sio.emit(
            "event",
            {"name": name, "payload": payload or {}, "router_data": router(path or self.path)},
            namespace="/_event",
        )
        return t

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()

    async def _on_event(self, data: Any) -> None:
        t = time.time()
        if isinstance(data, str):
            with contextlib.suppress(ValueError):
                data = json.loads(data)
        size = len(json.dumps(data, separators=(",", ":"))) if data is not None else 0
        msg = Msg(t, data, size, self)
        for state_name, values in msg.delta.items():
            self.state.setdefault(state_name, {}).update(values)
        self.messages.append(msg)
        self.last_t = t
        self.changed.set()

    # ------------------------------------------------------------------ state

    def var(self, state: str, name: str, default: Any = None) -> Any:
        return self.state.get(state, {}).get(name + FIELD, default)

    @property
    def bell_unread(self) -> int | None:
        return self.var(BELL, "unread")

    @property
    def cards(self) -> list[dict]:
        return self.var(QUEUE, "cards", []) or []

    @property
    def signed_in(self) -> bool:
        return bool(self.var(AppState.get_full_name(), "signed_in"))

    def mark(self) -> int:
        """Forget the messages received so far (memory), and return the index to wait from."""
        self.messages.clear()
        return 0

    async def wait_for(
        self, pred: Callable[[Msg], bool], start: int = 0, timeout: float = 10.0
    ) -> Msg | None:
        """The first message from index `start` on for which `pred` holds (None on timeout)."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.messages):
                if pred(self.messages[i]):
                    return self.messages[i]
                i += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return None

    async def wait_ready(self, timeout: float = 60.0) -> bool:
        """Hydrated, signed in, and (on /escalations) the queue and the bell loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = self.signed_in and self.var(ROOT_STATE, "is_hydrated")
            if self.path == "/escalations":
                ok = ok and self.var(QUEUE, "loaded") and self.bell_unread is not None
            elif self.path.startswith("/sessions/"):
                ok = ok and self.var(DETAIL, "loaded")
            if ok:
                return True
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        return False


def toast_texts(msg: Msg) -> list[str]:
    """Messages of rx.toast events (they travel as `_call_function` events)."""
    out = []
    for ev in msg.events:
        if isinstance(ev, dict) and ev.get("name") == "_call_function":
            out.append(json.dumps(ev.get("payload", {})))
    return out


def redirects(msg: Msg) -> list[str]:
    out = []
    for ev in msg.events:
        if isinstance(ev, dict) and ev.get("name") == "_redirect":
            out.append(str(ev.get("payload", {}).get("path", "")))
    return out


async def open_tabs(
    url: str,
    tokens: list[str],
    path: str,
    *,
    concurrency: int = 20,
    timeout: float = 120.0,
) -> list[ReflexTab]:
    """Connect one tab per token (bounded concurrency) and wait until every tab is ready."""
    tabs = [ReflexTab(url, tok, path, label=str(i)) for i, tok in enumerate(tokens)]
    sem = asyncio.Semaphore(concurrency)

    async def one(tab: ReflexTab) -> None:
        async with sem:
            await tab.connect()
            if not await tab.wait_ready(timeout):
                raise RuntimeError(f"tab {tab.label} on {path} not ready: {list(tab.state)[:5]}")

    try:
        await asyncio.gather(*(one(t) for t in tabs))
    except BaseException:
        await close_tabs(tabs)
        raise
    return tabs


async def close_tabs(tabs: list[ReflexTab]) -> None:
    await asyncio.gather(*(t.close() for t in tabs), return_exceptions=True)


async def quiet(tabs: list[ReflexTab], quiet_s: float, limit: float) -> None:
    """Wait until no tab received anything for `quiet_s` seconds (at most `limit`)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        last = max((t.last_t for t in tabs), default=0)
        if time.time() - last >= quiet_s:
            return
        await asyncio.sleep(quiet_s / 3)
