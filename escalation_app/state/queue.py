"""/escalations: the team queue and Pick up."""

from __future__ import annotations

import contextlib

import reflex as rx

from escalation_app import routes
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain.errors import AlreadyClaimed
from escalation_app.domain.handoffs import card_view
from escalation_app.services import realtime
from escalation_app.state.base import AppState, run_db


class QueueState(AppState):
    """The cards in the queue, newest first."""

    cards: list[dict[str, str]] = []
    # Who has a card's handoff screen open ({handoff_id, user_id, name}); the page shows
    # them on the card, leaving out its own user. Set by load, then by the live push.
    viewing: list[dict[str, str]] = []
    loaded: bool = False
    claiming_id: str = ""
    # After a lost Pick up: the best next unclaimed escalation for this person, highlighted.
    best_next_id: str = ""

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
        # A Pick up that never finished (a worker that died mid-click) must not leave its
        # button spinning after a reload.
        self.claiming_id = ""
        self.best_next_id = ""
        async with self._domain_action(doing="load the queue", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                await self._follow_live(None)
                yield self._login_redirect()
                return
            await self._follow_live(actor, queue=True)
            scope = realtime.QueueScope(actor.account_id, actor.team_id)
            async with realtime.hub.queue_lock(scope):
                await self._read(actor)
                # Viewers get no live feed, and so no who-is-viewing either.
                self.viewing = await realtime.hub.queue_viewers(scope) if actor.can_work_handoffs else []
                yield
        if action.failed:
            yield action.failure

    @rx.event
    async def pick_up(self, handoff_id: str):
        self.claiming_id = handoff_id
        async with self._domain_action(busy="claiming_id", doing="pick this up") as action:
            yield
            try:
                result = await action.run(handoff_rules.claim_handoff, handoff_id=handoff_id)
            except AlreadyClaimed:
                # Not empty-handed: point at the best card left for them (if that read
                # fails, the toast still says who won).
                self.best_next_id = ""
                with contextlib.suppress(Exception):
                    best = await run_db(handoff_rules.next_best_card, actor=action.actor)
                    self.best_next_id = best.id if best is not None and best.id != handoff_id else ""
                raise
        if action.failed:
            # Lost to someone else: the winner's claim push takes the card out of this queue.
            yield action.failure
            return
        self.best_next_id = ""
        yield rx.redirect(routes.handoff(str(result.handoff.id)))
