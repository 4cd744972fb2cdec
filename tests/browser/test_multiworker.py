"""Scale-out: with Redis and two backend workers (the documented production run,
`python -m escalation_app.serve --env prod`), an arrival reaches tabs on both workers, and
a worker killed under load is respawned without losing a tab or a committed handoff."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psutil
import pytest
import redis
from playwright.sync_api import expect

from tests.browser.conftest import BUN_BIN, Browsers
from tests.browser.test_flows import _card, _create_session_with_steps, _escalate
from tests.conftest import (
    ROOT,
    create_pg_database,
    drop_pg_database,
    migrate,
    pg_unavailable_reason,
    require_or_skip,
)
from tests.state.conftest import TOAST_CALL

pytestmark = pytest.mark.browser
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
WORKERS = 2
SENIOR_TABS = 6


def _redis_unavailable_reason() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"


@dataclasses.dataclass(frozen=True)
class ProductionServer:
    url: str
    port: int
    pid: int  # granian's supervisor; the workers are its children
    db_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_connections(port: int, server_pid: int) -> Counter:
    """Established connections on `port`, per worker process of the server."""
    pids = {p.pid for p in psutil.Process(server_pid).children(recursive=True)} | {server_pid}
    counts: Counter = Counter()
    for conn in psutil.net_connections(kind="tcp"):
        if (
            conn.status == psutil.CONN_ESTABLISHED
            and conn.laddr
            and conn.laddr.port == port
            and conn.pid in pids
        ):
            counts[conn.pid] += 1
    return counts


@pytest.fixture(scope="module")
def multiworker_url(browser, tmp_path_factory):
    require_or_skip(_redis_unavailable_reason())
    require_or_skip(pg_unavailable_reason())
    from escalation_app.domain.db import make_engine, session_scope
    from escalation_app.domain.demo_data import load_demo_data

    db_url, db_name = create_pg_database()
    migrate(db_url)
    engine = make_engine(db_url)
    with session_scope(engine) as db:
        load_demo_data(db)
    engine.dispose()

    # A copy of the project, so this build never touches the one the other tests serve.
    workdir = tmp_path_factory.mktemp("multiworker") / "app"
    shutil.copytree(
        ROOT,
        workdir,
        ignore=shutil.ignore_patterns(
            ".venv", ".web", ".states", ".git", "test-artifacts", "*.db*", ".tools"
        ),
        symlinks=True,
    )
    port = _free_port()
    redis_db = 10 + uuid.uuid4().int % 5
    redis.Redis.from_url(f"{REDIS_URL}/{redis_db}").flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        # The only origin the server accepts: its own.
        "FRONTEND_URL": f"http://127.0.0.1:{port}",
        "REFLEX_REDIS_URL": f"{REDIS_URL}/{redis_db}",
        "GRANIAN_WORKERS": str(WORKERS),
        "PATH": f"{BUN_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "0",
    }
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen(
        [
            os.sys.executable,
            "-m",
            "escalation_app.serve",
            "--env",
            "prod",
            "--frontend-port",
            str(port),
            "--backend-port",
            str(port),
            "--backend-host",
            "127.0.0.1",
        ],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"reflex run --env prod exited: {(workdir / 'server.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                import urllib.request

                if urllib.request.urlopen(f"{url}/ping", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"prod server did not start: {(workdir / 'server.log').read_text()[-3000:]}")
        yield ProductionServer(url, port, server.pid, db_url, workdir / "server.log")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        redis.Redis.from_url(f"{REDIS_URL}/{redis_db}").flushdb()
        drop_pg_database(db_name)


def test_arrival_crosses_workers(browser, multiworker_url, request):
    url, port, server_pid = multiworker_url.url, multiworker_url.port, multiworker_url.pid
    people = Browsers(browser, url)
    failed = True
    try:
        # The first sign-ins meet workers that have just started (the suite's other servers and
        # browsers still busy the machine): give them longer than the usual 5 s.
        seniors = [
            people.signed_in("riley@northwind.example", "/escalations", timeout=20_000)
            for _ in range(SENIOR_TABS // 2)
        ]
        seniors += [
            people.signed_in("morgan@northwind.example", "/escalations") for _ in range(SENIOR_TABS // 2)
        ]
        for page in seniors:
            expect(page.locator("article").first).to_be_visible()
        per_worker = _worker_connections(port, server_pid)
        assert len(per_worker) >= 2, f"all tabs landed on one worker: {per_worker}"

        summary = f"Cross-worker arrival {uuid.uuid4().hex[:6]}"
        engineer = _create_session_with_steps(people, summary, [("Checked both workers", "Both up")])
        _escalate(engineer, "Arrives everywhere?")
        for page in seniors:
            expect(_card(page, summary)).to_be_visible(timeout=5_000)

        _card(seniors[0], summary).get_by_role("button", name="Pick up").click()
        for page in seniors[1:]:
            expect(_card(page, summary)).to_have_count(0, timeout=5_000)
        failed = False
    finally:
        people.close(request.node.name, failed=failed)


# --------------------------------------------------------------------------- a worker dies

ENGINEER_TABS = 4
ESCALATIONS_PER_TAB = 6
KILL_AFTER_ACKNOWLEDGED = 6  # escalations answered before the kill: the load is running
ESCALATED = "Escalated — your team has been notified"


@dataclasses.dataclass
class Load:
    """What the engineer tabs did, per session: the toast they finally got."""

    answers: dict[int, str] = dataclasses.field(default_factory=dict)
    unanswered: list[int] = dataclasses.field(default_factory=list)  # sent, the socket died first
    reconnects: list[float] = dataclasses.field(default_factory=list)  # seconds to a ready tab again
    acknowledged: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: BaseException | None = None


def _prepare_engineers(db_url: str, run: str) -> list[tuple[str, list[int]]]:
    """Sign-in tokens for Alex and Sam, and fresh sessions (with a step) for each tab to escalate."""
    from sqlmodel import select

    from escalation_app.domain.actors import Actor
    from escalation_app.domain.auth import start_auth_session
    from escalation_app.domain.db import make_engine, session_scope
    from escalation_app.domain.models import User
    from escalation_app.domain.support_sessions import add_step, create_session

    engine = make_engine(db_url)
    tabs = []
    with session_scope(engine) as db:
        for i in range(ENGINEER_TABS):
            email = ("alex", "sam")[i % 2] + "@northwind.example"
            user = db.exec(select(User).where(User.email == email)).one()
            actor = Actor.from_user(user)
            sessions = []
            for k in range(ESCALATIONS_PER_TAB):
                created = create_session(
                    db=db,
                    actor=actor,
                    problem_summary=f"{run} {i}-{k}",
                    problem_domain="Network",
                    client_name="Acme",
                )
                add_step(
                    db=db,
                    actor=actor,
                    session_id=created.id,
                    tried="Restarted the service",
                    result="No change",
                )
                sessions.append(created.id)
            tabs.append((start_auth_session(db=db, user=user), sessions))
    engine.dispose()
    return tabs


def _toasts(msg) -> list[str]:
    """The messages of the toasts in one message from the server."""
    found = []
    for event in msg.events:
        if isinstance(event, dict) and event.get("name") == "_call_function":
            match = TOAST_CALL.search(str(event.get("payload", {}).get("function", "")))
            if match:
                found.append(json.loads(match["message"]))
    return found


async def _engineer(url: str, token: str, sessions: list[int], load: Load) -> None:
    """One engineer tab escalating its sessions one after another, reconnecting like a browser does."""
    from bench.client import ESCALATE, ReflexTab

    tab = ReflexTab(url, token, f"/sessions/{sessions[0]}")
    client_token = tab.token

    async def reconnect() -> ReflexTab:
        began = time.monotonic()
        while time.monotonic() - began < 60:
            again = ReflexTab(url, token, tab.path)
            again.token = client_token  # the same tab: its state comes back from Redis
            try:
                await again.connect(timeout=10)
                if await again.wait_ready(20):
                    load.reconnects.append(time.monotonic() - began)
                    return again
            except Exception:
                pass
            await again.close()
            await asyncio.sleep(0.2)
        raise RuntimeError("the tab could not reconnect within 60 s")

    await tab.connect()
    if not await tab.wait_ready(30):
        # A worker that has just started can be slow to take its first socket: connect again.
        await tab.close()
        tab = await reconnect()
    for session_id in sessions:
        path = f"/sessions/{session_id}"
        for _attempt in range(3):
            if not tab.sio.connected:
                tab = await reconnect()
            start = len(tab.messages)
            await tab.emit(ESCALATE, {"form_data": {"notes": "Stuck", "priority": "high"}}, path=path)
            answer = None
            deadline = time.monotonic() + 20
            while answer is None and time.monotonic() < deadline and tab.sio.connected:
                msg = await tab.wait_for(lambda m: bool(_toasts(m)), start=start, timeout=0.5)
                if msg is not None:
                    answer = _toasts(msg)[0]
            if answer is not None:
                load.answers[session_id] = answer
                if ESCALATED in answer and len(load.answers) >= KILL_AFTER_ACKNOWLEDGED:
                    load.acknowledged.set()
                break
            load.unanswered.append(session_id)  # the worker died with the click: click again
    await tab.close()


def _run_load(url: str, engineers: list[tuple[str, list[int]]], load: Load) -> threading.Thread:
    async def main() -> None:
        await asyncio.gather(*(_engineer(url, token, sessions, load) for token, sessions in engineers))

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the test
            load.error = exc
        finally:
            load.acknowledged.set()

    thread = threading.Thread(target=run, name="engineer-load", daemon=True)
    thread.start()
    return thread


class Pinger:
    """GET /ping every 50 ms from its own thread: does the server keep answering?"""

    def __init__(self, url: str):
        self.url = url
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import urllib.request

        while not self._stop.is_set():
            t = time.monotonic()
            try:
                ok = urllib.request.urlopen(f"{self.url}/ping", timeout=2).status == 200
            except OSError:
                ok = False
            self.results.append((t, ok))
            self._stop.wait(0.05)

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def since(self, t0: float) -> tuple[int, int]:
        """(answered, failed) pings sent after `t0`."""
        after = [ok for t, ok in self.results if t >= t0]
        return sum(after), len(after) - sum(after)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _workers(server_pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(server_pid).children() if p.is_running()}


def _db_truth(db_url: str, run: str) -> tuple[dict[int, int], list[str]]:
    """Per session of this run, its handoff count; and the Northwind queue's summaries, as seniors see it."""
    import sqlalchemy as sa

    from escalation_app.domain.actors import Actor
    from escalation_app.domain.db import make_engine, session_scope
    from escalation_app.domain.handoffs import get_queue
    from escalation_app.domain.models import SessionHandoff, SupportSession, User

    engine = make_engine(db_url)
    with session_scope(engine) as db:
        rows = db.execute(
            sa.select(SupportSession.id, sa.func.count(SessionHandoff.id))
            .outerjoin(SessionHandoff, SessionHandoff.session_id == SupportSession.id)
            .where(SupportSession.problem_summary.startswith(run))
            .group_by(SupportSession.id)
        ).all()
        riley = db.execute(sa.select(User).where(User.email == "riley@northwind.example")).scalar_one()
        queue = [card.problem_summary for card in get_queue(db=db, actor=Actor.from_user(riley))]
    engine.dispose()
    return {session_id: count for session_id, count in rows}, queue


def test_a_worker_killed_under_load_is_respawned_and_nothing_is_lost(browser, multiworker_url, request):
    server = multiworker_url
    run = f"Respawn {uuid.uuid4().hex[:6]}"
    engineers = _prepare_engineers(server.db_url, run)
    people = Browsers(browser, server.url)
    failed = True
    try:
        seniors = [
            people.signed_in("riley@northwind.example", "/escalations", timeout=20_000) for _ in range(4)
        ]
        before = _workers(server.pid)
        assert len(before) == WORKERS, before
        per_worker = _worker_connections(server.port, server.pid)
        victim = max(before, key=lambda pid: per_worker.get(pid, 0))

        load = Load()
        with Pinger(server.url) as pinger:
            loader = _run_load(server.url, engineers, load)
            assert load.acknowledged.wait(60), "the load never got going"
            assert load.error is None, load.error
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)

            respawned_after = None
            while time.monotonic() - killed_at < 30 and _running(server.pid):
                now = _workers(server.pid)
                if victim not in now and len(now) == WORKERS:
                    respawned_after = time.monotonic() - killed_at
                    break
                time.sleep(0.05)
            assert _running(server.pid), "the server exited when one worker died"
            assert respawned_after is not None, f"no new worker within 30 s: {_workers(server.pid)}"
            loader.join(timeout=120)
            assert not loader.is_alive(), "the engineer tabs never finished"
            answered, failures = pinger.since(killed_at)

        assert load.error is None, repr(load.error)
        assert answered > 0 and failures <= 2, f"/ping after the kill: {answered} answered, {failures} failed"

        # Every click was answered in the end: escalated, or (clicked again after an unanswered
        # click that had committed) told it already is.
        handoffs, queue = _db_truth(server.db_url, run)
        all_sessions = [s for _token, sessions in engineers for s in sessions]
        assert sorted(load.answers) == sorted(all_sessions), load.answers
        for session_id, answer in load.answers.items():
            assert handoffs.get(session_id) == 1, (session_id, answer, handoffs.get(session_id))
            assert answer == ESCALATED or session_id in load.unanswered, (session_id, answer)

        # One more arrival after the respawn: every open queue tab, on either worker and
        # reconnected or not, shows it and exactly the database's queue.
        final_token, final_sessions = _prepare_engineers(server.db_url, f"{run} final")[0]
        final = Load()
        _run_load(server.url, [(final_token, final_sessions[:1])], final).join(timeout=60)
        assert final.answers == {final_sessions[0]: ESCALATED}, final.answers
        _handoffs, queue = _db_truth(server.db_url, run)
        for page in seniors:
            expect(_card(page, f"{run} final 0-0")).to_be_visible(timeout=20_000)
            expect(page.locator("article")).to_have_count(len(queue))
            for summary in [s for s in queue if s.startswith(run)]:
                expect(_card(page, summary)).to_have_count(1)
        print(
            f"\nworker {victim} killed under load: respawned after {respawned_after:.2f} s; "
            f"/ping after the kill {answered} answered, {failures} failed; "
            f"{len(load.unanswered)} clicks unanswered (clicked again); "
            f"engineer tabs reconnected in {', '.join(f'{s:.2f}' for s in load.reconnects) or '-'} s"
        )
        failed = False
    finally:
        people.close(request.node.name, failed=failed)
