"""Scale-out: with Redis and two backend workers, an arrival reaches tabs on both workers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
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
            str(Path(os.sys.executable).parent / "reflex"),
            "run",
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
        yield url, port, server.pid
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
    url, port, server_pid = multiworker_url
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
