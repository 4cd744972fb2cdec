"""Every route of the app, and builders for the dynamic ones."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

LOGIN = "/login"
SESSIONS = "/sessions"
SESSION_DETAIL = "/sessions/[session_id]"
SESSION_HISTORY = "/sessions/[session_id]/history"
ESCALATIONS = "/escalations"
HANDOFF = "/handoffs/[handoff_id]"
HISTORY = "/history"
ANALYTICS = "/analytics"
ADMIN_USERS = "/admin/users"
ADMIN_INTEGRATIONS = "/admin/integrations"
ADMIN_POLICY = "/admin/policy"


def session_detail(session_id: int | str) -> str:
    return f"/sessions/{session_id}"


def session_history(session_id: int | str) -> str:
    return f"/sessions/{session_id}/history"


def handoff(handoff_id: str) -> str:
    return f"/handoffs/{handoff_id}"


def login_then(path: str) -> str:
    """The sign-in page, returning to `path` afterwards."""
    return f"{LOGIN}?next={quote(path, safe='')}"


# Where the sign-in form posts and sign-out clears the cookie (backend HTTP endpoints).
SIGN_IN_ENDPOINT = "/auth/sign-in"
SIGN_OUT_ENDPOINT = "/auth/sign-out"
NEXT_MAX = 2000
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x20\x7f\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(path: str | None) -> str | None:
    """Only same-site paths are followed after sign-in (no open redirects).

    A path must start with a single "/" and stay a path however many times it is
    percent-decoded: "//host", "/\\host", "/%2f%2fhost", "/%5chost", schemes, control
    characters and whitespace are all refused, as is the sign-in page itself.
    """
    if not path or len(path) > NEXT_MAX:
        return None
    candidate = path
    for _ in range(4):
        path_part = candidate.split("?", 1)[0]
        if (
            not candidate.startswith("/")
            or candidate.startswith("//")
            or _UNSAFE_IN_PATH.search(path_part)
            or _CONTROL.search(candidate)
        ):
            return None
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return None
        decoded = unquote(candidate)
        if decoded == candidate:
            break
        candidate = decoded
    else:
        return None
    if candidate.split("?")[0].rstrip("/") == LOGIN or candidate.startswith(LOGIN + "?"):
        return None
    return path
