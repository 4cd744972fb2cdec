"""/handoffs/[handoff_id]: the handoff context screen."""

from __future__ import annotations

import contextlib

import reflex as rx

from escalation_app import routes
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain.errors import AlreadyClaimed, DomainError, NotFound
from escalation_app.domain.handoffs import HandoffDetail
from escalation_app.services import after_commit
from escalation_app.state.base import AppState, NotSignedIn, error_toast, run_db
from escalation_app.state.queue import already_claimed_message


class HandoffState(AppState):
    """Everything a senior needs to take over a session."""

    found: bool = False
    loaded: bool = False
    handoff_key: str = ""
    summary: str = ""
    client: str = ""
    ticket: str = ""
    domain: str = ""
    intent: str = ""
    priority: str = ""
    notes: str = ""
    handed_off_by: str = ""
    created_at: str = ""
    target_name: str = ""
    steps: list[dict[str, str]] = []
    snapshot_status: str = ""
    snapshot_confidence: str = ""
    snapshot_step_count: str = ""
    session_history_href: str = ""
    claimed_by: str = ""
    claimed_at: str = ""
    can_pick_up: bool = False
    # AI assessment panel
    ai_status: str = ""
    ai_error: str = ""
    ai_model: str = ""
    ai_generated_at: str = ""
    ai_offline: bool = False
    ai_summary: str = ""
    ai_cause: str = ""
    ai_confidence: str = ""
    ai_known: list[str] = []
    ai_steps: list[dict[str, str]] = []
    ai_start_here: str = ""

    @rx.var
    def is_claimed(self) -> bool:
        return self.claimed_by != ""

    def _route_handoff_id(self) -> str:
        parts = self.router.url.path.strip("/").split("/")
        return parts[1] if len(parts) > 1 else ""

    def _show(self, detail: HandoffDetail, actor) -> None:
        h, s = detail.handoff, detail.session
        snap = h.snapshot or {}
        self.found = True
        self.handoff_key = str(h.id)
        self.summary = s.problem_summary
        self.client = s.client_name or "—"
        self.ticket = s.psa_ticket_id or ""
        self.domain = s.problem_domain or "—"
        self.intent = h.intent
        self.priority = h.priority
        self.notes = h.engineer_notes
        self.handed_off_by = detail.handed_off_by_name
        self.created_at = h.created_at.isoformat()
        self.target_name = detail.target_name or ""
        self.steps = [
            {
                "position": str(st.position),
                "tried": st.tried,
                "result": st.result or "—",
                "skipped": "yes" if st.skipped else "",
            }
            for st in detail.steps
        ]
        self.snapshot_status = str(snap.get("status", ""))
        self.snapshot_confidence = str(snap.get("confidence_tier", ""))
        self.snapshot_step_count = str(snap.get("step_count", ""))
        self.session_history_href = routes.session_history(s.id)
        self.claimed_by = detail.claimed_by_name or ""
        self.claimed_at = h.claimed_at.isoformat() if h.claimed_at else ""
        self.can_pick_up = (
            h.claimed_by_id is None and actor.can_work_handoffs and h.handed_off_by_id != actor.id
        )
        self._show_assessment(h)

    def _show_assessment(self, h) -> None:
        data = h.ai_assessment_data or {}
        self.ai_status = h.ai_status
        self.ai_error = h.ai_error or ""
        self.ai_model = h.ai_model or ""
        self.ai_generated_at = h.ai_generated_at.isoformat() if h.ai_generated_at else ""
        self.ai_offline = bool(data.get("offline"))
        self.ai_summary = h.ai_assessment or ""
        self.ai_cause = str(data.get("likely_cause", ""))
        self.ai_confidence = str(data.get("confidence", ""))
        self.ai_known = [str(x) for x in data.get("what_we_know", [])]
        checked = set(h.checked_steps or [])
        self.ai_steps = [
            {"index": str(i), "text": str(step), "checked": "yes" if i in checked else ""}
            for i, step in enumerate(data.get("suggested_steps", []))
        ]
        self.ai_start_here = str(data.get("start_here", ""))

    async def _reload(self, actor) -> None:
        detail = await run_db(
            handoff_rules.get_handoff_detail, actor=actor, handoff_id=self._route_handoff_id()
        )
        self._show(detail, actor)

    @rx.event
    async def load(self):
        self.loaded = False
        try:
            actor = await self._require_actor()
        except NotSignedIn:
            return self._login_redirect()
        try:
            await self._reload(actor)
        except NotFound:
            self.found = False
        self.loaded = True
        return await self._sync_live_room(actor if self.found else None)

    @rx.event
    async def refresh(self):
        """Re-read the handoff: it was claimed or assessed elsewhere, or the socket reconnected."""
        actor = await self._actor()
        if actor is None or not self.found:
            return
        with contextlib.suppress(NotFound):
            await self._reload(actor)

    @rx.event
    async def pick_up(self):
        try:
            actor = await self._require_actor()
            result = await run_db(
                handoff_rules.claim_handoff, actor=actor, handoff_id=self._route_handoff_id()
            )
        except AlreadyClaimed as lost:
            with contextlib.suppress(DomainError):
                await self._reload(await self._require_actor())
            return rx.toast.error(already_claimed_message(lost))
        except DomainError as error:
            return error_toast(error)
        if result.newly_claimed:
            after_commit.handoff_claimed(result.handoff)
        await self._reload(actor)
        return rx.toast.success("You picked this up")
