"""Escalation analytics for account owners and admins, computed in SQL.

Definitions (all times UTC, all counts about the actor's account only):
- An *escalation* is a handoff with intent "escalate"; parks are private pauses and are
  left out of every number here.
- *This week* is the last 7 days up to `now`, i.e. the window (now - 7 days, now];
  *last week* is the 7 days before that, (now - 14 days, now - 7 days]. Rolling
  windows keep a Monday-morning card from comparing a few hours with a full week.
- *Time to claim* of an escalation is claimed_at - created_at, in seconds. The
  time-to-claim numbers of a window are about the escalations *claimed* in it
  (unclaimed ones have no time to claim yet; "open unclaimed" covers them).
- Percentiles are continuous with linear interpolation between the two nearest ranks,
  exactly PostgreSQL's `percentile_cont`: for n sorted values v[0..n-1] and fraction p,
  position = p * (n - 1), result = v[lo] + (position - lo) * (v[lo + 1] - v[lo]) with
  lo = floor(position). PostgreSQL runs `percentile_cont`; SQLite (no percentile
  function) ranks the values with ROW_NUMBER()/COUNT() windows and interpolates
  between the two ranks in SQL.
- *Open unclaimed* counts escalations not yet claimed (what the seniors' queue shows as
  escalations, whatever the session's status); *oldest unclaimed* is the age of the
  oldest of them.
- After the pick-up (case events, same 30 days as the charts): *time to resolve
  after claim* is the resolution's time minus its handoff's claim time, over the
  resolutions in the window of handoffs that were picked up; hand-backs and onward
  escalations are counted per engineer who made them; resolutions by root cause.
- The per-day chart covers the last 30 UTC calendar days including today; the
  per-engineer, per-domain and top-claimer charts cover the same 30 days (escalations
  created in them; for claimers, escalations claimed in them). The time-to-claim chart
  has 12 rolling 7-day windows ending at `now`, oldest first; its last point is the
  "this week" card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, Integer, String, case, cast, extract, func, literal
from sqlmodel import Session, col, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.case_events import root_cause_label
from escalation_app.domain.errors import PermissionDenied
from escalation_app.domain.models import (
    CaseEvent,
    CaseEventKind,
    HandoffIntent,
    Priority,
    SessionHandoff,
    SupportSession,
    User,
)
from escalation_app.domain.types import utcnow

DAYS = 30
WEEKS = 12
TOP_N = 10
PRIORITIES = tuple(p.value for p in Priority)
UNSPECIFIED_DOMAIN = "Unspecified"
OTHER_DOMAINS = "Other"


@dataclass(frozen=True, slots=True)
class Analytics:
    """The /analytics page: card numbers and chart series (lists of plain dicts).

    Series rows (recharts-ready, every key always present):
    - per_day: {"day": "2026-11-01", "label": "Nov 1", "low", "normal", "high",
      "urgent", "total"} (ints), 30 rows oldest first, zero-filled.
    - claim_time_per_week: {"week_start": "2026-09-06", "week_end": "2026-09-13",
      "label": "Sep 6", "claims": int, "p50_seconds", "p90_seconds",
      "p50_minutes", "p90_minutes"} (floats, None when nothing was claimed),
      12 rows oldest first.
    - per_engineer: {"user_id", "name", "count"}, most escalations first, top 10.
    - per_domain: {"domain", "count"}, most first, top 10 plus "Other" for the rest.
    - top_claimers: {"user_id", "name", "count", "p50_seconds", "p50_minutes"},
      most claims first, top 10.
    """

    generated_at: datetime
    escalations_this_week: int
    escalations_last_week: int
    # (this - last) / last * 100, rounded to a whole percent; None when last week had none.
    escalations_change_pct: int | None
    claims_this_week: int
    claim_p50_seconds_this_week: float | None
    claim_p90_seconds_this_week: float | None
    open_unclaimed: int
    oldest_unclaimed_seconds: int | None
    oldest_unclaimed_since: datetime | None
    per_day: list[dict[str, Any]]
    claim_time_per_week: list[dict[str, Any]]
    per_engineer: list[dict[str, Any]]
    per_domain: list[dict[str, Any]]
    top_claimers: list[dict[str, Any]]
    # After the pick-up, over the same 30 days (case events in them):
    # resolutions of a picked-up case: how long from its claim to its fix.
    resolves_after_claim: int = 0
    resolve_p50_seconds: float | None = None
    resolve_p90_seconds: float | None = None
    # {"user_id", "name", "hand_backs", "onward"}: who handed back or escalated onward.
    casework_per_engineer: list[dict[str, Any]] = field(default_factory=list)
    # {"root_cause", "label", "count"}: resolutions by root cause, most first.
    per_root_cause: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Dialect-specific SQL pieces
# ---------------------------------------------------------------------------


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def _claim_seconds(dialect: str):
    """claimed_at - created_at in seconds, as SQL."""
    if dialect == "postgresql":
        return cast(extract("epoch", SessionHandoff.claimed_at - SessionHandoff.created_at), Float)
    # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'; julianday() reads it with
    # millisecond precision, so round away the floating-point noise at that precision.
    return func.round(
        (func.julianday(SessionHandoff.claimed_at) - func.julianday(SessionHandoff.created_at)) * 86400.0,
        3,
    )


def _utc_day(dialect: str, column):
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD' text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD", type_=String)
    return func.date(column, type_=String)


def _percentiles(db: Session, base, fractions: tuple[float, ...]) -> dict[Any, tuple[int, list[float]]]:
    """Per bucket of `base` (a subquery with columns `bucket` and `secs`): the count and
    the continuous percentiles (linear interpolation) of `secs` at each fraction."""
    if _dialect(db) == "postgresql":
        query = select(
            base.c.bucket,
            func.count(),
            *[func.percentile_cont(p).within_group(base.c.secs) for p in fractions],
        ).group_by(base.c.bucket)
    else:
        ranked = select(
            base.c.bucket,
            base.c.secs,
            (func.row_number().over(partition_by=base.c.bucket, order_by=base.c.secs) - 1).label("rn"),
            func.count().over(partition_by=base.c.bucket).label("n"),
        ).subquery("ranked")
        columns = []
        for p in fractions:
            position = (ranked.c.n - 1) * literal(p, Float)
            lower = cast(position, Integer)  # truncation = floor for position >= 0
            weight = position - lower
            columns.append(
                func.sum(
                    case(
                        (ranked.c.rn == lower, ranked.c.secs * (1 - weight)),
                        (ranked.c.rn == lower + 1, ranked.c.secs * weight),
                        else_=0,
                    )
                )
            )
        query = select(ranked.c.bucket, func.max(ranked.c.n), *columns).group_by(ranked.c.bucket)
    return {
        bucket: (int(count), [float(v) for v in values]) for bucket, count, *values in db.exec(query).all()
    }


# ---------------------------------------------------------------------------
# The numbers
# ---------------------------------------------------------------------------


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value / 60.0, 1)


def _label(day_text: str) -> str:
    day = datetime.strptime(day_text, "%Y-%m-%d")
    return f"{day:%b} {day.day}"


def _escalations(account_id: int):
    return (
        SessionHandoff.account_id == account_id,
        SessionHandoff.intent == HandoffIntent.ESCALATE.value,
    )


def _week_counts(db: Session, account_id: int, now: datetime) -> tuple[int, int]:
    week = timedelta(days=7)
    created = col(SessionHandoff.created_at)
    this_week, last_week = db.exec(
        select(
            func.coalesce(func.sum(case((created > now - week, 1), else_=0)), 0),
            func.coalesce(func.sum(case((created <= now - week, 1), else_=0)), 0),
        ).where(*_escalations(account_id), created > now - 2 * week, created <= now)
    ).one()
    return int(this_week), int(last_week)


def _open_unclaimed(db: Session, account_id: int, now: datetime) -> tuple[int, datetime | None]:
    count, oldest = db.exec(
        select(func.count(), func.min(SessionHandoff.created_at)).where(
            *_escalations(account_id),
            col(SessionHandoff.claimed_by_id).is_(None),
            col(SessionHandoff.outcome).is_(None),
            col(SessionHandoff.created_at) <= now,
        )
    ).one()
    if isinstance(oldest, str):  # an aggregate over SQLite text loses the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest


def _claim_time_per_week(db: Session, account_id: int, now: datetime, weeks: int) -> list[dict[str, Any]]:
    claimed = col(SessionHandoff.claimed_at)
    ends = [now - timedelta(days=7 * k) for k in range(weeks)]  # ends[0] = now
    bucket = case(*[(claimed > end - timedelta(days=7), k) for k, end in enumerate(ends)], else_=None)
    base = (
        select(bucket.label("bucket"), _claim_seconds(_dialect(db)).label("secs"))
        .where(
            *_escalations(account_id),
            claimed.is_not(None),
            claimed > now - timedelta(days=7 * weeks),
            claimed <= now,
        )
        .subquery("claims")
    )
    stats = _percentiles(db, base, (0.5, 0.9))
    series = []
    for k in reversed(range(weeks)):
        count, (p50, p90) = stats.get(k, (0, [None, None]))
        start = ends[k] - timedelta(days=7)
        series.append(
            {
                "week_start": start.date().isoformat(),
                "week_end": ends[k].date().isoformat(),
                "label": _label(start.date().isoformat()),
                "claims": count,
                "p50_seconds": _seconds(p50),
                "p90_seconds": _seconds(p90),
                "p50_minutes": _minutes(p50),
                "p90_minutes": _minutes(p90),
            }
        )
    return series


def _per_day(db: Session, account_id: int, now: datetime, first_day: datetime, days: int):
    created = col(SessionHandoff.created_at)
    base = (
        select(_utc_day(_dialect(db), created).label("day"), col(SessionHandoff.priority).label("priority"))
        .where(*_escalations(account_id), created >= first_day, created <= now)
        .subquery("per_day")
    )
    counts = db.exec(
        select(base.c.day, base.c.priority, func.count()).group_by(base.c.day, base.c.priority)
    ).all()
    series = {}
    for offset in range(days):
        day = (first_day + timedelta(days=offset)).date().isoformat()
        series[day] = {"day": day, "label": _label(day), **dict.fromkeys(PRIORITIES, 0), "total": 0}
    for day, priority, count in counts:
        row = series.get(str(day))
        if row is None:
            continue
        if priority in PRIORITIES:
            row[priority] += int(count)
        row["total"] += int(count)
    return list(series.values())


def _per_engineer(db: Session, account_id: int, now: datetime, since: datetime, top_n: int):
    created = col(SessionHandoff.created_at)
    base = (
        select(col(SessionHandoff.handed_off_by_id).label("user_id"), func.count().label("n"))
        .where(*_escalations(account_id), created >= since, created <= now)
        .group_by(SessionHandoff.handed_off_by_id)
        .subquery("per_engineer")
    )
    rows = db.exec(
        select(base.c.user_id, User.display_name, base.c.n)
        .join(User, col(User.id) == base.c.user_id)
        .order_by(base.c.n.desc(), User.display_name, base.c.user_id)
        .limit(top_n)
    ).all()
    return [{"user_id": uid, "name": name, "count": int(n)} for uid, name, n in rows]


def _per_domain(db: Session, account_id: int, now: datetime, since: datetime, top_n: int, total: int):
    created = col(SessionHandoff.created_at)
    base = (
        select(col(SupportSession.problem_domain).label("domain"))
        .select_from(SessionHandoff)
        .join(SupportSession, col(SupportSession.id) == SessionHandoff.session_id)
        .where(*_escalations(account_id), created >= since, created <= now)
        .subquery("per_domain")
    )
    count = func.count()
    rows = db.exec(
        select(base.c.domain, count).group_by(base.c.domain).order_by(count.desc(), base.c.domain)
    ).all()
    merged: dict[str, int] = {}
    for domain, n in rows:
        name = (domain or "").strip() or UNSPECIFIED_DOMAIN
        merged[name] = merged.get(name, 0) + int(n)
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    series = [{"domain": name, "count": n} for name, n in ordered[:top_n]]
    rest = total - sum(row["count"] for row in series)
    if rest > 0:
        series.append({"domain": OTHER_DOMAINS, "count": rest})
    return series


def _top_claimers(db: Session, account_id: int, now: datetime, since: datetime, top_n: int):
    claimed = col(SessionHandoff.claimed_at)
    base = (
        select(col(SessionHandoff.claimed_by_id).label("bucket"), _claim_seconds(_dialect(db)).label("secs"))
        .where(*_escalations(account_id), claimed.is_not(None), claimed >= since, claimed <= now)
        .subquery("claims")
    )
    stats = _percentiles(db, base, (0.5,))
    if not stats:
        return []
    names = dict(db.exec(select(User.id, User.display_name).where(col(User.id).in_(list(stats)))).all())
    ranked = sorted(stats.items(), key=lambda item: (-item[1][0], names.get(item[0], ""), item[0]))
    return [
        {
            "user_id": user_id,
            "name": names.get(user_id, "Unknown"),
            "count": count,
            "p50_seconds": _seconds(p50),
            "p50_minutes": _minutes(p50),
        }
        for user_id, (count, (p50,)) in ranked[:top_n]
    ]


def _seconds_between(dialect: str, later, earlier):
    if dialect == "postgresql":
        return cast(extract("epoch", later - earlier), Float)
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)


def _resolve_after_claim(db: Session, account_id: int, now: datetime, since: datetime):
    """Count, p50 and p90 of (resolved - claimed) over resolutions of claimed handoffs in the window."""
    at = col(CaseEvent.created_at)
    base = (
        select(
            literal(0).label("bucket"),
            _seconds_between(_dialect(db), CaseEvent.created_at, SessionHandoff.claimed_at).label("secs"),
        )
        .select_from(CaseEvent)
        .join(SessionHandoff, col(SessionHandoff.id) == CaseEvent.handoff_id)
        .where(
            CaseEvent.account_id == account_id,
            CaseEvent.kind == CaseEventKind.RESOLVED.value,
            col(SessionHandoff.claimed_at).is_not(None),
            at >= since,
            at <= now,
        )
        .subquery("resolves")
    )
    count, (p50, p90) = _percentiles(db, base, (0.5, 0.9)).get(0, (0, [None, None]))
    return count, _seconds(p50), _seconds(p90)


def _casework_per_engineer(db: Session, account_id: int, now: datetime, since: datetime, top_n: int):
    at = col(CaseEvent.created_at)
    hand_backs = func.sum(case((CaseEvent.kind == CaseEventKind.HANDED_BACK.value, 1), else_=0))
    onward = func.sum(case((CaseEvent.kind == CaseEventKind.ESCALATED_ON.value, 1), else_=0))
    rows = db.exec(
        select(CaseEvent.actor_id, User.display_name, hand_backs, onward)
        .join(User, col(User.id) == CaseEvent.actor_id)
        .where(
            CaseEvent.account_id == account_id,
            col(CaseEvent.kind).in_([CaseEventKind.HANDED_BACK.value, CaseEventKind.ESCALATED_ON.value]),
            at >= since,
            at <= now,
        )
        .group_by(CaseEvent.actor_id, User.display_name)
        .order_by((hand_backs + onward).desc(), User.display_name)
        .limit(top_n)
    ).all()
    return [
        {"user_id": uid, "name": name, "hand_backs": int(h or 0), "onward": int(o or 0)}
        for uid, name, h, o in rows
    ]


def _per_root_cause(db: Session, account_id: int, now: datetime, since: datetime):
    at = col(CaseEvent.created_at)
    count = func.count()
    rows = db.exec(
        select(CaseEvent.root_cause, count)
        .where(
            CaseEvent.account_id == account_id,
            CaseEvent.kind == CaseEventKind.RESOLVED.value,
            at >= since,
            at <= now,
        )
        .group_by(CaseEvent.root_cause)
        .order_by(count.desc(), CaseEvent.root_cause)
    ).all()
    return [
        {"root_cause": cause or "", "label": root_cause_label(cause) or "Unspecified", "count": int(n)}
        for cause, n in rows
    ]


def escalation_analytics(
    *,
    db: Session,
    actor: Actor,
    now: datetime | None = None,
    days: int = DAYS,
    weeks: int = WEEKS,
    top_n: int = TOP_N,
) -> Analytics:
    """The analytics of the actor's account (owners and admins only) as of `now`."""
    if not actor.is_manager:
        raise PermissionDenied("Analytics are for account owners and admins.")
    now = (now or utcnow()).astimezone(UTC)
    days, weeks, top_n = max(1, min(days, 366)), max(1, min(weeks, 104)), max(1, min(top_n, 100))
    account_id = actor.account_id
    first_day = datetime.combine(now.date() - timedelta(days=days - 1), time.min, tzinfo=UTC)

    this_week, last_week = _week_counts(db, account_id, now)
    change = None if last_week == 0 else round((this_week - last_week) * 100 / last_week)
    open_count, oldest = _open_unclaimed(db, account_id, now)
    weekly = _claim_time_per_week(db, account_id, now, weeks)
    current = weekly[-1] if weekly else {"claims": 0, "p50_seconds": None, "p90_seconds": None}
    per_day = _per_day(db, account_id, now, first_day, days)
    resolves, resolve_p50, resolve_p90 = _resolve_after_claim(db, account_id, now, first_day)
    window_total = sum(row["total"] for row in per_day)

    return Analytics(
        generated_at=now,
        escalations_this_week=this_week,
        escalations_last_week=last_week,
        escalations_change_pct=change,
        claims_this_week=current["claims"],
        claim_p50_seconds_this_week=current["p50_seconds"],
        claim_p90_seconds_this_week=current["p90_seconds"],
        open_unclaimed=open_count,
        oldest_unclaimed_seconds=None if oldest is None else max(0, int((now - oldest).total_seconds())),
        oldest_unclaimed_since=oldest,
        per_day=per_day,
        claim_time_per_week=weekly,
        per_engineer=_per_engineer(db, account_id, now, first_day, top_n),
        per_domain=_per_domain(db, account_id, now, first_day, top_n, window_total),
        top_claimers=_top_claimers(db, account_id, now, first_day, top_n),
        resolves_after_claim=resolves,
        resolve_p50_seconds=resolve_p50,
        resolve_p90_seconds=resolve_p90,
        casework_per_engineer=_casework_per_engineer(db, account_id, now, first_day, top_n),
        per_root_cause=_per_root_cause(db, account_id, now, first_day),
    )
