"""What both PSA clients share: the HTTP client, the error type, the reading of answers,
and the marker that makes a note findable again.

A note carries a marker line ("Escalation Desk ref: {marker}") when the caller gives a
marker (one per note job, stable across its retries). Before posting, a client looks
for a note on the ticket carrying it: a post whose answer was lost (our timeout after
the PSA accepted it, a redirect after the note was created) is then not posted twice.
"""

from __future__ import annotations

import asyncio
import re

import httpx

from escalation_app.services import outbound
from escalation_app.settings import get_settings

_SNIPPET = 200
_RETRY_STATUSES = {408, 425, 429}
_NOT_FOUND_WORDS = ("not found", "does not exist", "doesn't exist", "not exist", "invalid ticket")
MARKER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{3,63}")
MARKER_PREFIX = "Escalation Desk ref: "


class PsaError(Exception):
    """A PSA call that did not work; the message is fit for the record and the screen."""

    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.message = message
        self.retry = retry


def http_client(timeout: float) -> httpx.AsyncClient:
    """The one place a PSA HTTP client is built: redirects are answers, not followed, and
    every connection's address is checked (no internal addresses; see services/outbound.py)."""
    return outbound.client(timeout)


def timeout() -> float:
    return get_settings().psa_timeout_seconds


def check_marker(marker: str | None) -> str | None:
    """`marker` as given, or ValueError when it is not a short id (letters, digits, - _)."""
    if marker is not None and not MARKER_RE.fullmatch(marker):
        raise ValueError("A note marker is 4-64 letters, digits, dashes or underscores.")
    return marker


def marker_line(marker: str) -> str:
    return f"{MARKER_PREFIX}{marker}"


def carries_marker(text: object, marker: str) -> bool:
    """Whether a note's text (plain or HTML) carries `marker` (not a longer one)."""
    pattern = re.escape(MARKER_PREFIX) + re.escape(marker) + r"(?![A-Za-z0-9_-])"
    return isinstance(text, str) and re.search(pattern, text) is not None


def snippet(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:
        return ""
    return " ".join(text[:_SNIPPET].split())


def failure(response: httpx.Response, *, ticket: int | None) -> PsaError:
    """The error for a non-2xx answer (`ticket`: the ticket the request was about)."""
    code = response.status_code
    text = snippet(response)
    detail = f"HTTP {code}" + (f": {text}" if text else "")
    if 300 <= code < 400:
        return PsaError(f"PSA answered with a redirect (HTTP {code}); check the PSA URL", retry=False)
    if code == 401:
        return PsaError("PSA rejected the credentials (HTTP 401)", retry=False)
    if code == 403:
        return PsaError("PSA refused access (HTTP 403): check the API user's permissions", retry=False)
    # The API says "no such ticket" in JSON; an HTML 404 page means the URL is wrong.
    is_json = "json" in response.headers.get("content-type", "").lower()
    if ticket is not None and (
        (code == 404 and is_json) or (code in (400, 422) and any(w in text.lower() for w in _NOT_FOUND_WORDS))
    ):
        return PsaError(f"PSA ticket #{ticket} not found", retry=False)
    if code == 404:
        return PsaError("PSA answered HTTP 404: check the PSA URL", retry=False)
    if code in _RETRY_STATUSES or code >= 500:
        return PsaError(f"PSA unavailable ({detail})", retry=True)
    return PsaError(f"PSA refused the request ({detail})", retry=False)


def check(response: httpx.Response, *, ticket: int | None = None) -> httpx.Response:
    if not 200 <= response.status_code < 300:
        raise failure(response, ticket=ticket)
    return response


def json_of(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


async def call(work, limit: float):
    """Run one PSA exchange, turning network trouble into PsaError."""
    try:
        # httpx bounds each phase; this bounds the whole exchange (lookups + request).
        async with asyncio.timeout(limit * 4):
            return await work()
    except PsaError:
        raise
    except (httpx.TimeoutException, TimeoutError):
        raise PsaError(f"PSA did not answer within {limit:g} s", retry=True) from None
    except httpx.HTTPError as exc:
        raise PsaError(f"Could not reach the PSA ({type(exc).__name__})", retry=True) from None
