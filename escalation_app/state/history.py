"""/history: the account's handoffs with filters in the URL, pages and CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

import humanize
import reflex as rx

from escalation_app import routes
from escalation_app.domain import history as history_rules
from escalation_app.domain.case_events import root_cause_label
from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.history import HistoryFilters
from escalation_app.state.base import AppState, run_db

FILTER_KEYS = ("from", "to", "by", "claimer", "intent", "priority", "claimed", "q")


OUTCOME_LABELS = {"resolved": "Resolved", "handed_back": "Handed back", "escalated_on": "Escalated onward"}


def history_url(query: dict[str, str]) -> str:
    return routes.HISTORY + ("?" + urlencode(query) if query else "")


class HistoryState(AppState):
    """One page of handoff history and the filter form's values."""

    loaded: bool = False
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    page_count: int = 1
    people: list[dict[str, str]] = []
    # The filter form, as the URL says (strings, "" = not set).
    filters: dict[str, str] = {}
    previous_href: str = ""
    next_href: str = ""
    exporting: bool = False

    def _filters_from_url(self) -> HistoryFilters:
        query = dict(self.router.url.query_parameters)
        try:
            return history_rules.parse_filters(query)
        except InvalidInput:
            return HistoryFilters()

    @rx.event
    async def load(self):
        self.loaded = False
        self.exporting = False
        problem = None
        try:
            filters = history_rules.parse_filters(dict(self.router.url.query_parameters))
        except InvalidInput as error:
            problem, filters = error, HistoryFilters()

        def read(db, actor):
            return (
                history_rules.list_history(db=db, actor=actor, filters=filters),
                history_rules.history_people(db=db, actor=actor),
            )

        async with self._domain_action(doing="load the history", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            found, people = await run_db(read, actor=actor)
        if action.failed:
            return action.failure
        self.people = [{"id": str(p.id), "name": p.name} for p in people]
        shown = history_rules.filters_to_query(found.filters)
        self.filters = {key: shown.get(key, "") for key in FILTER_KEYS}
        self.total, self.page, self.page_count = found.total, found.page, found.page_count
        self.previous_href = (
            history_url(history_rules.filters_to_query(found.filters.with_page(found.page - 1)))
            if found.has_previous
            else ""
        )
        self.next_href = (
            history_url(history_rules.filters_to_query(found.filters.with_page(found.page + 1)))
            if found.has_next
            else ""
        )
        self.rows = [
            {
                "created_at": r.created_at.isoformat(),
                "href": routes.handoff(r.handoff_id),
                "summary": r.problem_summary,
                "intent": r.intent,
                "priority": r.priority,
                "by": r.handed_off_by_name,
                "claimed_by": r.claimed_by_name or "—",
                "wait": humanize.naturaldelta(r.time_to_claim_seconds)
                if r.time_to_claim_seconds is not None
                else "—",
                "confidence": r.ai_confidence or "—",
                "status": r.session_status,
                "outcome": OUTCOME_LABELS.get(r.outcome or "", "—"),
                "root_cause": root_cause_label(r.root_cause) or "",
            }
            for r in found.rows
        ]
        self.loaded = True
        if problem is not None:
            return rx.toast.error(problem.message)

    @rx.event
    async def apply(self, form_data: dict):
        """Filters go into the URL, so a view can be shared; the page reloads from it."""
        query = {key: str(form_data.get(key, "") or "").strip() for key in FILTER_KEYS}
        async with self._domain_action(doing="filter", reading=True) as action:
            filters = history_rules.parse_filters(query)
        if action.failed:
            return action.failure
        return rx.redirect(history_url(history_rules.filters_to_query(filters)))

    @rx.event
    def clear(self):
        return rx.redirect(routes.HISTORY)

    @rx.event
    async def export_csv(self):
        self.exporting = True
        async with self._domain_action(busy="exporting", doing="export", reading=True) as action:
            yield
            filters = self._filters_from_url()
            csv_text = await action.run(history_rules.export_history_csv, filters=filters)
        if action.failed:
            yield action.failure
            return
        yield rx.download(data=csv_text, filename=history_rules.export_filename())
