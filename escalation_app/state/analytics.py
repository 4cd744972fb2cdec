"""/analytics: escalation analytics for owners and admins."""

from __future__ import annotations

from typing import Any

import humanize
import reflex as rx

from escalation_app import routes
from escalation_app.domain import analytics as analytics_rules
from escalation_app.domain import clock_analytics, patterns
from escalation_app.state.base import AppState, run_db


def _duration(seconds: float | None) -> str:
    return humanize.naturaldelta(seconds) if seconds is not None else "—"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


CONFIDENCE_LABELS = {"low": "Low", "medium": "Medium", "high": "High", "all": "All"}


def _calibration_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "confidence": CONFIDENCE_LABELS.get(r["confidence"], r["confidence"]),
            "graded": str(r["graded"]),
            "right": f"{r['yes']} ({_pct(r['yes_pct'])})" if r["graded"] else "—",
            "partly": f"{r['partly']} ({_pct(r['partly_pct'])})" if r["graded"] else "—",
            "wrong": f"{r['no']} ({_pct(r['no_pct'])})" if r["graded"] else "—",
            "accuracy": _pct(r["accuracy"]),
        }
        for r in rows
    ]


def _engineer_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "name": r["name"],
            "escalations": str(r["escalations"]),
            "quick": f"{r['quick_fixes']} ({_pct(r['quick_pct'])})",
            "causes": " · ".join(f"{c['label']} {c['count']}" for c in r["top_causes"]) or "—",
            "hand_backs": str(r["hand_backs"]),
        }
        for r in rows
    ]


class AnalyticsState(AppState):
    """Cards and chart series, computed in SQL by the domain."""

    allowed: bool = False
    loaded: bool = False
    this_week: int = 0
    last_week: int = 0
    change: str = ""
    p50: str = "—"
    p90: str = "—"
    open_unclaimed: int = 0
    oldest: str = "—"
    per_day: list[dict[str, Any]] = []
    claim_weeks: list[dict[str, Any]] = []
    per_engineer: list[dict[str, Any]] = []
    per_domain: list[dict[str, Any]] = []
    top_claimers: list[dict[str, Any]] = []
    resolves: int = 0
    resolve_p50: str = "—"
    resolve_p90: str = "—"
    casework_per_engineer: list[dict[str, Any]] = []
    per_root_cause: list[dict[str, Any]] = []
    # What the desk learns (`domain.patterns`): calibration, accuracy, engineers, clients.
    calibration_human: list[dict[str, str]] = []
    calibration_ai: list[dict[str, str]] = []
    accuracy_weeks: list[dict[str, Any]] = []
    engineer_patterns: list[dict[str, str]] = []
    # One row per recurring problem ({"key", "client", "label", "count"}); its cases
    # are rows of `recurring_cases` with the same "key" ({"key", "summary", "href"}).
    recurring: list[dict[str, str]] = []
    recurring_cases: list[dict[str, str]] = []
    # The escalation clock (`domain.clock_analytics`).
    response_weeks: list[dict[str, Any]] = []
    response_priorities: list[dict[str, str]] = []
    breached_open: int = 0

    @rx.event
    async def load(self):
        self.loaded = False
        async with self._domain_action(doing="load the analytics", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            self.allowed = actor.is_manager
            if not self.allowed:
                self.loaded = True
                return
            a = await run_db(analytics_rules.escalation_analytics, actor=actor)
            lessons = await run_db(patterns.lessons, actor=actor)
            r = await run_db(clock_analytics.response_analytics, actor=actor)
        if action.failed:
            return action.failure
        self.this_week, self.last_week = a.escalations_this_week, a.escalations_last_week
        self.change = (
            "" if a.escalations_change_pct is None else f"{a.escalations_change_pct:+d}% vs last week"
        )
        self.p50 = _duration(a.claim_p50_seconds_this_week)
        self.p90 = _duration(a.claim_p90_seconds_this_week)
        self.open_unclaimed = a.open_unclaimed
        self.oldest = _duration(a.oldest_unclaimed_seconds)
        self.per_day = a.per_day
        self.claim_weeks = a.claim_time_per_week
        self.per_engineer = a.per_engineer
        self.per_domain = a.per_domain
        self.top_claimers = a.top_claimers
        self.resolves = a.resolves_after_claim
        self.resolve_p50 = _duration(a.resolve_p50_seconds)
        self.resolve_p90 = _duration(a.resolve_p90_seconds)
        self.casework_per_engineer = a.casework_per_engineer
        self.per_root_cause = a.per_root_cause
        self.calibration_human = _calibration_rows(lessons.calibration["human"])
        self.calibration_ai = _calibration_rows(lessons.calibration["ai"])
        self.accuracy_weeks = lessons.accuracy_per_week
        self.engineer_patterns = _engineer_rows(lessons.per_engineer)
        self.recurring = [
            {"key": str(i), "client": p["client"], "label": p["label"], "count": str(p["count"])}
            for i, p in enumerate(lessons.recurring)
        ]
        self.recurring_cases = [
            {"key": str(i), "summary": c["summary"], "href": routes.session_history(c["session_id"])}
            for i, p in enumerate(lessons.recurring)
            for c in p["cases"]
        ]
        self.response_weeks = r.per_week
        self.response_priorities = [
            {
                "priority": row["priority"].capitalize(),
                "target": "—" if row["target_minutes"] is None else f"{row['target_minutes']} min",
                "claim_p50": "—" if row["claim_p50_minutes"] is None else f"{row['claim_p50_minutes']:g} min",
                "attainment": "—" if row["attainment_pct"] is None else f"{row['attainment_pct']:g}%",
                "decided": f"{row['met']} met · {row['breached']} breached",
            }
            for row in r.per_priority
        ]
        self.breached_open = r.breached_open
        self.loaded = True
