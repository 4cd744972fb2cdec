"""`python -m bench`: run every part and write bench/REPORT.md and bench/report.json.

Environment overrides (the defaults take about 5 minutes on 2 cores):
  BENCH_PARTS=a,b,c,d,e,f        which parts to run
  BENCH_N=1,10,50,100,200        (a) tab counts            BENCH_ROUNDS=30  rounds per N
  BENCH_REDIS=1                  (a) also on 2 workers + Redis (0 to skip)
  BENCH_REDIS_N=1,10,50,100,200  (a) tab counts on 2 workers
  BENCH_K=2,20,50                (b) claimers              BENCH_CLAIM_ROUNDS=30
  BENCH_CLICK_ROUNDS=30          (c) escalations per mode  BENCH_AI_DELAY=20  slow AI seconds
  BENCH_QUERY_SIZES=10000,100000 (d)                       BENCH_QUERY_RUNS=30
  BENCH_BROWSER_MODES=dev,prod   (f) Chromium against `make dev`'s and `make run`'s servers
  BENCH_BROWSER_TABS=0,100       (f) socket tabs connected meanwhile  BENCH_BROWSER_ROUNDS=30
  BENCH_BUDGET_S=40              (a)/(b) stop adding rounds for one N or K after this many seconds...
  BENCH_MIN_ROUNDS=3             ...but never before this many rounds (the report shows the rounds run)
  BENCH_SKIP_AFTER_MISS=1        (a) skip larger N once an N left tabs without the card for 20 s
  BENCH_PYSPY=1                  sample the backend with py-spy during (a) at the largest N
  BENCH_APP_SOURCE=worktree|head|<rev> serve the working tree (default), git HEAD or a commit
  BENCH_OUTBOX_ESCALATIONS=300   (g) escalations whose jobs the outbox drains (5 jobs each)
  BENCH_OUTBOX_WORKERS=1,2       (g) worker processes
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PASSWORD_HASH_ROUNDS", "4")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench import infra, profile
from bench.infra import log
from bench.report import write_report

BENCH_DIR = Path(__file__).resolve().parent


def _ints(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def machine() -> dict:
    import reflex
    from reflex_base.constants import Reflex

    mem = psutil.virtual_memory()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_cores": psutil.cpu_count(logical=True),
        "cpu_model": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor(),
        "memory_gb": round(mem.total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "reflex": getattr(Reflex, "VERSION", getattr(reflex, "__version__", "?")),
        "postgresql": infra.pg_version(),
        "app_source": os.environ.get("BENCH_APP_SOURCE", "worktree"),
    }


def fast_env(ai_url: str, smtp_port: int) -> dict:
    return {
        "ANTHROPIC_API_KEY": "sk-bench-fake",
        "ANTHROPIC_BASE_URL": ai_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
    }


BUDGET_S = float(os.environ.get("BENCH_BUDGET_S", "40"))
MIN_ROUNDS = int(os.environ.get("BENCH_MIN_ROUNDS", "3"))
SKIP_AFTER_MISS = os.environ.get("BENCH_SKIP_AFTER_MISS", "1") == "1"


async def arrival_series(server, data, db_url, ns, rounds, label, mem: dict, pyspy: bool) -> dict:
    from bench.arrival import AppArrival, FloorServer

    app = AppArrival(server.url, data)
    rows, floor_rows = [], []
    try:
        with FloorServer(db_url) as floor:
            for n in ns:
                if SKIP_AFTER_MISS and rows and rows[-1]["missed"]:
                    # The previous N already left tabs without the card for 20 s: a bigger N only
                    # spends minutes confirming it (BENCH_SKIP_AFTER_MISS=0 runs it anyway).
                    rows.append(
                        {
                            "n": n,
                            "skipped": f"N={rows[-1]['n']} already missed {rows[-1]['missed']} deliveries",
                        }
                    )
                    log(f"(a) {label} N={n}: skipped ({rows[-1]['skipped']})")
                    if n == max(ns):
                        # (e) still wants the backend's memory with this many tabs connected.
                        await app.ensure_tabs(n)
                        await asyncio.sleep(3)
                        mem[f"{label}_with_{n}_tabs_mb"] = round(server.rss_mb(), 1)
                    continue
                await app.ensure_tabs(n)
                spy = None
                if pyspy and n == max(ns):
                    spy = profile.start(server.pid, f"arrival-{label}", duration=40)
                row = await app.run(n, rounds, label, BUDGET_S, MIN_ROUNDS)
                profile.stop(spy)
                if n == max(ns):
                    mem[f"{label}_with_{n}_tabs_mb"] = round(server.rss_mb(), 1)
                rows.append(row)
                frow = await floor.run(n, rounds, max(row["card_delta_bytes"], 100))
                floor_rows.append(frow)
                row["floor"] = frow
                for key in ("card_from_commit", "bell_from_commit"):
                    # Like for like: both from a timestamp taken before the transaction's INSERT.
                    f50, f95 = frow["from_stamp"]["p50_ms"], frow["from_stamp"]["p95_ms"]
                    ok = row[key]["n"] > 0
                    row[f"{key}_ratio_p50"] = round(row[key]["p50_ms"] / f50, 1) if f50 and ok else None
                    row[f"{key}_ratio_p95"] = round(row[key]["p95_ms"] / f95, 1) if f95 and ok else None
    finally:
        await app.close()
    await asyncio.sleep(2)
    mem[f"{label}_after_tabs_closed_mb"] = round(server.rss_mb(), 1)
    return {"label": label, "rows": rows}


def main() -> int:
    from bench.seed import BenchData

    parts = set(os.environ.get("BENCH_PARTS", "a,b,c,d,e,f,g").split(","))
    ns = _ints("BENCH_N", "1,10,50,100,200")
    rounds = _int("BENCH_ROUNDS", 30)
    ks = _ints("BENCH_K", "2,20,50")
    claim_rounds = _int("BENCH_CLAIM_ROUNDS", 30)
    click_rounds = _int("BENCH_CLICK_ROUNDS", 30)
    ai_delay = float(os.environ.get("BENCH_AI_DELAY", "20"))
    pyspy = os.environ.get("BENCH_PYSPY", "0") == "1"
    redis_on = os.environ.get("BENCH_REDIS", "1") == "1"
    redis_ns = _ints("BENCH_REDIS_N", ",".join(map(str, ns)))

    started = time.monotonic()
    report: dict = {
        "machine": machine(),
        "config": {
            "parts": sorted(parts),
            "n": ns,
            "rounds": rounds,
            "k": ks,
            "claim_rounds": claim_rounds,
            "click_rounds": click_rounds,
            "ai_delay_s": ai_delay,
            "budget_s": BUDGET_S,
            "min_rounds": MIN_ROUNDS,
            "redis": redis_on,
            "redis_n": redis_ns,
        },
        "errors": [],
    }
    memory: dict = {}

    def cpu_now() -> tuple[float, float, float]:
        t = psutil.cpu_times()
        busy = sum(getattr(t, f) for f in t._fields if f not in ("idle", "iowait", "guest", "guest_nice"))
        o = psutil.Process().cpu_times()
        return time.monotonic(), busy, o.user + o.system + o.children_user + o.children_system

    def guarded(name, fn):
        w0, b0, o0 = cpu_now()
        try:
            return _guarded_body(name, fn)
        finally:
            w1, b1, o1 = cpu_now()
            report.setdefault("cpu", []).append(
                {
                    "scenario": name,
                    "wall_s": round(w1 - w0, 1),
                    "machine_busy_cpu_s": round(b1 - b0, 1),
                    "bench_cpu_s": round(o1 - o0, 1),
                    "other_processes_cpu_s": round(max(0.0, (b1 - b0) - (o1 - o0)), 1),
                    "load_avg_1m_end": round(os.getloadavg()[0], 2),
                }
            )

    def _guarded_body(name, fn):
        try:
            return fn()
        except Exception as exc:
            log(f"{name} failed: {exc}")
            report["errors"].append(
                {
                    "part": name,
                    "error": f"{type(exc).__name__}: {exc}",
                    "trace": traceback.format_exc()[-3000:],
                }
            )
            return None

    # (c) slow side effects: AI answers after 20 s, SMTP accepts and never speaks.
    def slow_clickpath():
        from bench.clickpath import run_clickpath

        with (
            infra.pg_database() as db_url,
            infra.fake_anthropic(ai_delay) as ai,
            infra.blackhole_smtp() as smtp,
        ):
            data = BenchData(db_url)
            try:
                with infra.app_server(db_url, env=fast_env(ai, smtp), label="slow-side-effects") as server:
                    return asyncio.run(
                        run_clickpath(
                            server.url, data, click_rounds, f"AI {ai_delay:g} s + SMTP never answers"
                        )
                    )
            finally:
                data.dispose()

    if "c" in parts:
        report["clickpath_slow"] = guarded("c-slow", slow_clickpath)

    # Single worker, fast fakes: (e) idle, (c) fast, (b), (a), (e) loaded.
    def single_worker():
        from bench.claims import run_claims
        from bench.clickpath import run_clickpath

        with infra.pg_database() as db_url, infra.fake_anthropic(0.0) as ai, infra.fast_smtp() as smtp:
            data = BenchData(db_url)
            try:
                with infra.app_server(db_url, env=fast_env(ai, smtp), label="single") as server:
                    time.sleep(2)
                    memory["single_idle_0_tabs_mb"] = round(server.rss_mb(), 1)
                    if "c" in parts:
                        report["clickpath_fast"] = guarded(
                            "c-fast",
                            lambda: asyncio.run(
                                run_clickpath(server.url, data, click_rounds, "AI + SMTP fast")
                            ),
                        )
                    if "b" in parts:
                        report["claims"] = guarded(
                            "b",
                            lambda: asyncio.run(
                                run_claims(server.url, data, ks, claim_rounds, BUDGET_S, MIN_ROUNDS)
                            ),
                        )
                    if "a" in parts or "e" in parts:
                        a_ns = ns if "a" in parts else [200]
                        a_rounds = rounds if "a" in parts else 3
                        report["arrival_single"] = guarded(
                            "a-single",
                            lambda: asyncio.run(
                                arrival_series(server, data, db_url, a_ns, a_rounds, "single", memory, pyspy)
                            ),
                        )
            finally:
                data.dispose()

    if parts & {"a", "b", "c", "e"}:
        guarded("single-worker", single_worker)

    def two_workers():
        import redis

        redis.Redis.from_url(infra.REDIS_URL, socket_connect_timeout=2).ping()
        with infra.pg_database() as db_url, infra.fake_anthropic(0.0) as ai, infra.fast_smtp() as smtp:
            data = BenchData(db_url)
            try:
                with infra.app_server(
                    db_url, workers=2, env=fast_env(ai, smtp), label="redis-2-workers"
                ) as server:
                    time.sleep(2)
                    memory["redis2_idle_0_tabs_mb"] = round(server.rss_mb(), 1)
                    report["arrival_redis"] = asyncio.run(
                        arrival_series(server, data, db_url, redis_ns, rounds, "redis2", memory, pyspy)
                    )
            finally:
                data.dispose()

    if "a" in parts and redis_on:
        guarded("a-redis", two_workers)

    def queries():
        from bench.queries import run_queries

        with infra.pg_database() as db_url:
            data = BenchData(db_url)
            try:
                return run_queries(
                    data, _ints("BENCH_QUERY_SIZES", "10000,100000"), _int("BENCH_QUERY_RUNS", 30)
                )
            finally:
                data.dispose()

    if "d" in parts:
        report["queries"] = guarded("d", queries)

    # (f) Real Chromium: the engineer's window and two seniors' windows, in each serving mode.
    def browser_part(mode: str):
        from bench.browser import run_browser

        with infra.pg_database() as db_url, infra.fake_anthropic(0.0) as ai, infra.fast_smtp() as smtp:
            data = BenchData(db_url)
            try:
                env = {**fast_env(ai, smtp), "ESCALATION_TIMING": "1"}
                with infra.app_server(db_url, env=env, label=f"browser-{mode}", frontend=mode) as server:
                    spy = profile.start(server.pid, f"browser-{mode}", duration=45) if pyspy else None
                    try:
                        return asyncio.run(
                            run_browser(
                                server,
                                data,
                                _ints("BENCH_BROWSER_TABS", "0,100"),
                                _int("BENCH_BROWSER_ROUNDS", 30),
                                mode,
                            )
                        )
                    finally:
                        profile.stop(spy)
            finally:
                data.dispose()

    if "f" in parts:
        modes = [m for m in os.environ.get("BENCH_BROWSER_MODES", "dev,prod").split(",") if m]
        report["browser"] = [
            x for x in (guarded(f"f-{mode}", lambda mode=mode: browser_part(mode)) for mode in modes) if x
        ]

    def outbox_throughput():
        from bench.outbox import run_outbox_throughput

        return run_outbox_throughput(
            _int("BENCH_OUTBOX_ESCALATIONS", 300), _ints("BENCH_OUTBOX_WORKERS", "1,2")
        )

    if "g" in parts:
        report["outbox"] = guarded("g", outbox_throughput)

    report["memory"] = memory
    if pyspy:
        names = ("arrival-single", "arrival-redis2", "browser-dev", "browser-prod")
        report["profiles"] = {name: profile.summarize(name) for name in names}
    report["duration_s"] = round(time.monotonic() - started, 1)
    (BENCH_DIR / "report.json").write_text(json.dumps(report, indent=2, default=str))
    write_report(report, BENCH_DIR / "REPORT.md")
    log(f"done in {report['duration_s']} s: bench/REPORT.md, bench/report.json")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
