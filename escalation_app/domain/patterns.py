"""What the desk learns from resolved escalations, for account owners and admins.

Definitions (UTC; the actor's account only):
- A *graded* assessment has a verdict (yes / partly / no) from its source: the
  resolver's answer (human) or Claude's grading (AI). The two are counted apart and
  never mixed; a skipped question or a failed grading is simply not graded.
- *Accuracy* = (yes + ½ · partly) / graded, in percent (one decimal). The table also
  shows each share on its own, so nothing is hidden in the half.
- The *calibration table* groups the grades of the last CALIBRATION_DAYS days (by
  resolve time) by the assessment's own confidence (low, medium, high), plus "all".
- *Accuracy over time*: 12 rolling 7-day windows ending now (as the time-to-claim
  chart), by resolve time, oldest first; None where nothing was graded.
- *Per engineer* (escalations created in the last DAYS days, by who escalated):
  escalations; *quick fixes*: those resolved within QUICK_FIX_MINUTES of their pick-up
  (resolved - claimed ≤ 10 min), also as a share of the escalations; the top root
  causes of their resolved escalations; *hand-backs*: cases handed back to them in
  the window.
- *Recurring problems per client*: among the sessions escalated in the last DAYS days
  with a client, RECURRING_MIN or more with the same root cause (resolved ones), or
  with similar problem summaries (difflib ratio ≥ SIMILARITY on the normalised text).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.analytics import _label, _seconds_between
from escalation_app.domain.case_events import root_cause_label
from escalation_app.domain.errors import PermissionDenied
from escalation_app.domain.models import (
    AIStatus,
    AssessmentGrade,
    CaseEvent,
    CaseEventKind,
    HandoffIntent,
    SessionHandoff,
    SupportSession,
    User,
)
from escalation_app.domain.types import utcnow

DAYS = 30
CALIBRATION_DAYS = 90
WEEKS = 12
QUICK_FIX_MINUTES = 10
RECURRING_MIN = 3
SIMILARITY = 0.8
TOP_CAUSES = 3
RECURRING_LIMIT = 15
CASES_PER_PROBLEM = 8
CONFIDENCE_ORDER = ("low", "medium", "high")
SOURCES = ("human", "ai")


@dataclass(frozen=True, slots=True)
class Tally:
    """Verdict counts of one group of grades."""

    yes: int = 0
    partly: int = 0
    no: int = 0

    @property
    def graded(self) -> int:
        return self.yes + self.partly + self.no

    @property
    def accuracy(self) -> float | None:
        """(yes + ½ partly) / graded in percent, one decimal; None when nothing was graded."""
        if not self.graded:
            return None
        return round((self.yes + 0.5 * self.partly) * 100 / self.graded, 1)

    def share(self, verdict: str) -> float | None:
        if not self.graded:
            return None
        return round(getattr(self, verdict) * 100 / self.graded, 1)

    def add(self, verdict: str | None) -> Tally:
        if verdict not in ("yes", "partly", "no"):
            return self
        values = {"yes": self.yes, "partly": self.partly, "no": self.no}
        values[verdict] += 1
        return Tally(**values)


@dataclass(frozen=True, slots=True)
class Lessons:
    """The learning part of /analytics (rows are plain dicts, every key always present).

    - calibration[source]: {"confidence": "low"|"medium"|"high"|"all", "graded",
      "yes", "partly", "no" (ints), "yes_pct", "partly_pct", "no_pct", "accuracy"
      (floats or None)}, for source "human" and "ai".
    - accuracy_per_week: {"label", "week_start", "human_graded", "human_accuracy",
      "ai_graded", "ai_accuracy"}, 12 rows oldest first.
    - per_engineer: {"user_id", "name", "escalations", "quick_fixes", "quick_pct",
      "top_causes" (list of {"label", "count"}), "hand_backs"}, most escalations first.
    - recurring: {"client", "kind" ("root_cause"|"similar"), "label", "count",
      "cases" (list of {"session_id", "summary"}, newest first)}, most cases first.
    """

    calibration: dict[str, list[dict[str, Any]]]
    accuracy_per_week: list[dict[str, Any]]
    per_engineer: list[dict[str, Any]]
    recurring: list[dict[str, Any]] = field(default_factory=list)


def _require_manager(actor: Actor) -> None:
    if not actor.is_manager:
        raise PermissionDenied("Analytics are for account owners and admins.")


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite aggregates lose the column type
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- grading


def _grades(db: Session, account_id: int, since: datetime, now: datetime):
    resolved = col(AssessmentGrade.resolved_at)
    return db.exec(
        select(
            AssessmentGrade.resolved_at,
            AssessmentGrade.confidence,
            AssessmentGrade.human_verdict,
            AssessmentGrade.ai_verdict,
            AssessmentGrade.ai_status,
        ).where(AssessmentGrade.account_id == account_id, resolved > since, resolved <= now)
    ).all()


def _verdicts(row) -> dict[str, str | None]:
    _, _, human, ai, ai_status = row
    return {"human": human, "ai": ai if ai_status == AIStatus.READY else None}


def _calibration_rows(tallies: dict[str, Tally]) -> list[dict[str, Any]]:
    rows = []
    for confidence in (*CONFIDENCE_ORDER, "all"):
        t = tallies.get(confidence, Tally())
        rows.append(
            {
                "confidence": confidence,
                "graded": t.graded,
                "yes": t.yes,
                "partly": t.partly,
                "no": t.no,
                "yes_pct": t.share("yes"),
                "partly_pct": t.share("partly"),
                "no_pct": t.share("no"),
                "accuracy": t.accuracy,
            }
        )
    return rows


def calibration(rows) -> dict[str, list[dict[str, Any]]]:
    """The calibration table of graded rows (resolved_at, confidence, human, ai, ai_status)."""
    tallies: dict[str, dict[str, Tally]] = {source: {} for source in SOURCES}
    for row in rows:
        confidence = row[1] if row[1] in CONFIDENCE_ORDER else "medium"
        for source, verdict in _verdicts(row).items():
            for key in (confidence, "all"):
                tallies[source][key] = tallies[source].get(key, Tally()).add(verdict)
    return {source: _calibration_rows(tallies[source]) for source in SOURCES}


def _accuracy_per_week(rows, now: datetime, weeks: int) -> list[dict[str, Any]]:
    ends = [now - timedelta(days=7 * k) for k in range(weeks)]
    buckets: dict[int, dict[str, Tally]] = defaultdict(lambda: {s: Tally() for s in SOURCES})
    for row in rows:
        at = _as_utc(row[0])
        for k, end in enumerate(ends):
            if end - timedelta(days=7) < at <= end:
                for source, verdict in _verdicts(row).items():
                    buckets[k][source] = buckets[k][source].add(verdict)
                break
    series = []
    for k in reversed(range(weeks)):
        start = ends[k] - timedelta(days=7)
        tallies = buckets.get(k, {s: Tally() for s in SOURCES})
        series.append(
            {
                "week_start": start.date().isoformat(),
                "label": _label(start.date().isoformat()),
                "human_graded": tallies["human"].graded,
                "human_accuracy": tallies["human"].accuracy,
                "ai_graded": tallies["ai"].graded,
                "ai_accuracy": tallies["ai"].accuracy,
            }
        )
    return series


# ---------------------------------------------------------------------------- per engineer


def _per_engineer(db: Session, account_id: int, since: datetime, now: datetime) -> list[dict[str, Any]]:
    created = col(SessionHandoff.created_at)
    window = (
        SessionHandoff.account_id == account_id,
        SessionHandoff.intent == HandoffIntent.ESCALATE.value,
        created >= since,
        created <= now,
    )
    counts = dict(
        db.exec(
            select(SessionHandoff.handed_off_by_id, func.count())
            .where(*window)
            .group_by(SessionHandoff.handed_off_by_id)
        ).all()
    )
    if not counts:
        return []
    secs = _seconds_between(db.get_bind().dialect.name, CaseEvent.created_at, SessionHandoff.claimed_at)
    resolved = db.exec(
        select(SessionHandoff.handed_off_by_id, CaseEvent.root_cause, secs)
        .select_from(CaseEvent)
        .join(SessionHandoff, col(SessionHandoff.id) == CaseEvent.handoff_id)
        .where(
            *window,
            CaseEvent.kind == CaseEventKind.RESOLVED.value,
            col(SessionHandoff.claimed_at).is_not(None),
        )
    ).all()
    quick: Counter[int] = Counter()
    causes: dict[int, Counter[str]] = defaultdict(Counter)
    for user_id, cause, seconds in resolved:
        if seconds is not None and float(seconds) <= QUICK_FIX_MINUTES * 60:
            quick[user_id] += 1
        if cause:
            causes[user_id][cause] += 1
    at = col(CaseEvent.created_at)
    hand_backs = dict(
        db.exec(
            select(CaseEvent.subject_user_id, func.count())
            .where(
                CaseEvent.account_id == account_id,
                CaseEvent.kind == CaseEventKind.HANDED_BACK.value,
                at >= since,
                at <= now,
            )
            .group_by(CaseEvent.subject_user_id)
        ).all()
    )
    names = dict(db.exec(select(User.id, User.display_name).where(col(User.id).in_(list(counts)))).all())
    rows = []
    for user_id, n in counts.items():
        top = sorted(causes[user_id].items(), key=lambda item: (-item[1], item[0]))[:TOP_CAUSES]
        rows.append(
            {
                "user_id": user_id,
                "name": names.get(user_id, "Unknown"),
                "escalations": int(n),
                "quick_fixes": quick[user_id],
                "quick_pct": round(quick[user_id] * 100 / int(n), 1),
                "top_causes": [{"label": root_cause_label(c), "count": k} for c, k in top],
                "hand_backs": int(hand_backs.get(user_id, 0)),
            }
        )
    rows.sort(key=lambda r: (-r["escalations"], r["name"], r["user_id"]))
    return rows


# ---------------------------------------------------------------------------- per client

_NOISE = re.compile(r"[^a-z0-9 ]+")


def normalise_summary(summary: str) -> str:
    """Lower-case words only, single-spaced: what "similar summaries" compares."""
    return " ".join(_NOISE.sub(" ", (summary or "").lower()).split())


def similar(a: str, b: str) -> bool:
    """Whether two problem summaries say the same thing (difflib ratio ≥ SIMILARITY)."""
    left, right = normalise_summary(a), normalise_summary(b)
    if not left or not right:
        return False
    return left == right or difflib.SequenceMatcher(None, left, right).ratio() >= SIMILARITY


def _clusters(sessions: list[tuple[int, str, datetime]]) -> list[list[tuple[int, str, datetime]]]:
    """Greedy clusters of similar summaries (each joins the first cluster it matches)."""
    clusters: list[list[tuple[int, str, datetime]]] = []
    for item in sessions:
        for cluster in clusters:
            if similar(cluster[0][1], item[1]):
                cluster.append(item)
                break
        else:
            clusters.append([item])
    return clusters


def _recurring(db: Session, account_id: int, since: datetime, now: datetime) -> list[dict[str, Any]]:
    created = col(SessionHandoff.created_at)
    escalated = (
        select(SessionHandoff.session_id)
        .where(
            SessionHandoff.account_id == account_id,
            SessionHandoff.intent == HandoffIntent.ESCALATE.value,
            created >= since,
            created <= now,
        )
        .distinct()
    )
    rows = db.exec(
        select(
            SupportSession.id,
            SupportSession.client_name,
            SupportSession.problem_summary,
            SupportSession.root_cause,
            SupportSession.created_at,
        ).where(
            SupportSession.account_id == account_id,
            col(SupportSession.id).in_(escalated),
            SupportSession.client_name != "",
        )
    ).all()
    by_client: dict[str, list] = defaultdict(list)
    for session_id, client, summary, cause, opened in rows:
        by_client[client.strip()].append((session_id, summary, cause, _as_utc(opened)))
    problems = []
    for client, sessions in by_client.items():
        newest_first = sorted(sessions, key=lambda s: (s[3], s[0]), reverse=True)
        by_cause: dict[str, list] = defaultdict(list)
        for s in newest_first:
            if s[2]:
                by_cause[s[2]].append(s)
        for cause, group in by_cause.items():
            if len(group) >= RECURRING_MIN:
                problems.append(
                    _problem(client, "root_cause", f"Same root cause: {root_cause_label(cause)}", group)
                )
        for cluster in _clusters([(s[0], s[1], s[3]) for s in newest_first]):
            if len(cluster) >= RECURRING_MIN:
                problems.append(_problem(client, "similar", f"Similar problem: {cluster[0][1]}", cluster))
    problems.sort(key=lambda p: (-p["count"], p["client"], p["kind"], p["label"]))
    return problems[:RECURRING_LIMIT]


def _problem(client: str, kind: str, label: str, group: list) -> dict[str, Any]:
    return {
        "client": client,
        "kind": kind,
        "label": label,
        "count": len(group),
        "cases": [{"session_id": s[0], "summary": s[1]} for s in group[:CASES_PER_PROBLEM]],
    }


# ---------------------------------------------------------------------------- all of it


def lessons(
    *,
    db: Session,
    actor: Actor,
    now: datetime | None = None,
    days: int = DAYS,
    calibration_days: int = CALIBRATION_DAYS,
    weeks: int = WEEKS,
) -> Lessons:
    """Calibration, accuracy over time, per-engineer patterns and recurring problems."""
    _require_manager(actor)
    now = (now or utcnow()).astimezone(UTC)
    account_id = actor.account_id
    since = now - timedelta(days=days)
    graded_since = min(now - timedelta(days=calibration_days), now - timedelta(days=7 * weeks))
    grades = _grades(db, account_id, graded_since, now)
    in_table = [row for row in grades if _as_utc(row[0]) > now - timedelta(days=calibration_days)]
    return Lessons(
        calibration=calibration(in_table),
        accuracy_per_week=_accuracy_per_week(grades, now, weeks),
        per_engineer=_per_engineer(db, account_id, since, now),
        recurring=_recurring(db, account_id, since, now),
    )
