"""Only FRONTEND_URL's origin may use the backend: HTTP CORS and the websocket."""

from __future__ import annotations

import httpx
import pytest
import socketio

from escalation_app.state.queue import QueueState
from tests.security.conftest import Tab

EVIL = "http://evil.example"


def test_http_answers_carry_no_cors_grant_for_another_origin(live):
    evil = httpx.get(f"{live.backend}/ping", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in evil.headers
    preflight = httpx.options(
        f"{live.backend}/auth/sign-in",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code >= 400 and "access-control-allow-origin" not in preflight.headers
    # Positive control: the product's origin is granted.
    own = httpx.get(f"{live.backend}/ping", headers={"Origin": live.frontend})
    assert own.headers.get("access-control-allow-origin") == live.frontend


async def test_the_websocket_refuses_another_origin(live, sign_in):
    token = sign_in("riley@northwind.example")
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            f"{live.backend}?token=evil-tab",
            socketio_path="/_event",
            namespaces=["/_event"],
            transports=["websocket"],
            headers={"Origin": EVIL, "Cookie": f"escalation_desk_token={token}"},
            wait_timeout=10,
        )
    await client.disconnect()
    # Positive control: the same cookie from the product's origin gets a live queue.
    async with Tab(live, token, "/escalations") as tab:
        assert tab.var(QueueState, "loaded")
