"""The header's notification bell, on every signed-in page."""

from __future__ import annotations

import reflex as rx

from escalation_app.domain import notifications as notification_rules
from escalation_app.domain.errors import DomainError
from escalation_app.state.base import AppState, error_toast, parse_id, run_db


class BellState(AppState):
    """Unread count and the latest notifications of the signed-in user."""

    unread: int = 0
    items: list[dict[str, str]] = []

    async def _read(self, actor) -> None:
        def read(db, actor):
            return (
                notification_rules.unread_count(db=db, actor=actor),
                notification_rules.list_notifications(db=db, actor=actor, limit=15),
            )

        self.unread, rows = await run_db(read, actor=actor)
        self.items = [
            {
                "id": str(n.id),
                "title": n.title,
                "body": n.body,
                "link": n.link,
                "read": "yes" if n.read else "",
                "created_at": n.created_at.isoformat(),
            }
            for n in rows
        ]

    @rx.event
    async def load(self):
        """Every signed-in page: read the bell and join the account's live room."""
        actor = await self._actor()
        if actor is None:
            return
        self._remember(actor)
        await self._read(actor)
        return await self._sync_live_room(actor)

    @rx.event
    async def refresh(self):
        actor = await self._actor()
        if actor is not None:
            await self._read(actor)

    @rx.event
    async def mark_all_read(self):
        try:
            actor = await self._require_actor()
            await run_db(notification_rules.mark_all_read, actor=actor)
            await self._read(actor)
        except DomainError as error:
            return error_toast(error)

    @rx.event
    async def open_item(self, notification_id: str):
        try:
            actor = await self._require_actor()
            item = next((i for i in self.items if i["id"] == notification_id), None)
            await run_db(
                notification_rules.mark_read,
                actor=actor,
                notification_id=parse_id(notification_id, "Notification not found."),
            )
            await self._read(actor)
        except DomainError as error:
            return error_toast(error)
        if item and item["link"].startswith("/"):
            return rx.redirect(item["link"])
