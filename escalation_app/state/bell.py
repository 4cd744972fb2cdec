"""The header's notification bell, on every signed-in page."""

from __future__ import annotations

import reflex as rx

from escalation_app.domain import notifications as notification_rules
from escalation_app.domain.actors import Actor
from escalation_app.domain.notifications import read_bell
from escalation_app.services import realtime
from escalation_app.state.base import AppState, parse_id, run_db


class BellState(AppState):
    """Unread count and the latest notifications of the signed-in user.

    Live tabs get new notifications pushed to their user's room (see
    `services/realtime.py`); every read here holds the user's bell lock until its
    delta is out, so a push never lands out of order.
    """

    unread: int = 0
    items: list[dict[str, str]] = []

    async def _read(self, actor: Actor) -> None:
        bell = await run_db(read_bell, actor=actor)
        self.unread = bell["unread"]
        self.items = bell["items"]

    async def _read_and_send(self, actor: Actor, change=None):
        """Apply `change` (a domain call), re-read the bell and send it, in push order."""
        async with realtime.hub.bell_lock(actor.id):
            if change is not None:
                await run_db(change, actor=actor)
            await self._read(actor)
            yield

    @rx.event
    async def load(self):
        """Every signed-in page, after the page's own load: read the bell and follow it live."""
        async with self._domain_action(doing="load your notifications", reading=True):
            actor = await self._actor()
            await self._follow_live(actor, page=False)
            if actor is None:
                return
            self._remember(actor)
            async for update in self._read_and_send(actor):
                yield update
        # Logged by the helper; the page's own load has already told the person.

    @rx.event
    async def mark_all_read(self):
        async with self._domain_action() as action:
            actor = await action.signed_in()
            async for update in self._read_and_send(actor, notification_rules.mark_all_read):
                yield update
        if action.failed:
            yield action.failure

    @rx.event
    async def open_item(self, notification_id: str):
        """Open a notification: mark it read and go where it points.

        The link is read from the database: a pushed notification is in the browser's
        list but not in this tab's server-side copy.
        """
        links: list[str] = []
        async with self._domain_action() as action:
            actor = await action.signed_in()
            wanted = parse_id(notification_id, "Notification not found.")

            def mark_read(db, actor):
                links.append(notification_rules.mark_read(db=db, actor=actor, notification_id=wanted))

            async for update in self._read_and_send(actor, mark_read):
                yield update
        if action.failed:
            yield action.failure
            return
        if links and links[0].startswith("/"):
            yield rx.redirect(links[0])
