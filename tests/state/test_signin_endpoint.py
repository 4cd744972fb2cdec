"""The sign-in endpoint in-process (no server): cookie flags by FRONTEND_URL, origins, bounds."""

from __future__ import annotations

import httpx
import pytest

from escalation_app.services import signin_throttle
from escalation_app.settings import get_settings
from escalation_app.state.base import TOKEN_COOKIE
from escalation_app.state.signin_http import endpoints


@pytest.fixture
def frontend(monkeypatch):
    def use(url: str) -> str:
        monkeypatch.setenv("FRONTEND_URL", url)
        get_settings.cache_clear()
        return url.rstrip("/")

    signin_throttle.reset()
    yield use
    monkeypatch.undo()
    get_settings.cache_clear()
    signin_throttle.reset()


async def post(origin: str, referer: str | None = None, **form: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=endpoints(), client=("198.51.100.20", 5000))
    headers = {"Origin": origin} | ({"Referer": referer} if referer else {})
    async with httpx.AsyncClient(transport=transport, base_url="http://backend.test") as client:
        return await client.post("/auth/sign-in", data=form, headers=headers)


async def test_the_cookie_is_secure_when_the_product_is_served_over_https(world, frontend):
    origin = frontend("https://desk.example.com")
    response = await post(origin, email="morgan@northwind.example", password="escalate-demo")
    assert response.status_code == 303 and response.headers["location"] == f"{origin}/escalations"
    flags = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
    assert flags[0].startswith(f"{TOKEN_COOKIE}=") and {"secure", "httponly", "samesite=strict"} <= set(flags)


async def test_allowed_origins_add_to_frontend_urls(world, frontend, monkeypatch):
    frontend("https://desk.example.com")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://desk2.example.com, https://DESK3.example.com/")
    get_settings.cache_clear()
    for origin, status in [
        ("https://desk2.example.com", 303),
        ("https://desk3.example.com", 303),
        ("https://desk.example.com.evil.example", 403),
        ("null", 403),
    ]:
        response = await post(origin, email="morgan@northwind.example", password="escalate-demo")
        assert response.status_code == status, origin


async def test_a_body_beyond_a_sign_in_is_refused_unread(world, frontend):
    origin = frontend("http://localhost:3000")
    response = await post(origin, email="a" * 20_000, password="x")
    assert response.status_code == 303 and "error=large" in response.headers["location"]
    assert "set-cookie" not in response.headers


async def test_too_many_fields_and_an_unreachable_database_answer_with_a_message(
    world, frontend, monkeypatch
):
    from escalation_app.state import signin_http

    origin = frontend("http://localhost:3000")
    response = await post(origin, **{f"f{i}": "x" for i in range(20)})
    assert "error=large" in response.headers["location"]

    def database_down(*args):
        raise OSError("connection refused")

    monkeypatch.setattr(signin_http, "session_scope", database_down)
    response = await post(origin, email="morgan@northwind.example", password="escalate-demo")
    assert response.status_code == 303 and "error=unavailable" in response.headers["location"]
    assert "set-cookie" not in response.headers


async def test_a_form_sent_before_its_next_field_was_filled_lands_on_the_page_asked_for(world, frontend):
    # The hidden `next` field is filled once the sign-in page has its state; a quick
    # sign-in posts it empty, and the page's own address still says where to go.
    origin = frontend("http://localhost:3000")
    sign_in = {"email": "alex@northwind.example", "password": "escalate-demo"}
    for referer, lands_on in [
        (f"{origin}/login?next=%2Fescalations", "/escalations"),
        (f"{origin}/login/?next=/history", "/history"),
        # Only the sign-in page of this origin, and only a same-site path.
        ("http://evil.example/login?next=%2Fescalations", "/sessions"),
        (f"{origin}/history?next=%2Fescalations", "/sessions"),
        (f"{origin}/login?next=//evil.example/x", "/sessions"),
        (f"{origin}/login?next=https://evil.example", "/sessions"),
    ]:
        response = await post(origin, referer=referer, **sign_in)
        assert response.status_code == 303, referer
        assert response.headers["location"] == f"{origin}{lands_on}", referer
    # A filled-in field wins over the page's address.
    response = await post(origin, referer=f"{origin}/login?next=%2Fhistory", next="/escalations", **sign_in)
    assert response.headers["location"] == f"{origin}/escalations"
