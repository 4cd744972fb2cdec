"""(c) Click path: time from the escalate event to the tab's success toast."""

from __future__ import annotations

import asyncio

from bench.client import ESCALATE, Msg, ReflexTab, close_tabs, open_tabs, toast_texts
from bench.infra import log
from bench.seed import BenchData
from bench.stats import summary

SUCCESS = "Escalated"


def _done(msg: Msg) -> bool:
    return any(SUCCESS in t or "error" in t.lower() for t in toast_texts(msg))


async def run_clickpath(url: str, data: BenchData, rounds: int, label: str, watchers: int = 2) -> dict:
    """`rounds` escalations, one after another, by the engineer; `watchers` senior queue tabs open."""
    sessions = await asyncio.to_thread(data.new_sessions, rounds, None, f"Click path {label}")
    seniors = await open_tabs(url, [p.token for p in data.seniors][:watchers], "/escalations")
    tab = ReflexTab(url, data.engineer.token, f"/sessions/{sessions[0]}")
    await tab.connect()
    if not await tab.wait_ready(60):
        raise RuntimeError("engineer tab not ready")
    times: list[float] = []
    failures: list[str] = []
    try:
        for session_id in sessions:
            path = f"/sessions/{session_id}"
            start = tab.mark()
            for s in seniors:
                s.mark()
            t0 = await tab.emit(
                ESCALATE, {"form_data": {"notes": "Stuck, please help", "priority": "high"}}, path=path
            )
            msg = await tab.wait_for(_done, start=start, timeout=60)
            if msg is None:
                failures.append(f"{path}: no answer in 60 s")
                continue
            texts = toast_texts(msg)
            if not any(SUCCESS in t for t in texts):
                failures.append(f"{path}: {texts[:1]}")
                continue
            times.append(msg.t - t0)
            await asyncio.sleep(0.05)
    finally:
        await tab.close()
        await close_tabs(seniors)
    row = {"label": label, "rounds": rounds, "ok": len(times), "failures": failures[:5], **summary(times)}
    log(f"(c) {label}: {len(times)}/{rounds} ok, p50 {row['p50_ms']} ms p95 {row['p95_ms']} ms")
    return row
