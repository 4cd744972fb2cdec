"""The app served by Reflex's AppHarness on 127.0.0.1, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
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


def at(path: str) -> re.Pattern:
    """Match `path` with or without the trailing slash the static build adds."""
    return re.compile(re.escape(path.rstrip("/")) + r"/?(\?.*)?$")


def _missing_browser_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("bun", path=f"{BUN_BIN}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        return "bun not found (make test installs it into .tools/)"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def app_database() -> Iterator[str]:
    """A fresh, migrated database with the demo data: PostgreSQL when reachable."""
    require_or_skip(_missing_browser_reason())
    reason = pg_unavailable_reason()
    if reason is not None and IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    from escalation_app.domain.db import session_scope
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
            yield url
    finally:
        if name:
            drop_pg_database(name)


@pytest.fixture(scope="session")
def app_url(app_database) -> Iterator[str]:
    """The running app (production build) on 127.0.0.1."""
    from reflex.testing import AppHarnessProd

    # Reflex keeps per-tab and room state on disk between runs; every run starts clean.
    shutil.rmtree(ROOT / ".states", ignore_errors=True)
    os.environ["PATH"] = f"{BUN_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "0")
    with AppHarnessProd.create(root=ROOT, app_name="escalation_app") as harness:
        assert harness.frontend_url is not None
        yield harness.frontend_url.rstrip("/").replace("localhost", "127.0.0.1")


@pytest.fixture(scope="session")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Browsers:
    """Opens isolated browser contexts (one per person) and signs them in."""

    def __init__(self, browser, app_url: str):
        self.browser = browser
        self.app_url = app_url
        self.pages = []
        self.contexts = []

    def page(self, **context_args):
        context = self.browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context_args})
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        self.pages.append(page)
        return page

    def signed_in(self, email: str, path: str = "/sessions", *, timeout: float = 5_000, **context_args):
        from playwright.sync_api import expect

        page = self.page(**context_args)
        page.goto(f"{self.app_url}{path}")
        page.wait_for_url(re.compile(r"/login"))
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("escalate-demo")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=timeout)
        page.wait_for_url(at(path))
        return page

    def url(self, path: str) -> str:
        return f"{self.app_url}{path}"

    def close(self, test_name: str, failed: bool):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for i, page in enumerate(self.pages):
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(ARTIFACTS / f"{test_name}-{i}.png"), full_page=True)
        for context in self.contexts:
            context.close()


@pytest.fixture
def people(browser, app_url, request) -> Iterator[Browsers]:
    people = Browsers(browser, app_url)
    yield people
    report = getattr(request.node, "rep_call", None)
    people.close(request.node.name, failed=bool(report and report.failed))
