"""/handoffs/[handoff_id]: the handoff context screen."""

from __future__ import annotations

import contextlib

import reflex as rx

from escalation_app import routes
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain.assessments import (
    OFFLINE_LABEL,
    assessment_panel,
    reset_for_retry,
    toggle_checked_step,
)
from escalation_app.domain.deliveries import delivery_summary
from escalation_app.domain.deliveries import retry_delivery as retry_delivery_rule
from escalation_app.domain.errors import AlreadyClaimed, NotFound
from escalation_app.domain.handoffs import HandoffDetail
from escalation_app.domain.psa import psa_status_line
from escalation_app.services import realtime
from escalation_app.state.base import AppState, path_part, run_db


class HandoffState(AppState):
    """Everything a senior needs to take over a session."""

    found: bool = False
    loaded: bool = False
    # Moved by the live push when this handoff is claimed or assessed; see LiveRefresher.
    live_tick: int = 0
    # Who else has this screen open ({handoff_id, user_id, name}; the page leaves out
    # its own user). Set by this tab's load, then by the live push.
    viewers: list[dict[str, str]] = []
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

    claimed_by_me: bool = False
    # Managers only: what the notifications did ("Notified: 4 by email, Slack ✓").
    delivery_text: str = ""
    psa_line: str = ""
    deliveries: list[dict[str, str]] = []

    @rx.var
    def is_claimed(self) -> bool:
        return self.claimed_by != ""

    @rx.var
    def offline_label(self) -> str:
        return OFFLINE_LABEL

    def _route_handoff_id(self) -> str:
        return path_part(self.router.url.path, 1)

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
        self.claimed_by_me = h.claimed_by_id == actor.id
        self.can_pick_up = (
            h.claimed_by_id is None and actor.can_work_handoffs and h.handed_off_by_id != actor.id
        )
        self._show_assessment(h)

    def _show_assessment(self, h) -> None:
        panel = assessment_panel(h)
        self.ai_status = panel.status
        self.ai_error = panel.error
        self.ai_model = panel.model
        self.ai_generated_at = panel.generated_at.isoformat() if panel.generated_at else ""
        self.ai_offline = panel.offline
        self.ai_start_here = panel.start_here
        found = panel.assessment
        self.ai_summary = found.summary_prose if found else ""
        self.ai_cause = found.likely_cause if found else ""
        self.ai_confidence = found.confidence if found else ""
        self.ai_known = list(found.what_we_know) if found else []
        self.ai_steps = [
            {"index": str(i), "text": step, "checked": "yes" if i in panel.checked_steps else ""}
            for i, step in enumerate(found.suggested_steps if found else [])
        ]

    async def _reload(self, actor) -> HandoffDetail:
        handoff_id = self._route_handoff_id()
        detail = await run_db(handoff_rules.get_handoff_detail, actor=actor, handoff_id=handoff_id)
        self._show(detail, actor)
        self.psa_line = await run_db(psa_status_line, actor=actor, handoff_id=handoff_id)
        if actor.is_manager:
            summary = await run_db(delivery_summary, actor=actor, handoff_id=handoff_id)
            self.delivery_text = summary.text
            self.deliveries = [
                {
                    "id": str(r.id),
                    "can_retry": "yes" if r.can_retry else "",
                    "channel": r.channel,
                    "recipient": r.recipient,
                    "status": r.status,
                    "attempts": str(r.attempts),
                    "error": r.last_error or "",
                }
                for r in summary.rows
            ]
        else:
            self.delivery_text = ""
            self.deliveries = []
        return detail

    @rx.event
    async def load(self):
        self.loaded = False
        detail = None
        async with self._domain_action(doing="load this handoff", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                await self._follow_live(None)
                yield self._login_redirect()
                return
            try:
                detail = await self._reload(actor)
            except NotFound:
                self.found = False
        if action.failed:
            yield action.failure
            return
        self.loaded = True
        # Only a handoff this actor may read gets followed: the push carries no data, the
        # page re-reads through `refresh` when it ticks. Following it also shows this
        # tab as viewing it; who else is, is read under the room's lock so a later push
        # never lands before this read.
        if detail is None:
            self.viewers = []
            await self._follow_live(actor)
            return
        await self._follow_live(actor, handoff_id=self.handoff_key, handoff_team_id=detail.handoff.team_id)
        if not actor.can_work_handoffs:
            self.viewers = []  # viewers get no live feed: neither shown nor shown who is looking
            return
        async with realtime.hub.presence_lock(self.handoff_key):
            self.viewers = await realtime.hub.viewers_of(actor.account_id, self.handoff_key)
            yield

    @rx.event
    async def refresh(self):
        """Re-read the handoff: it was claimed or assessed elsewhere, or the socket reconnected."""
        async with self._domain_action(doing="update this handoff", reading=True) as action:
            actor = await self._actor()
            if actor is None or not self.found:
                return
            with contextlib.suppress(NotFound):
                await self._reload(actor)
        return action.failure

    @rx.event
    async def pick_up(self):
        async with self._domain_action(doing="pick this up") as action:
            try:
                await action.run(handoff_rules.claim_handoff, handoff_id=self._route_handoff_id())
            except AlreadyClaimed:
                # Show the winner on the page; if that read fails too, the toast still says who.
                with contextlib.suppress(Exception):
                    await self._reload(action.actor)
                raise
            await self._reload(action.actor)
        if action.failed:
            return action.failure
        return rx.toast.success("You picked this up")

    @rx.event
    async def toggle_step(self, index: str, checked: bool):
        """Tick or untick one suggested step (saved for everyone who opens the handoff)."""
        async with self._domain_action() as action:
            await action.run(
                toggle_checked_step,
                handoff_id=self._route_handoff_id(),
                index=index,
                checked=checked,
            )
            await self._reload(action.actor)
        return action.failure

    @rx.event
    async def retry_assessment(self):
        """Ask for the AI assessment again after it failed."""
        async with self._domain_action(doing="ask for the assessment again") as action:
            await action.run(reset_for_retry, handoff_id=self._route_handoff_id())
            await self._reload(action.actor)
        if action.failed:
            return action.failure
        return rx.toast.info("Assessment requested again")

    @rx.event
    async def retry_delivery(self, delivery_id: str):
        """Send a failed email or webhook post again (owners and admins)."""
        async with self._domain_action(doing="send it again") as action:
            await action.run(
                retry_delivery_rule, handoff_id=self._route_handoff_id(), delivery_id=delivery_id
            )
            await self._reload(action.actor)
        if action.failed:
            return action.failure
        return rx.toast.info("Sending again")
