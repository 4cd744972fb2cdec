"""One running app per test session (production build, Reflex's AppHarnessProd on 127.0.0.1).

Shared by tests/browser/ and tests/security/ (registered in tests/conftest.py). The
frontend port is chosen before the app starts, so FRONTEND_URL (and with it the only
origin the backend and its websocket accept) is that server's own origin, as in a
deployment.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    IN_CI,
    ROOT,
    app_uses_database,
    create_pg_database,
    drop_pg_database,
    migrate,
    pg_unavailable_reason,
    require_or_skip,
)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts"
BUN_BIN = ROOT / ".tools" / "node_modules" / ".bin"


def missing_browser_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("bun", path=f"{BUN_BIN}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        return "bun not found (make test installs it into .tools/)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def app_database() -> Iterator[str]:
    """A fresh, migrated database with the demo data: PostgreSQL when reachable."""
    require_or_skip(missing_browser_reason())
    reason = pg_unavailable_reason()
    if reason is not None and IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    from escalation_app.domain.db import session_scope
    from escalation_app.domain.demo_cases import load_demo_cases
    from escalation_app.domain.demo_data import load_demo_data
    from escalation_app.domain.demo_history import load_demo_history

    name = None
    if reason is None:
        url, name = create_pg_database()
    else:
        ARTIFACTS.mkdir(exist_ok=True)
        db_file = ARTIFACTS / "browser.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db_file}"
    migrate(url)
    try:
        with app_uses_database(url):
            with session_scope() as db:
                load_demo_data(db)
                load_demo_history(db)
                load_demo_cases(db)
            yield url
    finally:
        if name:
            drop_pg_database(name)


@pytest.fixture(scope="session")
def app_url(app_database) -> Iterator[str]:
    """The running app (production build) on 127.0.0.1: its frontend URL, no trailing slash."""
    from reflex.testing import AppHarnessProd

    from escalation_app.settings import get_settings

    frontend_port = free_port()
    frontend_url = f"http://127.0.0.1:{frontend_port}"

    class Harness(AppHarnessProd):
        def _run_frontend(self):
            import uvicorn
            from reflex.testing import chdir
            from reflex.utils import exec as reflex_exec

            with chdir(self.app_path):
                frontend_app = reflex_exec._frontend_prod_app()
            self.frontend_server = uvicorn.Server(
                uvicorn.Config(app=frontend_app, host="127.0.0.1", port=frontend_port)
            )
            self.frontend_server.run()

    # Reflex keeps per-tab and room state on disk between runs; every run starts clean.
    shutil.rmtree(ROOT / ".states", ignore_errors=True)
    os.environ["PATH"] = f"{BUN_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "0")
    # uvicorn (which serves the harness's backend) would itself believe X-Forwarded-For
    # from 127.0.0.1; leave that to the app's TRUSTED_PROXIES, which the tests set.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    previous = os.environ.get("FRONTEND_URL")
    os.environ["FRONTEND_URL"] = frontend_url
    get_settings.cache_clear()  # rxconfig (reloaded by the harness) reads the origin from here
    try:
        with Harness.create(root=ROOT, app_name="escalation_app") as harness:
            assert harness.frontend_url is not None
            assert harness.frontend_url.rstrip("/") == frontend_url, harness.frontend_url
            yield frontend_url
    finally:
        if previous is None:
            os.environ.pop("FRONTEND_URL", None)
        else:
            os.environ["FRONTEND_URL"] = previous
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def browser(app_url):
    """Debian's Chromium through Playwright (tests using it are marked `browser` and run last)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
