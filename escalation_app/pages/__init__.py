"""One module per screen; importing this package registers every page."""

from escalation_app.pages import (
    admin_integrations,
    admin_policy,
    admin_users,
    escalations,
    handoff,
    history,
    login,
    sessions,
)

__all__ = [
    "admin_integrations",
    "admin_policy",
    "admin_users",
    "escalations",
    "handoff",
    "history",
    "login",
    "sessions",
]
