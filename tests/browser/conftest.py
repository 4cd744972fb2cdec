"""The app served by Reflex's AppHarness on 127.0.0.1, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

# The running app (`app_url`) and Chromium (`browser`) come from tests/app_server.py.
from tests.app_server import ARTIFACTS, BUN_BIN  # noqa: F401 - BUN_BIN: test_multiworker


def at(path: str) -> re.Pattern:
    """Match `path` with or without the trailing slash the static build adds."""
    return re.compile(re.escape(path.rstrip("/")) + r"/?(\?.*)?$")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


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
