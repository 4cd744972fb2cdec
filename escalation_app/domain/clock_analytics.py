"""Analytics of the escalation clock: response-target attainment, re-escalations, time to claim.

Read from each escalation's own snapshotted target (`SessionHandoff.response_due_at`,
`clock`), so a policy change never rewrites last month's numbers. Escalations made
before the clock existed have no target and are left out.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import PermissionDenied
from escalation_app.domain.models import HandoffIntent, Priority, SessionHandoff
from escalation_app.domain.types import utcnow

WEEKS = 12
PRIORITY_ORDER = (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW)


@dataclass(frozen=True, slots=True)
class ResponseAnalytics:
    """Series rows (every key always present):

    - per_week: {"week_start", "label", "met", "breached", "attainment_pct" (None with
      nothing decided), "re_escalations"}, oldest first; a week holds the escalations
      created in it, and the re-escalations that fired in it.
    - per_priority: {"priority", "target_minutes" (the median target), "met",
      "breached", "attainment_pct", "claim_p50_minutes" (None when none was claimed)}
      over the whole window, urgent first.
    """

    per_week: list[dict[str, Any]]
    per_priority: list[dict[str, Any]]
    breached_open: int


def _verdict(h: SessionHandoff, now: datetime) -> str | None:
    """The escalation's verdict: "met", "breached", or None while still within its target."""
    due = h.response_due_at
    if due is None:
        return None
    if h.claimed_at is not None:
        return "met" if h.claimed_at <= due else "breached"
    if due < now:
        return "breached"
    return None


def _pct(met: int, breached: int) -> float | None:
    return None if met + breached == 0 else round(met * 100 / (met + breached), 1)


def response_analytics(
    *, db: Session, actor: Actor, now: datetime | None = None, weeks: int = WEEKS
) -> ResponseAnalytics:
    """Response-target attainment per week and priority, re-escalations per week, and the
    median time to claim against the target (owners and admins only)."""
    if not actor.is_manager:
        raise PermissionDenied("Analytics are for account owners and admins.")
    now = (now or utcnow()).astimezone(UTC)
    weeks = max(1, min(weeks, 104))
    since = now - timedelta(days=7 * weeks)
    rows = db.exec(
        select(SessionHandoff).where(
            SessionHandoff.account_id == actor.account_id,
            SessionHandoff.intent == HandoffIntent.ESCALATE,
            col(SessionHandoff.response_due_at).is_not(None),
            col(SessionHandoff.created_at) > since,
            col(SessionHandoff.created_at) <= now,
        )
    ).all()

    def week_of(instant: datetime) -> int:
        return min(weeks - 1, int((now - instant).total_seconds() // (7 * 86400)))

    per_week = []
    for k in reversed(range(weeks)):
        start = now - timedelta(days=7 * (k + 1))
        per_week.append(
            {
                "week_start": start.date().isoformat(),
                "label": f"{start:%b} {start.day}",
                "met": 0,
                "breached": 0,
            }
        )
    re_escalations = [0] * weeks
    by_priority: dict[str, dict[str, Any]] = {
        p.value: {"met": 0, "breached": 0, "targets": [], "claims": []} for p in PRIORITY_ORDER
    }
    breached_open = 0
    for h in rows:
        verdict = _verdict(h, now)
        group = by_priority.setdefault(h.priority, {"met": 0, "breached": 0, "targets": [], "claims": []})
        group["targets"].append((h.response_due_at - h.created_at).total_seconds() / 60)
        if h.claimed_at is not None:
            group["claims"].append((h.claimed_at - h.created_at).total_seconds() / 60)
        if verdict is not None:
            per_week[weeks - 1 - week_of(h.created_at)][verdict] += 1
            group[verdict] += 1
        if verdict == "breached" and h.claimed_at is None and h.outcome is None:
            breached_open += 1
        if h.re_escalated_at is not None and since < h.re_escalated_at <= now:
            re_escalations[week_of(h.re_escalated_at)] += 1
    for index, row in enumerate(per_week):
        row["attainment_pct"] = _pct(row["met"], row["breached"])
        row["re_escalations"] = re_escalations[weeks - 1 - index]
    per_priority = [
        {
            "priority": priority,
            "target_minutes": round(statistics.median(g["targets"])) if g["targets"] else None,
            "met": g["met"],
            "breached": g["breached"],
            "attainment_pct": _pct(g["met"], g["breached"]),
            "claim_p50_minutes": round(statistics.median(g["claims"]), 1) if g["claims"] else None,
        }
        for priority, g in by_priority.items()
    ]
    return ResponseAnalytics(per_week=per_week, per_priority=per_priority, breached_open=breached_open)
