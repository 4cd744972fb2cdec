"""(a) Arrival latency: N queue tabs, one escalation per round, time until each tab has it.

Two moments per tab and round:
- card: the QueueState delta holding the new card arrives (pushed by the server: one
  queue read per team, one encoded packet to the team's room);
- bell: the BellState delta listing the new notification arrives (pushed too: one bell
  read per notified user, sent to that user's room).
Measured from the handoff's commit (its `created_at`, read back from the database: stamped
inside the transaction before the handoff and its notification rows are inserted, so it
is a few ms before the COMMIT itself and those ms count against the app) and from the moment the escalate event was
sent. The floor runs right after at the same N: bench/floor.py behind granian.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

import socketio
from sqlalchemy import text

from bench.client import BELL, ESCALATE, QUEUE, Msg, ReflexTab, close_tabs, open_tabs, quiet
from bench.infra import ROOT, free_port, log
from bench.seed import BenchData
from bench.stats import median, summary


def _commit_time(data: BenchData, session_id: int) -> float | None:
    with data.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT created_at FROM session_handoff WHERE session_id = :s ORDER BY created_at DESC LIMIT 1"
            ),
            {"s": session_id},
        ).first()
    return row[0].timestamp() if row else None


def _retire(data: BenchData, session_id: int, claimer_id: int) -> None:
    """Take the round's card out of the queue (directly, no push), so every round sees the same queue."""
    with data.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE session_handoff SET claimed_by_id = :u, claimed_at = now() "
                "WHERE session_id = :s AND claimed_by_id IS NULL"
            ),
            {"u": claimer_id, "s": session_id},
        )


class AppArrival:
    """Keeps tabs open across N values (N ascending) to save connect time."""

    def __init__(self, url: str, data: BenchData):
        self.url = url
        self.data = data
        self.tabs: list[ReflexTab] = []
        self.engineer: ReflexTab | None = None

    async def ensure_tabs(self, n: int) -> None:
        if len(self.tabs) > n:
            extra = self.tabs[n:]
            self.tabs = self.tabs[:n]
            await close_tabs(extra)
        missing = n - len(self.tabs)
        if missing > 0:
            seniors = self.data.seniors
            tokens = [seniors[(len(self.tabs) + i) % len(seniors)].token for i in range(missing)]
            self.tabs += await open_tabs(self.url, tokens, "/escalations")

    async def close(self) -> None:
        await close_tabs(self.tabs + ([self.engineer] if self.engineer else []))
        self.tabs = []

    async def run(self, n: int, rounds: int, label: str, budget_s: float = 1e9, min_rounds: int = 3) -> dict:
        """Up to `rounds` rounds; stops early (after `min_rounds`) once `budget_s` is spent."""
        await self.ensure_tabs(n)
        sessions = await asyncio.to_thread(self.data.new_sessions, rounds, None, f"Arrival {label} N{n}")
        if self.engineer is None:
            self.engineer = ReflexTab(self.url, self.data.engineer.token, f"/sessions/{sessions[0]}")
            await self.engineer.connect()
            await self.engineer.wait_ready(60)
        await quiet(self.tabs, 0.3, 30)
        bell_commit, card_commit, bell_send, card_send = [], [], [], []
        round_max_card: list[float] = []
        bell_sizes, card_sizes = [], []
        missed = 0
        msgs_per_tab: list[float] = []
        began = time.monotonic()
        done = 0
        for r, session_id in enumerate(sessions):
            if done >= min_rounds and time.monotonic() - began > budget_s:
                break
            done += 1
            summary_text = f"Arrival {label} N{n} {r}"
            starts = [t.mark() for t in self.tabs]
            self.engineer.mark()

            def is_bell(m: Msg, s=summary_text) -> bool:
                items = m.delta.get(BELL, {}).get("items_rx_state_")
                return bool(items) and any(str(i.get("title", "")).endswith(s) for i in items)

            def is_card(m: Msg, s=summary_text) -> bool:
                cards = m.delta.get(QUEUE, {}).get("cards_rx_state_")
                return bool(cards) and any(c.get("summary") == s for c in cards)

            t_send = await self.engineer.emit(
                ESCALATE,
                {"form_data": {"notes": f"round {r}", "priority": "normal"}},
                path=f"/sessions/{session_id}",
            )
            bell_msgs = await asyncio.gather(
                *(t.wait_for(is_bell, s, 20) for t, s in zip(self.tabs, starts, strict=True))
            )
            card_msgs = await asyncio.gather(
                *(t.wait_for(is_card, s, 20) for t, s in zip(self.tabs, starts, strict=True))
            )
            t_commit = await asyncio.to_thread(_commit_time, self.data, session_id)
            if t_commit is None:
                missed += n
                continue
            worst = 0.0
            for bm, cm in zip(bell_msgs, card_msgs, strict=True):
                if bm is None or cm is None:
                    missed += 1
                    continue
                bell_commit.append(bm.t - t_commit)
                card_commit.append(cm.t - t_commit)
                bell_send.append(bm.t - t_send)
                card_send.append(cm.t - t_send)
                bell_sizes.append(bm.size)
                card_sizes.append(cm.size)
                worst = max(worst, cm.t - t_commit)
            round_max_card.append(worst)
            await asyncio.sleep(0.05)
            await quiet(self.tabs, 0.3, 30)
            msgs_per_tab.append(sum(len(t.messages) for t in self.tabs) / n)
            await asyncio.to_thread(_retire, self.data, session_id, self.data.seniors[0].user_id)
        row = {
            "n": n,
            "rounds": done,
            "missed": missed,
            "messages_per_tab_per_round": round(median(msgs_per_tab), 1) if msgs_per_tab else None,
            "bell_from_commit": summary(bell_commit),
            "card_from_commit": summary(card_commit),
            "bell_from_send": summary(bell_send),
            "card_from_send": summary(card_send),
            "median_round_slowest_tab_ms": round(median(round_max_card) * 1000, 2)
            if round_max_card
            else None,
            "bell_delta_bytes": int(median(bell_sizes)) if bell_sizes else 0,
            "card_delta_bytes": int(median(card_sizes)) if card_sizes else 0,
        }
        log(
            f"(a) {label} N={n}: bell p50 {row['bell_from_commit']['p50_ms']} p95 {row['bell_from_commit']['p95_ms']} ms; "
            f"card p50 {row['card_from_commit']['p50_ms']} p95 {row['card_from_commit']['p95_ms']} ms; missed {missed}"
        )
        return row


# --------------------------------------------------------------------------- the floor


class FloorServer:
    def __init__(self, db_url: str):
        self.db_url = db_url
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> FloorServer:
        env = {**os.environ, "BENCH_FLOOR_DSN": self.db_url, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "bench.floor:app",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"floor server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=polling", timeout=1
                )
                break
            except OSError:
                time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)

    async def run(self, n: int, rounds: int, size: int) -> dict:
        url = f"http://127.0.0.1:{self.port}"
        received: list[list[tuple[float, dict]]] = [[] for _ in range(n)]
        clients = []

        def make(i: int) -> socketio.AsyncClient:
            c = socketio.AsyncClient(reconnection=False)

            async def on_update(data, i=i):
                received[i].append((time.time(), data))

            c.on("update", on_update)
            return c

        sem = asyncio.Semaphore(20)

        async def connect(c):
            async with sem:
                await c.connect(url, transports=["websocket"], wait_timeout=30)

        clients = [make(i) for i in range(n)]
        trigger = socketio.AsyncClient(reconnection=False)
        lat: list[float] = []
        lat_stamp: list[float] = []
        round_max: list[float] = []
        missed = 0
        try:
            await asyncio.gather(*(connect(c) for c in clients))
            await trigger.connect(url, transports=["websocket"], wait_timeout=30)
            for r in range(rounds):
                times = await trigger.call("go", {"size": size, "round": r}, timeout=30)
                t_commit, t_stamp = times["t_commit"], times["t_stamp"]
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not all(
                    any(d.get("round") == r for _, d in rec) for rec in received
                ):
                    await asyncio.sleep(0.002)
                worst = 0.0
                for rec in received:
                    hit = next((t for t, d in rec if d.get("round") == r), None)
                    if hit is None:
                        missed += 1
                        continue
                    lat.append(hit - t_commit)
                    lat_stamp.append(hit - t_stamp)
                    worst = max(worst, hit - t_stamp)
                round_max.append(worst)
                await asyncio.sleep(0.05)
        finally:
            await asyncio.gather(*(c.disconnect() for c in [*clients, trigger]), return_exceptions=True)
        row = {
            "n": n,
            "rounds": rounds,
            "payload_bytes": size,
            "missed": missed,
            "from_commit": summary(lat),
            "from_stamp": summary(lat_stamp),
            "median_round_slowest_tab_ms": round(median(round_max) * 1000, 2) if round_max else None,
        }
        log(
            f"(a) floor N={n}: p50 {row['from_stamp']['p50_ms']} p95 {row['from_stamp']['p95_ms']} ms "
            f"(after COMMIT: p50 {row['from_commit']['p50_ms']} p95 {row['from_commit']['p95_ms']} ms)"
        )
        return row
