"""(f) What a person sees: the escalate click and the card, timed inside real Chromium.

Debian's Chromium (through Playwright, the browser tests' flags) opens three windows (one
browser context each, like three people): the engineer on a fresh session, and two seniors
on /escalations. Meanwhile 0 or 100 socket tabs (bench/client.py) follow the same queue.

Every time comes from the pages, on one clock (`performance.timeOrigin + performance.now()`,
epoch milliseconds, the same for every window of the machine), not from Playwright's waits:
- **click**: a capture-phase click listener in the engineer's page (the Send escalation
  button);
- **frame**: the first websocket frame holding the toast's text (engineer) or the new
  card's summary (seniors), from a listener added when the page opens its socket;
- **shown**: the MutationObserver callback that first finds the toast / the card in the DOM;
- **painted**: a task posted from the next animation frame after that (it runs once the
  frame holding the change has been painted).

The server's side of the split comes from ESCALATION_TIMING=1 stamps in its log
(`escalation_app/services/timing.py`): handler start, commit, queue push sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path

from bench.client import close_tabs, open_tabs
from bench.infra import log
from bench.seed import BenchData
from bench.stats import summary

CHROMIUM = "/usr/bin/chromium"
# The browser suite's flags (tests/browser/conftest.py).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TOKEN_COOKIE = "escalation_desk_token"
TOAST_TEXT = "your team has been notified"

# Installed before any page script runs.
INSTRUMENT_JS = r"""
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const B = (window.__bench = { watch: [], marks: {}, frames: [] });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        if (!B.watch.length || typeof e.data !== "string") return;
        const t = now();
        B.frames.push([t, e.data.length, e.data.slice(0, 60)]);
        for (const w of B.watch) {
          if (B.marks[w.name + ":frame"] === undefined && e.data.includes(w.frame)) B.marks[w.name + ":frame"] = t;
        }
      });
    }
  };
  document.addEventListener("click", () => {
    if (B.armed && B.marks.click === undefined) B.marks.click = now();
  }, true);
  const look = () => {
    if (!B.watch.length) return;
    const t = now();
    for (const w of B.watch) {
      if (B.marks[w.name + ":shown"] !== undefined) continue;
      const hit = [...document.querySelectorAll(w.selector)].some((el) => !w.text || el.textContent.includes(w.text));
      if (!hit) continue;
      B.marks[w.name + ":shown"] = t;
      requestAnimationFrame(() => {
        const ch = new MessageChannel();
        ch.port1.onmessage = () => { B.marks[w.name + ":painted"] = now(); };
        ch.port2.postMessage(0);
      });
    }
  };
  const start = () => new MutationObserver(look).observe(document.documentElement, {
    childList: true, subtree: true, characterData: true,
  });
  if (document.documentElement) start(); else document.addEventListener("DOMContentLoaded", start);
})();
"""

ARM_JS = (
    "(watch) => { const B = window.__bench; B.marks = {}; B.frames = []; B.watch = watch; B.armed = true; }"
)
DONE_JS = "(names) => names.every((n) => window.__bench.marks[n + ':painted'] !== undefined)"
MARKS_JS = "() => ({...window.__bench.marks, frames: window.__bench.frames})"


def _css_string(value: str) -> str:
    return json.dumps(value)


def server_stamps(log_path: Path) -> dict[str, dict]:
    """`timing` lines of the server log, by handoff id: stage → epoch seconds."""
    by_path: dict[str, str] = {}
    out: dict[str, dict] = {}
    pattern = re.compile(r"timing (\S+) (.*) (\d+\.\d+)\s*$")
    for line in log_path.read_text(errors="replace").splitlines():
        m = pattern.search(line)
        if not m:
            continue
        stage, fields, t = m.group(1), dict(kv.split("=", 1) for kv in m.group(2).split()), float(m.group(3))
        path = fields.get("path")
        handoff = fields.get("handoff")
        if stage == "click-start":
            out.setdefault(f"path:{path}", {})["click-start"] = t
        elif stage == "click-commit":
            by_path[path] = handoff
            row = out.setdefault(handoff, {})
            row.update(out.pop(f"path:{path}", {}))
            row["click-commit"] = t
        elif stage == "click-answer" and path in by_path:
            out.setdefault(by_path[path], {})["click-answer"] = t
        elif handoff and fields.get("kind") == "created":
            out.setdefault(handoff, {}).setdefault(stage, t)
    return out


class BrowserDesk:
    """Chromium with the engineer's window and two seniors' windows, signed in by cookie."""

    def __init__(self, frontend_url: str, data: BenchData):
        self.url = frontend_url
        self.data = data
        self.playwright = None
        self.browser = None
        self.engineer = None
        self.seniors: list = []

    async def __aenter__(self) -> BrowserDesk:
        from playwright.async_api import async_playwright

        self.playwright = await async_playwright().start()
        self.browser = await self.playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        self.engineer = await self._window(self.data.engineer.token, "/sessions")
        for senior in self.data.seniors[:2]:
            page = await self._window(self.data.new_token(senior), "/escalations")
            try:
                await page.get_by_role("heading", name="Escalations").wait_for(timeout=60_000)
            except Exception:
                # What the senior saw instead (e.g. a refused websocket's toast).
                shot = Path(tempfile.gettempdir()) / "bench-senior-window.png"
                await page.screenshot(path=str(shot))
                log(f"(f) the senior window never showed the queue; screenshot: {shot}")
                raise
            self.seniors.append(page)
        return self

    async def _window(self, token: str, path: str):
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        host = re.sub(r"^https?://", "", self.url).split(":")[0]
        await context.add_cookies(
            [{"name": TOKEN_COOKIE, "value": token, "domain": host, "path": "/", "sameSite": "Strict"}]
        )
        await context.add_init_script(INSTRUMENT_JS)
        page = await context.new_page()
        await page.goto(f"{self.url}{path}")
        await page.get_by_role("button", name="Sign out").wait_for(timeout=120_000)
        return page

    async def __aexit__(self, *exc) -> None:
        if self.browser is not None:
            await self.browser.close()
        if self.playwright is not None:
            await self.playwright.stop()

    async def escalate(self, session_id: int, summary_text: str, timeout: float = 15.0) -> dict | None:
        """One round: the engineer escalates; the marks of every window (None: something never came)."""
        page = self.engineer
        await page.goto(f"{self.url}/sessions/{session_id}")
        await page.get_by_role("heading", name=summary_text).wait_for()
        escalate = page.get_by_role("button", name="Escalate", exact=True)
        await escalate.wait_for()
        await page.wait_for_function("() => !!window.__bench")
        await escalate.click()
        await page.get_by_label("Notes").fill("Browser bench: please help")
        card = {
            "name": "card",
            "selector": f"article[aria-label={_css_string(summary_text)}]",
            "frame": summary_text,
        }
        toast = {"name": "toast", "selector": "[data-sonner-toast]", "text": TOAST_TEXT, "frame": TOAST_TEXT}
        for senior in self.seniors:
            await senior.evaluate(ARM_JS, [card])
        await page.evaluate(ARM_JS, [toast])
        await page.get_by_role("button", name="Send escalation").click()
        try:
            await page.wait_for_function(DONE_JS, arg=["toast"], timeout=timeout * 1000, polling=50)
            for senior in self.seniors:
                await senior.wait_for_function(DONE_JS, arg=["card"], timeout=timeout * 1000, polling=50)
        except Exception as exc:
            log(f"(f) round for session {session_id}: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        marks = {"engineer": await page.evaluate(MARKS_JS)}
        marks["seniors"] = [await s.evaluate(MARKS_JS) for s in self.seniors]
        for p in (page, *self.seniors):
            await p.evaluate("() => { window.__bench.watch = []; window.__bench.armed = false; }")
        return marks


def _retire(data: BenchData, session_id: int, claimer_id: int) -> None:
    from bench.arrival import _retire as retire

    retire(data, session_id, claimer_id)


def _handoff_of(data: BenchData, session_id: int) -> str | None:
    from sqlalchemy import text

    with data.engine.connect() as conn:
        row = conn.execute(
            text("SELECT id FROM session_handoff WHERE session_id = :s ORDER BY created_at DESC LIMIT 1"),
            {"s": session_id},
        ).first()
    return str(row[0]) if row else None


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (b - a) / 1000


def split_rows(rounds: list[dict]) -> dict:
    """Per-stage summaries (seconds in → ms out) over the rounds."""
    cols: dict[str, list[float]] = {}

    def add(name: str, value: float | None) -> None:
        if value is not None:
            cols.setdefault(name, []).append(value)

    for r in rounds:
        e, srv = r["marks"]["engineer"], r["server"]
        click = e.get("click")
        add("own_toast_painted", _ms(click, e.get("toast:painted")))
        add("own_toast_frame", _ms(click, e.get("toast:frame")))
        add("own_frame_to_painted", _ms(e.get("toast:frame"), e.get("toast:painted")))
        start, commit = srv.get("click-start"), srv.get("click-commit")
        pushed = srv.get("push-sent_push_queue")
        to_ms = _to_ms
        add("click_to_handler_start", _ms(click, to_ms(start)))
        add("handler_start_to_commit", None if start is None or commit is None else commit - start)
        add("commit_to_push_sent", None if commit is None or pushed is None else pushed - commit)
        add(
            "commit_to_answer",
            None if commit is None or "click-answer" not in srv else srv["click-answer"] - commit,
        )
        for s in r["marks"]["seniors"]:
            add("card_painted", _ms(click, s.get("card:painted")))
            add("card_shown", _ms(click, s.get("card:shown")))
            add("push_sent_to_frame", _ms(to_ms(pushed), s.get("card:frame")))
            add("card_frame_to_painted", _ms(s.get("card:frame"), s.get("card:painted")))
        slowest = max((s.get("card:painted", 0) for s in r["marks"]["seniors"]), default=0)
        add("card_painted_slowest_window", _ms(click, slowest or None))
    return {name: summary(values) for name, values in cols.items()}


async def run_browser(server, data: BenchData, tab_counts: list[int], rounds: int, mode: str) -> dict:
    """`rounds` escalations per socket-tab count, in Chromium, against `server` (frontend served)."""
    url = server.extra["frontend_url"]
    rows = []
    async with BrowserDesk(url, data) as desk:
        tabs: list = []
        try:
            # Warm-up: the first visit of a route compiles it in dev mode; no round counts it.
            for session_id in await asyncio.to_thread(data.new_sessions, 2, None, f"Warm-up {mode}"):
                summary_text = await asyncio.to_thread(_summary_of, data, session_id)
                await desk.escalate(session_id, summary_text)
                await asyncio.to_thread(_retire, data, session_id, data.seniors[0].user_id)
            for n in tab_counts:
                if len(tabs) < n:
                    seniors = data.seniors
                    tokens = [seniors[i % len(seniors)].token for i in range(n - len(tabs))]
                    tabs += await open_tabs(server.url, tokens, "/escalations")
                await asyncio.sleep(1)
                load_before = round(os.getloadavg()[0], 2)
                done: list[dict] = []
                failed = 0
                sessions = await asyncio.to_thread(data.new_sessions, rounds, None, f"Chromium {mode} N{n}")
                t0 = time.monotonic()
                for session_id in sessions:
                    summary_text = await asyncio.to_thread(_summary_of, data, session_id)
                    marks = await desk.escalate(session_id, summary_text)
                    handoff_id = await asyncio.to_thread(_handoff_of, data, session_id)
                    await asyncio.to_thread(_retire, data, session_id, data.seniors[0].user_id)
                    if marks is None:
                        failed += 1
                        continue
                    done.append({"session_id": session_id, "handoff_id": handoff_id, "marks": marks})
                    await asyncio.sleep(0.2)
                stamps = server_stamps(server.workdir / "server.log")
                for r in done:
                    r["server"] = stamps.get(r["handoff_id"] or "", {})
                row = {
                    "mode": mode,
                    "socket_tabs": n,
                    "load_avg_1m_before": load_before,
                    "rounds": len(done),
                    "failed": failed,
                    "wall_s": round(time.monotonic() - t0, 1),
                    **split_rows(done),
                    "example_rounds": [_relative(r) for r in done[:3]],
                }
                rows.append(row)
                log(
                    f"(f) {mode} +{n} socket tabs: card painted p50 {row.get('card_painted', {}).get('p50_ms')} "
                    f"p95 {row.get('card_painted', {}).get('p95_ms')} ms; own toast p95 "
                    f"{row.get('own_toast_painted', {}).get('p95_ms')} ms ({len(done)} rounds, {failed} failed)"
                )
        finally:
            await close_tabs(tabs)
    return {"mode": mode, "started_s": server.extra.get("started_s"), "rows": rows}


def _relative(r: dict) -> dict:
    """One round's marks and frames in ms after the click (for reading a round by eye)."""
    click = r["marks"]["engineer"].get("click") or 0

    def rel(marks: dict) -> dict:
        out = {k: round(v - click, 1) for k, v in marks.items() if isinstance(v, int | float)}
        out["frames"] = [[round(t - click, 1), size, head] for t, size, head in marks.get("frames", [])]
        return out

    server = {k: round(v * 1000 - click, 1) for k, v in r["server"].items()}
    return {
        "engineer": rel(r["marks"]["engineer"]),
        "seniors": [rel(m) for m in r["marks"]["seniors"]],
        "server": server,
    }


def _summary_of(data: BenchData, session_id: int) -> str:
    from sqlalchemy import text

    with data.engine.connect() as conn:
        return conn.execute(
            text("SELECT problem_summary FROM support_session WHERE id = :s"), {"s": session_id}
        ).scalar_one()


def _to_ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
