"""/handoffs/[handoff_id]: the handoff context screen."""

from __future__ import annotations

import contextlib

import reflex as rx

from escalation_app import routes
from escalation_app.domain import casework, grading
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain import similar_cases as similar_case_rules
from escalation_app.domain import support_sessions as session_rules
from escalation_app.domain import users as user_rules
from escalation_app.domain.assessments import (
    OFFLINE_LABEL,
    assessment_panel,
    reset_for_retry,
    toggle_checked_step,
)
from escalation_app.domain.case_events import ROOT_CAUSE_LABELS, root_cause_label
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
    customer_sees: str = ""
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
    # After the pick-up (`domain.casework`): who owns and who works the session now.
    session_pk: int = 0
    owner_name: str = ""
    assignee_name: str = ""
    # How this handoff ended ("resolved", "handed_back", "escalated_on"; "" while open).
    outcome: str = ""
    session_status: str = ""
    resolution: str = ""
    root_cause: str = ""
    # The claimer working it: this screen is their working view (Add step, the actions).
    is_assignee: bool = False
    can_reassign: bool = False
    teammates: list[dict[str, str]] = []
    reassign_choices: list[dict[str, str]] = []
    open_dialog: str = ""
    working: bool = False
    # The resolve dialog asks "Was the AI's likely cause right?" about this (`domain.grading`).
    grade_cause: str = ""
    grade_confidence: str = ""
    # Managers only: what the notifications did ("Notified: 4 by email, Slack ✓").
    delivery_text: str = ""
    psa_line: str = ""
    deliveries: list[dict[str, str]] = []
    # Resolved cases like this one that the reader may open, most similar first
    # ({href, reference, summary, meta, fixed_by, took, fix}).
    similar_cases: list[dict[str, str]] = []

    @rx.var
    def is_claimed(self) -> bool:
        return self.claimed_by != ""

    @rx.var
    def offline_label(self) -> str:
        return OFFLINE_LABEL

    @rx.var
    def root_causes(self) -> list[dict[str, str]]:
        return [{"value": value, "label": label} for value, label in ROOT_CAUSE_LABELS.items()]

    @rx.var
    def outcome_text(self) -> str:
        return {
            "resolved": "Resolved",
            "handed_back": "Handed back to " + self.owner_name,
            "escalated_on": "Escalated onward",
        }.get(self.outcome, "")

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
        self.customer_sees = str(snap.get("customer_sees") or "")
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
            h.claimed_by_id is None
            and h.outcome is None
            and actor.can_work_handoffs
            and h.handed_off_by_id != actor.id
            and s.owner_id != actor.id
        )
        self.session_pk = s.id
        self.owner_name = detail.owner_name
        self.assignee_name = detail.assignee_name or ""
        self.outcome = h.outcome or ""
        self.session_status = s.status
        self.resolution = s.resolution or "" if h.outcome == "resolved" else ""
        self.root_cause = root_cause_label(s.root_cause) if h.outcome == "resolved" else ""
        worked = h.outcome is None and h.claimed_by_id is not None and s.assignee_id == h.claimed_by_id
        self.is_assignee = worked and s.assignee_id == actor.id
        self.can_reassign = worked and actor.is_manager
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
        if self.is_assignee or self.can_reassign:
            mates = await run_db(user_rules.list_teammates, actor=actor)
            self.teammates = [
                {"id": str(m.id), "name": m.display_name} for m in mates if m.id != detail.session.owner_id
            ]
            self.reassign_choices = [
                {"id": str(m.id), "name": m.display_name}
                for m in await run_db(casework.reassign_choices, actor=actor, handoff_id=handoff_id)
            ]
        else:
            self.teammates = []
            self.reassign_choices = []
        question = None
        if self.is_assignee:
            question = await run_db(grading.resolve_question, actor=actor, session_id=detail.session.id)
        self.grade_cause = question.likely_cause if question else ""
        self.grade_confidence = question.confidence if question else ""
        self.psa_line = await run_db(psa_status_line, actor=actor, handoff_id=handoff_id)
        similar = await run_db(similar_case_rules.similar_to_handoff, actor=actor, handoff_id=handoff_id)
        self.similar_cases = [
            {
                "href": routes.handoff(case.handoff_id),
                "reference": case.reference,
                "summary": case.problem_summary,
                "meta": " · ".join(x for x in (case.client_name, case.problem_domain) if x),
                "fixed_by": case.fixed_by_name,
                "took": case.time_to_fix_text,
                "fix": case.fix_excerpt,
            }
            for case in similar
        ]
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

    # ------------------------------------------------------------------ after the pick-up

    @rx.event
    def toggle_dialog(self, name: str, is_open: bool):
        """Open or close one of the working view's dialogs ("resolve", "handback", "onward",
        "release", "reassign")."""
        if not is_open:
            self.open_dialog = ""
        elif name in ("resolve", "handback", "onward", "release", "reassign"):
            self.open_dialog = name

    async def _casework(self, fn, *, doing: str, done: str, **kwargs):
        """Run one transition on this screen's session; on success close the dialog and re-read."""
        self.working = True
        async with self._domain_action(busy="working", doing=doing) as action:
            yield
            session_id = await action.run(casework.session_of_handoff, handoff_id=self._route_handoff_id())
            await action.run(fn, session_id=session_id, **kwargs)
            self.open_dialog = ""
            await self._reload(action.actor)
        if action.failed:
            # Someone else's change came first: show what is true now.
            with contextlib.suppress(Exception):
                actor = await self._actor()
                if actor is not None:
                    await self._reload(actor)
            yield action.failure
            return
        yield rx.toast.success(done)

    @rx.event
    async def add_step(self, form_data: dict):
        async with self._domain_action() as action:
            session_id = await action.run(casework.session_of_handoff, handoff_id=self._route_handoff_id())
            await action.run(
                session_rules.add_step,
                session_id=session_id,
                tried=str(form_data.get("tried", "")),
                result=str(form_data.get("result", "")),
            )
            await self._reload(action.actor)
        if action.failed:
            return action.failure
        return [rx.set_value("tried", ""), rx.set_value("result", ""), rx.toast.success("Step added")]

    @rx.event
    async def resolve(self, form_data: dict):
        async for update in self._casework(
            casework.resolve_case,
            doing="resolve it",
            done="Resolved — the escalating engineer has been told",
            fix=str(form_data.get("fix", "")),
            root_cause=str(form_data.get("root_cause", "")),
            ai_verdict=str(form_data.get("ai_verdict", "") or ""),
        ):
            yield update

    @rx.event
    async def hand_back(self, form_data: dict):
        async for update in self._casework(
            casework.hand_back,
            doing="hand it back",
            done=f"Handed back to {self.owner_name}",
            guidance=str(form_data.get("guidance", "")),
        ):
            yield update

    @rx.event
    async def release(self, form_data: dict):
        async for update in self._casework(
            casework.release,
            doing="release it",
            done="Released — it is back in the queue",
            reason=str(form_data.get("reason", "")),
        ):
            yield update

    @rx.event
    async def reassign(self, form_data: dict):
        async for update in self._casework(
            casework.reassign,
            doing="reassign it",
            done="Reassigned",
            to_user_id=str(form_data.get("to_user_id", "")),
            note=str(form_data.get("note", "")),
        ):
            yield update

    @rx.event
    async def escalate_onward(self, form_data: dict):
        target = str(form_data.get("target_user_id", "") or "")
        async for update in self._casework(
            handoff_rules.create_handoff,
            doing="escalate it",
            done="Escalated onward — your team has been notified",
            intent="escalate",
            notes=str(form_data.get("notes", "")),
            priority=str(form_data.get("priority", "") or "normal"),
            target_user_id=None if target in ("", "team") else target,
        ):
            yield update
