"""/escalations: the team queue and Pick up."""

from __future__ import annotations

import humanize
import reflex as rx

from escalation_app import routes
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain.errors import AlreadyClaimed, DomainError
from escalation_app.domain.handoffs import card_view
from escalation_app.domain.types import utcnow
from escalation_app.services import realtime
from escalation_app.state.base import AppState, error_toast, run_db


def already_claimed_message(error: AlreadyClaimed) -> str:
    """'Already claimed by Riley Chen 2 minutes ago'."""
    return f"Already claimed by {error.winner_name} {humanize.naturaltime(utcnow() - error.claimed_at)}"


class QueueState(AppState):
    """The cards in the queue, newest first."""

    cards: list[dict[str, str]] = []
    loaded: bool = False
    claiming_id: str = ""

    async def _read(self, actor) -> None:
        queue = await run_db(handoff_rules.get_queue, actor=actor)
        self.cards = [card_view(c) for c in queue]
        self.loaded = True

    @rx.event
    async def load(self):
        """Read the queue and follow its live room (page load, and every reconnect).

        Live tabs join the room first and read under its lock, yielding the cards before
        letting go: a push for a change committed meanwhile lands after this read, never
        before it.
        """
        if (actor := await self._page_actor()) is None:
            await self._follow_live(None)
            yield self._login_redirect()
            return
        await self._follow_live(actor, queue=True)
        async with realtime.hub.queue_lock(realtime.QueueScope(actor.account_id, actor.team_id)):
            await self._read(actor)
            yield

    @rx.event
    async def pick_up(self, handoff_id: str):
        self.claiming_id = handoff_id
        yield
        try:
            actor = await self._require_actor()
            result = await run_db(handoff_rules.claim_handoff, actor=actor, handoff_id=handoff_id)
        except AlreadyClaimed as lost:
            # The winner's claim push takes the card out of this queue.
            self.claiming_id = ""
            yield rx.toast.error(already_claimed_message(lost))
            return
        except DomainError as error:
            self.claiming_id = ""
            yield error_toast(error)
            return
        self.claiming_id = ""
        yield rx.redirect(routes.handoff(str(result.handoff.id)))
