"""The engineer's workspace: their sessions, one session's steps, park and escalate."""

from __future__ import annotations

import contextlib

import reflex as rx

from escalation_app import routes
from escalation_app.domain import case_events, casework, grading
from escalation_app.domain import clock as clock_rules
from escalation_app.domain import completeness as completeness_rules
from escalation_app.domain import handoffs as handoff_rules
from escalation_app.domain import support_sessions as session_rules
from escalation_app.domain import users as user_rules
from escalation_app.domain.auth import resolve_auth_session
from escalation_app.domain.case_events import ROOT_CAUSE_LABELS, root_cause_label
from escalation_app.domain.errors import NotFound
from escalation_app.domain.models import User
from escalation_app.services import ai_review, timing
from escalation_app.settings import get_settings
from escalation_app.state.base import AppState, parse_id, path_part, run_db

INTENT_LABELS = {"park": "Parked", "escalate": "Escalated", "handback": "Handed back"}
OUTCOME_LABELS = {"resolved": "Resolved", "handed_back": "Handed back", "escalated_on": "Escalated onward"}
STATUS_LABELS = {"active": "Active", "paused": "Paused", "escalated": "Escalated", "resolved": "Resolved"}


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"


STEP_CHUNK = 20
STEP_CHUNKS = session_rules.STEPS_MAX // STEP_CHUNK


def _step_row(step) -> dict[str, str]:
    return {
        "position": str(step.position),
        "tried": step.tried,
        "result": step.result or "—",
        "skipped": "yes" if step.skipped else "",
        "created_at": step.created_at.isoformat(),
    }


def _session_id_from_path(path: str) -> int:
    return parse_id(path_part(path, 1), "Session not found.")


class SessionsState(AppState):
    """/sessions: the engineer's own sessions and the New session form."""

    rows: list[dict[str, str]] = []
    loaded: bool = False
    new_open: bool = False
    creating: bool = False

    @rx.event
    async def load(self):
        self.creating = False
        async with self._domain_action(doing="load your sessions", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            summaries = await run_db(session_rules.list_own_sessions, actor=actor)
        if action.failed:
            return action.failure
        self.rows = [
            {
                "id": str(s.id),
                "summary": s.problem_summary,
                "client": s.client_name,
                "domain": s.problem_domain,
                "status": s.status,
                "status_label": STATUS_LABELS.get(s.status, s.status),
                "steps": str(s.step_count),
                "updated_at": s.updated_at.isoformat(),
                "href": routes.session_detail(s.id),
            }
            for s in summaries
        ]
        self.loaded = True

    @rx.event
    def set_new_open(self, value: bool):
        self.new_open = value

    @rx.event
    async def create(self, form_data: dict):
        self.creating = True
        async with self._domain_action(busy="creating") as action:
            yield
            support_session = await action.run(
                session_rules.create_session,
                problem_summary=str(form_data.get("problem_summary", "")),
                problem_domain=str(form_data.get("problem_domain", "")),
                client_name=str(form_data.get("client_name", "")),
                psa_ticket_id=str(form_data.get("psa_ticket_id", "")),
            )
        if action.failed:
            yield action.failure
            return
        self.new_open = False
        yield rx.redirect(routes.session_detail(support_session.id))


class SessionDetailState(AppState):
    """/sessions/[session_id]: steps log, Add step, Resolve, Park and Escalate."""

    found: bool = False
    loaded: bool = False
    session_pk: int = 0
    summary: str = ""
    client: str = ""
    domain: str = ""
    ticket: str = ""
    status: str = ""
    handoff_count: int = 0
    # The step log in fixed chunks of STEP_CHUNK steps: adding a step changes (and
    # pushes) only the chunk it lands in, never the whole log (STEPS_MAX / STEP_CHUNK
    # chunks hold the longest log a session may have).
    steps_0: list[dict[str, str]] = []
    steps_1: list[dict[str, str]] = []
    steps_2: list[dict[str, str]] = []
    steps_3: list[dict[str, str]] = []
    steps_4: list[dict[str, str]] = []
    steps_5: list[dict[str, str]] = []
    steps_6: list[dict[str, str]] = []
    steps_7: list[dict[str, str]] = []
    steps_8: list[dict[str, str]] = []
    steps_9: list[dict[str, str]] = []
    step_count: int = 0
    teammates: list[dict[str, str]] = []
    escalate_open: bool = False
    park_open: bool = False
    resolve_open: bool = False
    busy: bool = False
    # After the pick-up: who works it besides its owner, the hand-back guidance, the fix.
    is_owner: bool = True
    owner_name: str = ""
    assignee_name: str = ""
    guidance: str = ""
    guidance_by: str = ""
    guidance_at: str = ""
    resolution: str = ""
    root_cause: str = ""
    # The Escalate dialog's draft (debounced copies of what is typed), for its check.
    draft_notes: str = ""
    draft_sees: str = ""
    pickup_text: str = ""
    ai_hints: bool = False
    asking_senior: bool = False
    senior_questions: list[str] = []
    # Moves on every open and ask, so a late answer never lands in a newer draft.
    ask_round: int = 0
    # The resolve dialog asks "Was the AI's likely cause right?" about this (`domain.grading`).
    grade_cause: str = ""
    grade_confidence: str = ""
    # Snooze ("Wake me", `domain.clock`): the parked session's wake-up, and its last one.
    parked: bool = False
    wake_at: str = ""
    woke_at: str = ""
    # The same two in the account's time zone ("Thu 3 Dec, 09:00 (Europe/London)").
    wake_label: str = ""
    woke_label: str = ""

    @rx.var
    def root_causes(self) -> list[dict[str, str]]:
        return [{"value": value, "label": label} for value, label in ROOT_CAUSE_LABELS.items()]

    @rx.var
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @rx.var
    def can_add_step(self) -> bool:
        return self.can_work and self.status != "resolved"

    @rx.var
    def escalate_blocked_reason(self) -> str:
        if self.status == "resolved":
            return "Resolved sessions cannot be escalated."
        if self.status == "escalated":
            return "Already escalated and waiting for a senior."
        if self.is_owner and self.assignee_name:
            return f"{self.assignee_name} is working on it now."
        return ""

    @rx.var
    def park_blocked_reason(self) -> str:
        if self.status == "resolved":
            return "Resolved sessions cannot be parked."
        if self.status == "escalated":
            return "Escalated sessions wait for a senior; they cannot be parked."
        if not self.is_owner:
            return "Only the session's owner can park it."
        if self.assignee_name:
            return f"{self.assignee_name} is working on it now."
        return ""

    def _route_session_id(self) -> int:
        return _session_id_from_path(self.router.url.path)

    async def _reload(self, actor) -> None:
        session_id = self._route_session_id()

        def read(db, actor):
            support_session = session_rules.get_worked_session(db=db, actor=actor, session_id=session_id)
            steps = session_rules.list_steps(db=db, session_id=session_id)
            mates = user_rules.list_teammates(db=db, actor=actor)
            names = dict.fromkeys((support_session.owner_id, support_session.assignee_id))
            for user_id in names:
                user = db.get(User, user_id) if user_id else None
                names[user_id] = user.display_name if user else ""
            guidance = case_events.current_guidance(db, support_session)
            question = grading.question_for(db, support_session)
            snooze = clock_rules.snooze_of(db, session_id)
            return support_session, steps, mates, names, guidance, question, snooze

        support_session, steps, mates, names, guidance, question, snooze = await run_db(read, actor=actor)
        self.grade_cause = question.likely_cause if question else ""
        self.grade_confidence = question.confidence if question else ""
        self._show_snooze(snooze)
        self.found = True
        self.session_pk = support_session.id
        self.summary = support_session.problem_summary
        self.client = support_session.client_name
        self.domain = support_session.problem_domain
        self.ticket = support_session.psa_ticket_id or ""
        self.status = support_session.status
        self.handoff_count = support_session.handoff_count
        chunks: list[list[dict[str, str]]] = [[] for _ in range(STEP_CHUNKS)]
        for index, step in enumerate(steps[: session_rules.STEPS_MAX]):
            chunks[index // STEP_CHUNK].append(_step_row(step))
        for index, chunk in enumerate(chunks):
            if getattr(self, f"steps_{index}") != chunk:
                setattr(self, f"steps_{index}", chunk)
        self.step_count = min(len(steps), session_rules.STEPS_MAX)
        self.teammates = [
            {"id": str(m.id), "name": m.display_name} for m in mates if m.id != support_session.owner_id
        ]
        self.is_owner = support_session.owner_id == actor.id
        self.owner_name = names.get(support_session.owner_id) or ""
        self.assignee_name = (
            names.get(support_session.assignee_id) or "" if support_session.assignee_id else ""
        )
        self.guidance = guidance.text if guidance else ""
        self.guidance_by = guidance.by_name if guidance else ""
        self.guidance_at = guidance.created_at.isoformat() if guidance else ""
        self.resolution = support_session.resolution or ""
        self.root_cause = root_cause_label(support_session.root_cause)

    @rx.event
    async def load(self):
        self.loaded = False
        # A flag left by a click that never finished (a worker that died mid-click) must
        # not disable this tab's buttons after a reload.
        self.busy = False
        async with self._domain_action(doing="load this session", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            try:
                await self._reload(actor)
            except NotFound:
                self.found = False
        if action.failed:
            return action.failure
        self.loaded = True

    @rx.event
    def set_escalate_open(self, value: bool):
        self.escalate_open = value
        if value:
            # A fresh draft: the check starts from what the session already has.
            self.draft_notes = ""
            self.draft_sees = ""
            self.senior_questions = []
            self.asking_senior = False
            self.ask_round += 1
            return SessionDetailState.load_escalate_hints

    @rx.var
    def completeness(self) -> list[dict[str, str]]:
        """The Escalate dialog's completeness check, from what was typed (debounced)."""
        result = completeness_rules.check(
            step_count=self.step_count,
            client_name=self.client,
            psa_ticket_id=self.ticket,
            notes=self.draft_notes,
            customer_sees=self.draft_sees,
        )
        return [
            {"key": i.key, "label": i.label, "ok": "yes" if i.ok else "", "hint": i.hint}
            for i in result.items
        ]

    @rx.var
    def completeness_missing(self) -> int:
        return sum(1 for item in self.completeness if not item["ok"])

    @rx.event
    def notes_typed(self, value: str):
        self.draft_notes = str(value or "")[: handoff_rules.NOTES_MAX]

    @rx.event
    def sees_typed(self, value: str):
        self.draft_sees = str(value or "")[: completeness_rules.CUSTOMER_SEES_MAX]

    @rx.event
    async def load_escalate_hints(self):
        """This account's "complete escalations were picked up in … vs …", and whether the
        senior-questions hint is available (an API key is configured)."""
        self.ai_hints = bool(get_settings().anthropic_api_key)
        actor = await self._actor()
        if actor is None:
            return
        try:
            comparison = await run_db(completeness_rules.pickup_comparison, account_id=actor.account_id)
        except Exception:
            # Only a hint: a failed read leaves it out.
            comparison = None
        self.pickup_text = (
            ""
            if comparison is None
            else "Complete escalations were picked up in "
            + _minutes(comparison.complete_seconds)
            + " vs "
            + _minutes(comparison.incomplete_seconds)
            + " for incomplete ones (median, last 90 days)."
        )

    @rx.event(background=True)
    async def ask_senior(self):
        """Answer "What will the senior ask?": up to three questions from the fast model, off the
        click path (Send never waits); no key, slow or failed: nothing is shown."""
        async with self:
            if self.asking_senior or not self.found:
                return
            session_id = self.session_pk
            self.asking_senior = True
            self.senior_questions = []
            self.ask_round += 1
            round_id = self.ask_round
            notes, sees = self.draft_notes, self.draft_sees
            token = self._auth_token()
        questions: list[str] = []
        try:
            actor = await run_db(resolve_auth_session, token=token)
            if actor is not None:

                def read(db, actor):
                    support_session = session_rules.get_worked_session(
                        db=db, actor=actor, session_id=session_id
                    )
                    steps = session_rules.list_steps(db=db, session_id=session_id)
                    return ai_review.questions_prompt(
                        summary=support_session.problem_summary,
                        client=support_session.client_name,
                        steps=[f"{st.tried} -> {st.result or 'no result'}" for st in steps],
                        notes=notes,
                        customer_sees=sees,
                    )

                prompt = await run_db(read, actor=actor)
                questions = await ai_review.senior_questions(prompt)
        except Exception:
            questions = []
        async with self:
            if self.ask_round == round_id:
                self.senior_questions = questions
                self.asking_senior = False

    @rx.event
    def set_park_open(self, value: bool):
        self.park_open = value

    @rx.event
    async def add_step(self, form_data: dict):
        async with self._domain_action() as action:
            step = await action.run(
                session_rules.add_step,
                session_id=self._route_session_id(),
                tried=str(form_data.get("tried", "")),
                result=str(form_data.get("result", "")),
            )
        if action.failed:
            return action.failure
        # Only the chunk the step lands in changes, so only it is pushed. A step added
        # from another tab meanwhile shows at the next load, in its place.
        index = min(step.position - 1, session_rules.STEPS_MAX - 1) // STEP_CHUNK
        chunk = getattr(self, f"steps_{index}")
        setattr(self, f"steps_{index}", [*chunk, _step_row(step)])
        self.step_count += 1
        return [rx.set_value("tried", ""), rx.set_value("result", ""), rx.toast.success("Step added")]

    @rx.event
    def set_resolve_open(self, value: bool):
        self.resolve_open = value

    @rx.event
    async def resolve(self, form_data: dict):
        self.busy = True
        async with self._domain_action(busy="busy", doing="resolve it") as action:
            yield
            await action.run(
                casework.resolve_case,
                session_id=self._route_session_id(),
                fix=str(form_data.get("fix", "")),
                root_cause=str(form_data.get("root_cause", "")),
                ai_verdict=str(form_data.get("ai_verdict", "") or ""),
            )
            await self._reload(action.actor)
        if action.failed:
            yield action.failure
            return
        self.resolve_open = False
        yield rx.toast.success("Session resolved")

    async def _hand_off(self, intent: str, form_data: dict):
        timing.stamp("click-start", path=self.router.url.path)
        self.busy = True
        async with self._domain_action(busy="busy", doing=intent) as action:
            yield
            target = str(form_data.get("target_user_id", "") or "")
            if intent == "park":
                handoff = await action.run(
                    clock_rules.park,
                    session_id=self._route_session_id(),
                    notes=str(form_data.get("notes", "")),
                    priority=str(form_data.get("priority", "") or "normal"),
                    target_user_id=None if target in ("", "team") else target,
                    wake=str(form_data.get("wake", "") or "none"),
                    wake_at=str(form_data.get("wake_at", "") or ""),
                )
            else:
                handoff = await action.run(
                    handoff_rules.create_handoff,
                    session_id=self._route_session_id(),
                    intent=intent,
                    notes=str(form_data.get("notes", "")),
                    priority=str(form_data.get("priority", "") or "normal"),
                    target_user_id=None if target in ("", "team") else target,
                    customer_sees=str(form_data.get("customer_sees", "") or ""),
                )
        if action.failed:
            yield action.failure
            return
        timing.stamp("click-commit", path=self.router.url.path, handoff=handoff.id)
        # Committed, with its side effects as outbox jobs: none of them is awaited here.
        self.escalate_open = False
        self.park_open = False
        # The commit decided the new status and count; no need to read them back
        # before telling the engineer (this is the click path).
        self.status = "escalated" if intent == "escalate" else "paused"
        self.handoff_count += 1
        timing.stamp("click-answer", path=self.router.url.path)
        self.guidance = ""
        self.assignee_name = ""
        if intent == "park":
            await self._reload_snooze()
        else:
            self._show_snooze(clock_rules.SnoozeView(parked=False, wake_at=None, woke_at=None))
        if intent == "escalate":
            yield rx.toast.success("Escalated — your team has been notified")
        else:
            yield rx.toast.success("Session parked")

    @rx.event
    async def escalate(self, form_data: dict):
        async for update in self._hand_off("escalate", form_data):
            yield update

    @rx.event
    async def park(self, form_data: dict):
        async for update in self._hand_off("park", form_data):
            yield update

    @rx.event
    async def snooze(self, form_data: dict):
        """Set or move "Wake me" on this parked session."""
        async with self._domain_action(busy="busy", doing="snooze it") as action:
            handoff = await action.run(
                clock_rules.snooze,
                session_id=self._route_session_id(),
                wake=str(form_data.get("wake", "") or ""),
                wake_at=str(form_data.get("wake_at", "") or ""),
            )
        if action.failed:
            return action.failure
        await self._reload_snooze()
        return rx.toast.success("Wake-up set" if handoff.wake_at else "Snooze cancelled")

    @rx.event
    async def unsnooze(self):
        """Cancel the wake-up early (the session stays parked)."""
        async with self._domain_action(busy="busy", doing="cancel the snooze") as action:
            await action.run(clock_rules.unsnooze, session_id=self._route_session_id())
        if action.failed:
            return action.failure
        await self._reload_snooze()
        return rx.toast.success("Snooze cancelled")

    def _show_snooze(self, snooze: clock_rules.SnoozeView) -> None:
        self.parked = snooze.parked
        self.wake_at = snooze.wake_at.isoformat() if snooze.wake_at else ""
        self.woke_at = snooze.woke_at.isoformat() if snooze.woke_at else ""
        self.wake_label = snooze.label(snooze.wake_at)
        self.woke_label = snooze.label(snooze.woke_at)

    async def _reload_snooze(self) -> None:
        session_id = self._route_session_id()
        with contextlib.suppress(Exception):
            # The change is committed; if this read fails the next load shows it.
            self._show_snooze(await run_db(lambda db: clock_rules.snooze_of(db, session_id)))


class SessionHistoryState(AppState):
    """/sessions/[session_id]/history: that session's handoffs, newest first."""

    found: bool = False
    loaded: bool = False
    summary: str = ""
    session_href: str = ""
    rows: list[dict[str, str]] = []
    # Who held the case, in order: "Alex Kim → Riley Chen → Morgan Lee".
    chain: str = ""
    timeline: list[dict[str, str]] = []
    resolution: str = ""
    root_cause: str = ""

    @rx.event
    async def load(self):
        self.loaded = False
        async with self._domain_action(doing="load this history", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            try:
                session_id = _session_id_from_path(self.router.url.path)

                def read(db, actor):
                    support_session = handoff_rules.get_readable_session(
                        db=db, actor=actor, session_id=session_id
                    )
                    entries = case_events.timeline(db, support_session)
                    return (
                        support_session,
                        handoff_rules.list_handoffs(db=db, actor=actor, session_id=session_id),
                        entries,
                        case_events.chain(db, support_session, entries),
                    )

                support_session, rows, entries, chain = await run_db(read, actor=actor)
            except NotFound:
                self.found = False
                self.loaded = True
                return
        if action.failed:
            return action.failure
        self.found = True
        self.summary = support_session.problem_summary
        self.session_href = routes.session_detail(session_id)
        self.rows = [
            {
                "id": r.id,
                "intent": r.intent,
                "priority": r.priority,
                "notes": r.notes or "—",
                "by": r.handed_off_by_name,
                "claimed_by": r.claimed_by_name or "Unclaimed",
                "created_at": r.created_at.isoformat(),
                "claimed_at": r.claimed_at.isoformat() if r.claimed_at else "",
                "href": routes.handoff(r.id),
                "intent_label": INTENT_LABELS.get(r.intent, r.intent),
                "outcome": OUTCOME_LABELS.get(r.outcome or "", "Open"),
                "to": r.target_name or "",
            }
            for r in rows
        ]
        self.chain = " → ".join(chain)
        self.timeline = [
            {
                "kind": e.kind,
                "text": e.text,
                "note": e.note,
                "created_at": e.created_at.isoformat(),
                "href": routes.handoff(e.handoff_id) if e.handoff_id else "",
            }
            for e in entries
        ]
        self.resolution = support_session.resolution or ""
        self.root_cause = root_cause_label(support_session.root_cause)
        self.loaded = True
