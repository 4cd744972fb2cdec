"""Sign-in and sign-out over plain HTTP, so the sign-in cookie can be HttpOnly.

The sign-in form posts here (not over the websocket): the answer sets the token as an
`HttpOnly; SameSite=Strict` cookie (`Secure` when FRONTEND_URL is https) that no script
can read, and sends the browser on with a 303. The websocket handshake then carries the
cookie, and `AppState` reads it from the connection's headers on the server.

Both endpoints answer only requests whose `Origin` is allowed (FRONTEND_URL's and
ALLOWED_ORIGINS): a form on another site can neither sign someone in as the attacker
nor sign them out. Errors go back to the sign-in page as a code, never as text.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from escalation_app import routes
from escalation_app.domain import validation
from escalation_app.domain.auth import (
    NOT_AN_EMAIL,
    SignInFailed,
    authenticate,
    end_auth_session,
    start_auth_session,
)
from escalation_app.domain.db import session_scope
from escalation_app.domain.errors import InvalidInput
from escalation_app.services import signin_throttle
from escalation_app.settings import get_settings
from escalation_app.state.base import TOKEN_COOKIE, token_from_cookie_header

logger = logging.getLogger(__name__)

# A sign-in form is an email (≤ 254), a password (≤ 72 bytes) and a path: anything
# bigger is not a person signing in.
MAX_FORM_BYTES = 8_192
# Error codes the sign-in page turns into its own messages (see LoginState).
INVALID = "invalid"
BAD_EMAIL = "email"
THROTTLED = "throttled"
TOO_LARGE = "large"
UNAVAILABLE = "unavailable"


def allowed_origin(request: Request) -> str | None:
    """The request's Origin when it is one the product is served from, else None."""
    origin = (request.headers.get("origin") or "").strip().lower()
    return origin if origin in get_settings().cors_origins else None


async def _read_form(request: Request) -> dict[str, str] | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10)
    except ValueError:  # more fields than a sign-in has
        return None
    return {name: values[0] for name, values in fields.items()}


@dataclass(frozen=True, slots=True)
class _Attempt:
    error: str = ""
    wait_seconds: int = 0
    token: str = ""
    role: str = ""


def _attempt(email: str, password: str, address: str) -> _Attempt:
    if signin_throttle.wait_seconds(email, address):
        # Refused unseen (the password is not even checked), and counted: whoever keeps
        # trying while told to wait climbs to the longer windows.
        signin_throttle.record_failure(email, address)
        return _Attempt(error=THROTTLED, wait_seconds=signin_throttle.wait_seconds(email, address))
    with session_scope() as db:
        try:
            user = authenticate(db=db, email=email, password=password)
        except SignInFailed as failed:
            signin_throttle.record_failure(email, address)
            return _Attempt(error=BAD_EMAIL if failed.message == NOT_AN_EMAIL else INVALID)
        token = start_auth_session(db=db, user=user)
        role = str(user.account_role)
    signin_throttle.record_success(email, address)
    return _Attempt(token=token, role=role)


def _back_to_login(
    origin: str, error: str, next_path: str | None, wait: int = 0, email: str = ""
) -> Response:
    query = {"error": error}
    if wait:
        query["wait"] = str(wait)
    if email:
        # The form shows the address again (only a valid one, so the URL stays bounded).
        query["email"] = email
    if next_path:
        query["next"] = next_path
    return RedirectResponse(f"{origin}{routes.LOGIN}?{urlencode(query)}", status_code=303)


def _valid_email(value: str) -> str:
    try:
        return validation.email(value)
    except InvalidInput:
        return ""


def landing_path(role: str, requested: str | None) -> str:
    """Where a sign-in lands: the safe `next=` path, else the role's home page."""
    if requested:
        return requested
    return routes.ESCALATIONS if role in ("owner", "admin", "viewer") else routes.SESSIONS


def _next_from_referer(request: Request, origin: str) -> str | None:
    """`next=` of the sign-in page the form was posted from (same origin only).

    The form's hidden `next` field is filled in once the page has loaded its state; a
    person (or a password manager) quick enough to sign in before that would otherwise
    land on their home page instead of the page they asked for.
    """
    referer = urlsplit(request.headers.get("referer", ""))
    if f"{referer.scheme}://{referer.netloc}" != origin or referer.path.rstrip("/") != routes.LOGIN.rstrip(
        "/"
    ):
        return None
    return routes.safe_next(next(iter(parse_qs(referer.query).get("next", [])), None))


async def sign_in(request: Request) -> Response:
    """POST /auth/sign-in: email, password, next → 303 to the page (cookie set) or back to /login."""
    origin = allowed_origin(request)
    if origin is None:
        return PlainTextResponse("Origin not allowed.", status_code=403)
    form = await _read_form(request)
    if form is None:
        return _back_to_login(origin, TOO_LARGE, None)
    next_path = routes.safe_next(form.get("next")) or _next_from_referer(request, origin)
    peer = request.client.host if request.client else None
    address = signin_throttle.client_address(peer, request.headers.get("x-forwarded-for"))
    try:
        outcome = await asyncio.to_thread(_attempt, form.get("email", ""), form.get("password", ""), address)
    except Exception:
        # Database or Redis down: say so, sign nobody in, never answer with a 500 page.
        logger.exception("sign-in could not be checked")
        return _back_to_login(origin, UNAVAILABLE, next_path)
    if outcome.error:
        email = _valid_email(form.get("email", ""))
        return _back_to_login(origin, outcome.error, next_path, outcome.wait_seconds, email)
    response = RedirectResponse(f"{origin}{landing_path(outcome.role, next_path)}", status_code=303)
    settings = get_settings()
    response.set_cookie(
        TOKEN_COOKIE,
        outcome.token,
        max_age=int(settings.auth_session_max_days * 86_400),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def sign_out(request: Request) -> Response:
    """POST /auth/sign-out: end the sign-in behind the cookie, clear it, 303 to /login."""
    origin = allowed_origin(request)
    if origin is None:
        return PlainTextResponse("Origin not allowed.", status_code=403)
    token = token_from_cookie_header(request.headers.get("cookie"))

    def end() -> None:
        with session_scope() as db:
            end_auth_session(db=db, token=token)

    await asyncio.to_thread(end)
    response = RedirectResponse(f"{origin}{routes.LOGIN}", status_code=303)
    settings = get_settings()
    response.delete_cookie(
        TOKEN_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.secure_cookies
    )
    return response


def endpoints() -> Starlette:
    """The sign-in endpoints, mounted in front of Reflex's own backend routes."""
    return Starlette(
        routes=[
            Route(routes.SIGN_IN_ENDPOINT, sign_in, methods=["POST"]),
            Route(routes.SIGN_OUT_ENDPOINT, sign_out, methods=["POST"]),
        ]
    )
