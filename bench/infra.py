"""Infrastructure for the benches: a throwaway PostgreSQL database, the app server, fakes.

Nothing here is app code: it copies the project to a temp dir, runs `reflex run --env
prod` there against a fresh database, and kills the whole process group afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
BUN_BIN = ROOT / ".tools" / "node_modules" / ".bin"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- PostgreSQL


@contextmanager
def pg_database(prefix: str = "escalation_bench") -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (SQLAlchemy URL); dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    url = f"{base}/{name}"
    try:
        migrate(url)
        yield url
    finally:
        try:
            with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # pragma: no cover - best effort
            log(f"could not drop {name}: {exc}")


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def pg_version() -> str:
    with psycopg.connect(libpq(PG_ADMIN_URL)) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


# --------------------------------------------------------------------------- app server


def _project_copy() -> Path:
    """The project to serve: the working tree (default) or, with BENCH_APP_SOURCE=head, git HEAD."""
    workdir = Path(tempfile.mkdtemp(prefix="escalation-bench-")) / "app"
    source = os.environ.get("BENCH_APP_SOURCE", "worktree")
    if source != "worktree":
        workdir.mkdir()
        rev = "HEAD" if source == "head" else source
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive.stdout, check=True)
        return workdir
    shutil.copytree(
        ROOT,
        workdir,
        ignore=shutil.ignore_patterns(
            ".venv", ".web", ".states", ".git", "test-artifacts", "*.db", "*.db-*", ".tools", "bench", ".env"
        ),
        symlinks=True,
    )
    return workdir


@dataclass
class AppServer:
    url: str
    port: int
    pid: int
    workdir: Path
    workers: int
    extra: dict = field(default_factory=dict)

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return []
        return [root, *root.children(recursive=True)]

    def backend_processes(self) -> list[psutil.Process]:
        """The server's process tree without bun/node (there is no frontend in backend-only mode)."""
        out = []
        for p in self.processes():
            try:
                name = p.name()
            except psutil.Error:
                continue
            if "bun" in name or "node" in name:
                continue
            out.append(p)
        return out

    def rss_mb(self) -> float:
        total = 0
        for p in self.backend_processes():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    def worker_pids(self) -> list[int]:
        """Processes that hold the listening socket's connections (granian workers)."""
        pids = []
        for p in self.backend_processes():
            try:
                cmd = " ".join(p.cmdline())
            except psutil.Error:
                continue
            pids.append((p.pid, cmd))
        return [pid for pid, _ in pids]


@contextmanager
def app_server(
    db_url: str,
    *,
    workers: int = 1,
    env: dict | None = None,
    label: str = "app",
    frontend: str | None = None,
) -> Iterator[AppServer]:
    """`reflex run --env prod --backend-only` from a copy of the project, bound to 127.0.0.1.

    `frontend="prod"` serves the built frontend too, on the same port (what `make run` does);
    `frontend="dev"` runs Reflex's development servers (hot reload, what `make dev` does) and
    the returned server's `frontend_url` is the page to open.
    """
    workdir = _project_copy()
    port = free_port()
    frontend_port = free_port() if frontend == "dev" else port
    redis_db = None
    run_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "PATH": f"{BUN_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "0",
        "PYTHONUNBUFFERED": "1",
        # rxconfig pins frontend_port=3000, which `--backend-only` refuses; 0 means "none".
        "REFLEX_FRONTEND_PORT": "0",
        **(env or {}),
    }
    run_env.pop("REFLEX_REDIS_URL", None)
    if workers > 1:
        import redis

        redis_db = 10 + uuid.uuid4().int % 5
        redis.Redis.from_url(f"{REDIS_URL}/{redis_db}").flushdb()
        run_env["REFLEX_REDIS_URL"] = f"{REDIS_URL}/{redis_db}"
        run_env["GRANIAN_WORKERS"] = str(workers)
    log_path = workdir / "server.log"
    logf = log_path.open("w")
    cmd = [str(Path(sys.executable).parent / "reflex"), "run", "--backend-host", "127.0.0.1"]
    if frontend is None:
        cmd += ["--env", "prod", "--backend-only", "--backend-port", str(port)]
    else:
        run_env.pop("REFLEX_FRONTEND_PORT")
        run_env["REFLEX_API_URL"] = f"http://127.0.0.1:{port}"
        # The backend accepts the websocket only from its own frontend's origin.
        run_env["FRONTEND_URL"] = f"http://127.0.0.1:{frontend_port}"
        cmd += ["--env", frontend, "--frontend-port", str(frontend_port), "--backend-port", str(port)]
        if frontend == "prod":
            cmd.append("--single-port")
    t0 = time.monotonic()
    server = subprocess.Popen(
        cmd, cwd=workdir, env=run_env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"{label}: reflex exited: {log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label}: server did not start: {log_path.read_text()[-3000:]}")
            try:
                up = urllib.request.urlopen(f"{url}/ping", timeout=2).status == 200
                if up and frontend is not None:
                    page = f"http://127.0.0.1:{frontend_port}/login"
                    up = urllib.request.urlopen(page, timeout=30).status == 200
                if up:
                    break
            except OSError:
                time.sleep(0.5)
        started_s = time.monotonic() - t0
        log(f"{label}: backend up on {url} ({workers} worker(s)) in {started_s:.1f}s")
        yield AppServer(
            url=url,
            port=port,
            pid=server.pid,
            workdir=workdir,
            workers=workers,
            extra={"frontend_url": f"http://127.0.0.1:{frontend_port}", "started_s": round(started_s, 1)},
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        logf.close()
        if redis_db is not None:
            import redis

            redis.Redis.from_url(f"{REDIS_URL}/{redis_db}").flushdb()
        keep = os.environ.get("BENCH_KEEP_LOGS")
        if keep:
            shutil.copy(log_path, Path(keep) / f"{label}.log")
        shutil.rmtree(workdir.parent, ignore_errors=True)


# --------------------------------------------------------------------------- fakes


@contextmanager
def blackhole_smtp() -> Iterator[int]:
    """A TCP listener that accepts connections and never says a word (SMTP never answers)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True, name="blackhole-smtp")
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        sock.close()


@contextmanager
def fast_smtp() -> Iterator[int]:
    """aiosmtpd on 127.0.0.1 that accepts everything at once."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


ASSESSMENT = {
    "summary_prose": "The VPN gateway certificate chain is incomplete after the update.",
    "what_we_know": ["Rollback fixes it", "Intermediate CA missing"],
    "likely_cause": "The update removed the intermediate CA from the machine store.",
    "suggested_steps": ["Re-import the intermediate CA", "Push it by GPO"],
    "confidence": "high",
}


@contextmanager
def fake_anthropic(delay: float, replies: int = 2000) -> Iterator[str]:
    """The test suite's fake Messages API, answering `replies` times after `delay` seconds."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes import anthropic as fake_api

    with fake_api.running_fake() as fake:
        for _ in range(replies):
            reply = fake_api.tool_use(ASSESSMENT)
            reply.delay = delay
            fake.script(reply)
        yield fake.base_url


def run_async(coro):
    return asyncio.run(coro)
