"""/admin/policy: the escalation clock's policy (owners and admins)."""

from __future__ import annotations

import reflex as rx

from escalation_app.domain import clock as clock_rules
from escalation_app.state.base import AppState, run_db


def person_field(level: int, user_id) -> str:
    """The form field of one person's checkbox on a level."""
    return f"person_l{level}_{user_id}"


def _minutes(value: int | None) -> str:
    return "" if value is None else str(value)


class PolicyState(AppState):
    """Response targets, the re-escalation ladder, the stalled-claim reminder, the time zone."""

    allowed: bool = False
    loaded: bool = False
    time_zone: str = clock_rules.DEFAULT_TIME_ZONE
    urgent_minutes: str = ""
    high_minutes: str = ""
    normal_minutes: str = ""
    low_minutes: str = ""
    level3_after_minutes: str = ""
    stall_minutes: str = ""
    # Who can be named on a level ({id, name}), and who is named.
    people: list[dict[str, str]] = []
    level2_ids: list[str] = []
    level3_ids: list[str] = []
    updated_by: str = ""
    updated_at: str = ""

    def _show(self, view: clock_rules.PolicyView) -> None:
        self.time_zone = view.time_zone
        self.urgent_minutes = _minutes(view.urgent_minutes)
        self.high_minutes = _minutes(view.high_minutes)
        self.normal_minutes = _minutes(view.normal_minutes)
        self.low_minutes = _minutes(view.low_minutes)
        self.level3_after_minutes = _minutes(view.level3_after_minutes)
        self.stall_minutes = _minutes(view.stall_minutes)
        self.people = [{"id": str(i), "name": name} for i, name in view.people]
        self.level2_ids = [str(i) for i in view.level2_user_ids]
        self.level3_ids = [str(i) for i in view.level3_user_ids]
        self.updated_by = view.updated_by_name
        self.updated_at = view.updated_at.isoformat() if view.updated_at else ""

    @rx.event
    async def load(self):
        self.loaded = False
        async with self._domain_action(doing="load the escalation policy", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            self.allowed = actor.is_manager
            if self.allowed:
                self._show(await run_db(clock_rules.read_policy, actor=actor))
        if action.failed:
            return action.failure
        if not self.allowed:
            self.people = []
        self.loaded = True

    @rx.event
    async def save(self, form_data: dict):
        def text(key: str) -> str:
            return str(form_data.get(key, "") or "")

        def named(level: int) -> list[str]:
            prefix = person_field(level, "")
            return [
                key.removeprefix(prefix)
                for key, value in form_data.items()
                if key.startswith(prefix) and value
            ]

        async with self._domain_action(doing="save the escalation policy") as action:
            await action.run(
                clock_rules.save_policy,
                time_zone=text("time_zone"),
                urgent_minutes=text("urgent_minutes"),
                high_minutes=text("high_minutes"),
                normal_minutes=text("normal_minutes"),
                low_minutes=text("low_minutes"),
                level2_user_ids=named(2),
                level3_after_minutes=text("level3_after_minutes"),
                level3_user_ids=named(3),
                stall_minutes=text("stall_minutes"),
            )
            self._show(await run_db(clock_rules.read_policy, actor=action.actor))
        if action.failed:
            return action.failure
        return rx.toast.success("Escalation policy saved; it applies to new escalations")
