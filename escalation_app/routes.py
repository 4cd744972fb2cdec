"""Every route of the app, and builders for the dynamic ones."""

from __future__ import annotations

from urllib.parse import quote

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


def session_detail(session_id: int | str) -> str:
    return f"/sessions/{session_id}"


def session_history(session_id: int | str) -> str:
    return f"/sessions/{session_id}/history"


def handoff(handoff_id: str) -> str:
    return f"/handoffs/{handoff_id}"


def login_then(path: str) -> str:
    """The sign-in page, returning to `path` afterwards."""
    return f"{LOGIN}?next={quote(path, safe='')}"


def safe_next(path: str | None) -> str | None:
    """Only same-site paths are followed after sign-in (no open redirects)."""
    if not path or not path.startswith("/") or path.startswith("//") or path.startswith(LOGIN):
        return None
    return path
