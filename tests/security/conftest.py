"""Attacks on the running app, as an attacker would make them: plain HTTP and the real
Reflex websocket protocol (bench/client.py), against the one app server the session
shares with tests/browser/ (tests/app_server.py).

The app runs in this process (Reflex's AppHarnessProd), so a test can change a setting
for the server it attacks (`setting`) and read the database it writes (`fingerprint`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from bench.client import ReflexTab, toast_texts
from escalation_app.domain.db import make_engine
from escalation_app.services import signin_throttle
from escalation_app.settings import get_settings
from escalation_app.state.base import TOKEN_COOKIE

PASSWORD = "escalate-demo"


@dataclass(frozen=True)
class Live:
    """Where the running app answers."""

    frontend: str  # the page origin, also FRONTEND_URL
    backend: str  # HTTP endpoints and the websocket


@pytest.fixture(scope="session")
def live(app_url) -> Live:
    from reflex_base.config import get_config

    return Live(frontend=app_url, backend=get_config().api_url.rstrip("/"))


@pytest.fixture(autouse=True)
def fresh_throttle() -> Iterator[None]:
    """Each attack starts with no failed attempts counted (in-memory limiter of this process)."""
    signin_throttle.reset()
    yield
    signin_throttle.reset()


@pytest.fixture
def setting(monkeypatch) -> Callable[[str, str], None]:
    """Change one setting of the running server for this test (restored afterwards)."""

    def change(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def app_engine(app_database):
    engine = make_engine(app_database)
    yield engine
    engine.dispose()


@pytest.fixture
def fingerprint(app_engine) -> Callable[[], dict[str, list[str]]]:
    """Every row of every table (sign-in touch times aside): equal means nothing changed."""

    def grab() -> dict[str, list[str]]:
        with Session(app_engine) as db:
            tables = {}
            for table in SQLModel.metadata.sorted_tables:
                columns = [c for c in table.columns if c.name != "last_seen_at"]
                tables[table.name] = sorted(repr(tuple(r)) for r in db.execute(sa.select(*columns)).all())
            return tables

    return grab


def sign_in_form(
    live: Live,
    email: str,
    password: str,
    *,
    address: str | None = None,
    next_path: str = "",
    origin: str = "",
) -> httpx.Response:
    """POST the sign-in form as the browser does (Origin included); never follows the redirect."""
    headers = {"Origin": origin or live.frontend}
    if address:
        headers["X-Forwarded-For"] = address
    data = {"email": email, "password": password}
    if next_path:
        data["next"] = next_path
    response = _CLIENT.post(
        f"{live.backend}/auth/sign-in", data=data, headers=headers, follow_redirects=False
    )
    _CLIENT.cookies.clear()  # every call is a fresh browser as far as cookies go
    return response


# One keep-alive connection for the form posts: a new connection per request costs more
# than the sign-in itself and would drown what the timing and throttle tests measure.
_CLIENT = httpx.Client(trust_env=False, timeout=30)


def token_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    token = response.cookies.get(TOKEN_COOKIE)
    assert token, response.headers
    return token


@pytest.fixture
def sign_in(live) -> Callable[[str], str]:
    """A demo user's sign-in token, obtained through the real sign-in endpoint."""

    def do(email: str) -> str:
        return token_of(sign_in_form(live, email, PASSWORD))

    return do


class Tab:
    """A websocket tab on the running app (the Reflex wire protocol)."""

    def __init__(self, live: Live, token: str, path: str, headers: dict[str, str] | None = None):
        self.raw = ReflexTab(live.backend, token, path, headers={"Origin": live.frontend, **(headers or {})})

    async def __aenter__(self) -> Tab:
        await self.raw.connect(timeout=20)
        assert await self.raw.wait_ready(30), "tab not ready"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.raw.close()

    async def send(self, state_cls, handler: str, **payload: Any) -> list[str]:
        """Send one event and return the toasts it produced (waits for the first toast)."""
        start = len(self.raw.messages)
        await self.raw.emit(f"{state_cls.get_full_name()}.{handler}", payload)
        msg = await self.raw.wait_for(lambda m: bool(toast_texts(m)), start=start, timeout=15)
        return [] if msg is None else toast_texts(msg)

    def var(self, state_cls, name: str) -> Any:
        return self.raw.var(state_cls.get_full_name(), name)


@pytest.fixture
def tab(live) -> Callable[..., Tab]:
    def open_tab(token: str, path: str, **kwargs: Any) -> Tab:
        return Tab(live, token, path, **kwargs)

    return open_tab


def is_error(toast: str) -> bool:
    """Whether a toast (bench.client.toast_texts) is an error toast."""
    return '["error"]' in str(json.loads(toast).get("function", ""))


def toast_says(toasts: list[str], text: str) -> bool:
    """Whether one of the toasts (bench.client.toast_texts) shows `text`."""
    return any(text in str(json.loads(t).get("function", "")) for t in toasts)
