"""Live updates: the one place that publishes to account rooms.

Each authorised tab links to its account's room (an `rx.SharedState`) when a queue or
handoff page loads. The room carries only a version counter and what changed (a kind
and a handoff id): no card data, so nothing private travels through it. When the
version moves, a linked tab re-reads what it shows from the database through its own
server-side, role-checked state. Publishing happens only after commit and never
raises into the caller.
"""

from __future__ import annotations

import logging
import uuid

import reflex as rx

from escalation_app.services.tasks import spawn

logger = logging.getLogger(__name__)


class AccountRoom(rx.SharedState):
    """What every linked tab of one account sees change."""

    version: int = 0
    # "created" | "claimed" | "assessed"
    last_kind: str = ""
    last_handoff_id: str = ""


def room_token(account_id: int) -> str:
    """The room of one account (room tokens may not contain underscores)."""
    return f"account{int(account_id)}"


def _app():
    from reflex_base.registry import RegistrationContext

    try:
        return RegistrationContext.get().app
    except LookupError:
        from escalation_app.escalation_app import app

        return app


async def publish(account_id: int, kind: str, handoff_id: uuid.UUID | str) -> None:
    """Bump the account room so every linked tab refreshes; logs and swallows failures."""
    try:
        token = rx.BaseStateToken(ident=room_token(account_id), cls=AccountRoom)
        async with _app().modify_state(token) as root:
            room = await root.get_state(AccountRoom)
            room.version += 1
            room.last_kind = kind
            room.last_handoff_id = str(handoff_id)
    except Exception:
        logger.exception("live update %s for handoff %s failed", kind, handoff_id)


def schedule_publish(account_id: int, kind: str, handoff_id: uuid.UUID | str) -> None:
    """Publish in the background; the caller never waits for the fan-out."""
    spawn(publish(account_id, kind, handoff_id), name=f"publish-{kind}-{handoff_id}")
