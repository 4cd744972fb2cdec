"""/escalations: the team queue and Pick up."""

from __future__ import annotations

import humanize
import reflex as rx

from escalation_app import routes
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain.errors import AlreadyClaimed, DomainError
from escalation_app.domain.handoffs import QueueCard
from escalation_app.domain.types import utcnow
from escalation_app.services import after_commit
from escalation_app.state.base import AppState, NotSignedIn, error_toast, run_db

NOTES_EXCERPT = 180


def card_view(card: QueueCard, viewer_id: int, viewer_can_work: bool) -> dict[str, str]:
    """The public fields of one queue card, as the page shows them."""
    notes = card.notes or ""
    excerpt = notes if len(notes) <= NOTES_EXCERPT else notes[: NOTES_EXCERPT - 1].rstrip() + "…"
    return {
        "id": card.id,
        "summary": card.problem_summary,
        "client": card.client_name,
        "intent": card.intent,
        "intent_label": "Escalated" if card.intent == "escalate" else "Parked",
        "priority": card.priority,
        "notes": excerpt,
        "by": card.handed_off_by_name,
        "created_at": card.created_at.isoformat(),
        "href": routes.handoff(card.id),
        "can_pick_up": "yes" if viewer_can_work and card.handed_off_by_id != viewer_id else "",
    }


def already_claimed_message(error: AlreadyClaimed) -> str:
    """'Already claimed by Riley Chen 2 minutes ago'."""
    return f"Already claimed by {error.winner_name} {humanize.naturaltime(utcnow() - error.claimed_at)}"


class QueueState(AppState):
    """The cards in the queue, newest first."""

    cards: list[dict[str, str]] = []
    loaded: bool = False
    claiming_id: str = ""

    async def _refresh(self, actor) -> None:
        queue = await run_db(handoff_rules.get_queue, actor=actor)
        self.cards = [card_view(c, actor.id, actor.can_work_handoffs) for c in queue]

    @rx.event
    async def load(self):
        try:
            actor = await self._require_actor()
        except NotSignedIn:
            return [*await self._sync_live_room(None), self._login_redirect()]
        await self._refresh(actor)
        self.loaded = True
        return await self._sync_live_room(actor)

    @rx.event
    async def refresh(self):
        """Re-read the queue: the account room moved, or the socket reconnected."""
        actor = await self._actor()
        if actor is None:
            return
        self._remember(actor)
        await self._refresh(actor)
        self.loaded = True

    @rx.event
    async def pick_up(self, handoff_id: str):
        self.claiming_id = handoff_id
        yield
        try:
            actor = await self._require_actor()
            result = await run_db(handoff_rules.claim_handoff, actor=actor, handoff_id=handoff_id)
        except AlreadyClaimed as lost:
            self.claiming_id = ""
            self.cards = [c for c in self.cards if c["id"] != handoff_id]
            yield rx.toast.error(already_claimed_message(lost))
            return
        except DomainError as error:
            self.claiming_id = ""
            yield error_toast(error)
            return
        if result.newly_claimed:
            after_commit.handoff_claimed(result.handoff)
        self.claiming_id = ""
        self.cards = [c for c in self.cards if c["id"] != handoff_id]
        yield rx.redirect(routes.handoff(str(result.handoff.id)))
