"""The sign-in cookie as Chromium keeps it, and next= in a real browser."""

from __future__ import annotations

import os
import stat

import pytest
from playwright.sync_api import expect

from escalation_app.state.base import TOKEN_COOKIE
from tests.conftest import ROOT

pytestmark = pytest.mark.browser


def _sign_in(page, base: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("Email").fill("morgan@northwind.example")
    page.get_by_label("Password").fill("escalate-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=15_000)


def test_chromium_keeps_the_token_httponly_and_strict_and_scripts_cannot_read_it(browser, app_url):
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, app_url, "/login?next=%2F%2Fevil.example%2Fx")
        # next=//evil.example: the sign-in lands on the product's own page.
        page.wait_for_url(f"{app_url}/escalations**")
        (cookie,) = [c for c in context.cookies() if c["name"] == TOKEN_COOKIE]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["secure"] is False
        assert cookie["path"] == "/" and cookie["expires"] > 0
        assert TOKEN_COOKIE not in page.evaluate("document.cookie")
        assert cookie["value"] not in page.content()
        # Signing out ends the sign-in and the browser drops the cookie.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{app_url}/login**")
        assert [c for c in context.cookies() if c["name"] == TOKEN_COOKIE] == []
        page.goto(f"{app_url}/escalations")
        page.wait_for_url(f"{app_url}/login**")
    finally:
        context.close()


def test_a_wrong_password_shows_the_message_and_keeps_the_next_page(browser, app_url):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{app_url}/login?next=%2Fhistory")
        page.get_by_label("Email").fill("morgan@northwind.example")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("Invalid email or password")
        page.get_by_label("Password").fill("escalate-demo")
        page.get_by_label("Email").fill("morgan@northwind.example")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{app_url}/history**")
    finally:
        context.close()


def test_reflex_state_files_are_private_to_the_server_user(app_url):
    # Dev-mode state files hold each tab's connection headers (the cookie among them).
    states = ROOT / ".states"
    assert states.is_dir()
    assert stat.S_IMODE(os.stat(states).st_mode) == 0o700
