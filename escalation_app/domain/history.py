"""Handoff history: the manager's (and engineer's) table of past handoffs, filtered,
paginated, exportable.

Who sees what:
- owners and admins: every handoff of their account;
- engineers: only the handoffs they handed off themselves;
- viewers: every handoff of their account, read-only (history is a read; the views
  never offer an action a viewer may not take);
- nobody ever sees another account's handoffs.

Filters come from the URL query (`parse_filters`) and go back into it
(`filters_to_query`) so a filtered view can be shared as a link. Pagination is done in
the database (ORDER BY created_at DESC, id DESC with OFFSET/LIMIT, plus one COUNT);
the `(account_id, created_at)` index serves the default page.

Search (`q`) is a case-insensitive substring match on the session's problem summary or
the handoff's notes. On PostgreSQL both columns carry a pg_trgm GIN index (migration
0005), so a search reads only the rows that can match: see `_search_condition`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from escalation_app.domain import validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.handoffs import readable_handoffs
from escalation_app.domain.models import (
    HandoffIntent,
    HandoffOutcome,
    Priority,
    SessionHandoff,
    SupportSession,
    User,
)
from escalation_app.domain.types import utcnow

PAGE_SIZE = 50
PAGE_SIZE_MAX = 200
PAGE_MAX = 1_000_000
SEARCH_MAX = 100
# A search is "broad" when the summaries of at least half of the account's newest this
# many handoffs match it (see `_search_condition`).
SEARCH_SAMPLE = 200
CSV_CHUNK_ROWS = 1000
# "breached": escalations picked up after their response target, or still waiting past it.
CLAIMED_CHOICES = ("claimed", "unclaimed", "breached")
# Roles that read the whole account's history (viewers read-only).

# URL query keys, in the order they are written back.
QUERY_KEYS = ("from", "to", "by", "claimer", "intent", "priority", "claimed", "q", "page")


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    """What the history table is narrowed to. Every field is optional; page is 1-based.

    Dates are inclusive UTC calendar days: `date_from=2026-11-01, date_to=2026-11-01`
    means handoffs created on 1 November (UTC).
    """

    date_from: date | None = None
    date_to: date | None = None
    handed_off_by_id: int | None = None
    claimed_by_id: int | None = None
    intent: str | None = None
    priority: str | None = None
    claimed: str | None = None  # "claimed" | "unclaimed" | "breached" | None (all)
    q: str | None = None
    page: int = 1

    def with_page(self, page: int) -> HistoryFilters:
        """The same filters on another page (for "next"/"previous" links)."""
        return replace(self, page=max(1, page))


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One handoff as the history table shows it."""

    created_at: datetime
    handoff_id: str
    session_id: int
    problem_summary: str
    problem_domain: str
    client_name: str
    intent: str
    priority: str
    handed_off_by_id: int
    handed_off_by_name: str
    claimed_by_id: int | None
    claimed_by_name: str | None
    claimed_at: datetime | None
    time_to_claim_seconds: int | None
    ai_confidence: str | None
    session_status: str
    # How the handoff ended ("resolved", "handed_back", "escalated_on"; None while open).
    outcome: str | None = None
    outcome_at: datetime | None = None
    # For a handoff that ended resolved: the fix, its root cause, claim-to-fix seconds.
    root_cause: str | None = None
    resolution: str | None = None
    time_to_resolve_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of history, newest first, and where it sits in the whole result."""

    rows: list[HistoryRow]
    total: int
    page: int
    page_size: int
    page_count: int
    filters: HistoryFilters

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.page_count


@dataclass(frozen=True, slots=True)
class Person:
    """An account user, for the "handed off by" and "claimed by" filter menus."""

    id: int
    name: str


# ---------------------------------------------------------------------------
# URL query <-> filters
# ---------------------------------------------------------------------------


def _single(value: Any) -> str:
    # Frameworks hand repeated query keys over as lists; the last one wins.
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    return "" if value is None else str(value).strip()


def _parse_date(raw: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a date like 2026-01-31.") from None


def _parse_id(raw: str, label: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12 or int(raw) < 1:
        raise InvalidInput(f"{label} must be a person from the list.")
    return int(raw)


def _parse_page(raw: str) -> int:
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput("Page must be a whole number from 1.")
    return min(int(raw), PAGE_MAX)


def parse_filters(query: Mapping[str, Any]) -> HistoryFilters:
    """Turn URL query parameters into filters, or raise InvalidInput saying what is wrong.

    Keys: `from`, `to` (YYYY-MM-DD), `by` (user id), `claimer` (user id), `intent`
    (park|escalate), `priority` (low|normal|high|urgent), `claimed`
    (claimed|unclaimed), `q` (search text), `page`. Intent also takes `handback`. Empty values mean "not set";
    unknown keys are ignored.
    """
    raw = {key: _single(query.get(key)) for key in QUERY_KEYS}
    date_from = _parse_date(raw["from"], "From date")
    date_to = _parse_date(raw["to"], "To date")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("From date must be on or before the to date.")
    claimed = raw["claimed"].lower() or None
    if claimed is not None and claimed not in CLAIMED_CHOICES:
        raise InvalidInput("Claimed must be one of: claimed, unclaimed, breached.")
    q = validation.text(raw["q"], "Search", max_length=SEARCH_MAX) or None
    return HistoryFilters(
        date_from=date_from,
        date_to=date_to,
        handed_off_by_id=_parse_id(raw["by"], "Handed off by"),
        claimed_by_id=_parse_id(raw["claimer"], "Claimed by"),
        intent=validation.choice(raw["intent"], HandoffIntent, "Intent").value if raw["intent"] else None,
        priority=(
            validation.choice(raw["priority"], Priority, "Priority").value if raw["priority"] else None
        ),
        claimed=claimed,
        q=q,
        page=_parse_page(raw["page"]),
    )


def filters_to_query(filters: HistoryFilters) -> dict[str, str]:
    """The URL query for `filters` (unset values and page 1 left out), for shareable links."""
    values = {
        "from": filters.date_from.isoformat() if filters.date_from else "",
        "to": filters.date_to.isoformat() if filters.date_to else "",
        "by": str(filters.handed_off_by_id) if filters.handed_off_by_id else "",
        "claimer": str(filters.claimed_by_id) if filters.claimed_by_id else "",
        "intent": filters.intent or "",
        "priority": filters.priority or "",
        "claimed": filters.claimed or "",
        "q": filters.q or "",
        "page": str(filters.page) if filters.page > 1 else "",
    }
    return {key: value for key, value in values.items() if value}


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column, pattern: str):
    """`lower(column) LIKE lower(pattern)`: case-insensitive, `%`, `_` and `\\` in the text literal.

    lower(..) LIKE rather than ILIKE: it is the expression the trigram indexes are built on
    (`ix_support_session_summary_trgm`, `ix_handoff_notes_trgm`), and cheaper than ILIKE where
    rows are read one by one.
    """
    return func.lower(column).like(func.lower(pattern), escape="\\")


def _summary_matches(pattern: str, account_id: int):
    """The ids of the account's sessions whose problem summary contains the search text.

    Its own alias of support_session, so it never correlates with the row query's join.
    """
    sessions = aliased(SupportSession)
    return select(sessions.id).where(
        sessions.account_id == account_id, _contains(sessions.problem_summary, pattern)
    )


def _search_is_broad(db: Session, actor: Actor, pattern: str) -> bool:
    """Whether the summaries of at least half of the account's newest SEARCH_SAMPLE
    handoffs match `pattern`: a short walk along the `(account_id, created_at)` index, the
    same sample whatever the actor's role (the choice only changes the plan)."""
    sample = (
        select(SupportSession.problem_summary)
        .join(SessionHandoff, col(SessionHandoff.session_id) == SupportSession.id)
        .where(SessionHandoff.account_id == actor.account_id)
        .order_by(col(SessionHandoff.created_at).desc())
        .limit(SEARCH_SAMPLE)
        .subquery()
    )
    hit = case((_contains(sample.c.problem_summary, pattern), 1))
    seen, hits = db.exec(select(func.count(), func.count(hit)).select_from(sample)).one()
    return hits * 2 >= seen > 0


def _search_condition(db: Session, actor: Actor, q: str) -> tuple[Any, bool]:
    """The search as a condition on session_handoff, and whether it needs support_session joined.

    A narrow search (the usual case) asks each trigram index for its matches: "the
    handoff's session is among the sessions whose summary matches, or the handoff is among
    those whose notes match", so PostgreSQL tests only rows that can match. (A summary OR
    notes test on the joined row could use neither index: the columns are in different
    tables.) A broad search (most summaries match: "e", "the") would fetch nearly every row
    through the indexes and hash them, so it takes one pass over the joined rows instead,
    where a matching summary spares the notes test. Both find the same rows; the choice
    only changes the plan.
    """
    pattern = _like_pattern(q)
    if _search_is_broad(db, actor, pattern):
        return (
            or_(
                _contains(SupportSession.problem_summary, pattern),
                _contains(SessionHandoff.engineer_notes, pattern),
            ),
            True,
        )
    notes = aliased(SessionHandoff)
    notes_matches = select(notes.id).where(
        notes.account_id == actor.account_id, _contains(notes.engineer_notes, pattern)
    )
    return (
        or_(
            col(SessionHandoff.session_id).in_(_summary_matches(pattern, actor.account_id)),
            col(SessionHandoff.id).in_(notes_matches),
        ),
        False,
    )


def _conditions(db: Session, actor: Actor, filters: HistoryFilters) -> tuple[list, bool]:
    """WHERE conditions: the actor's scope first, then each filter that is set; and whether
    they need support_session joined (a broad search does).
    """
    # The same read rule as the handoff screen and a session's history.
    conditions: list = readable_handoffs(actor)
    if filters.date_from:
        conditions.append(col(SessionHandoff.created_at) >= _day_start(filters.date_from))
    if filters.date_to:
        conditions.append(col(SessionHandoff.created_at) < _day_start(filters.date_to + timedelta(days=1)))
    if filters.handed_off_by_id:
        conditions.append(SessionHandoff.handed_off_by_id == filters.handed_off_by_id)
    if filters.claimed_by_id:
        conditions.append(SessionHandoff.claimed_by_id == filters.claimed_by_id)
    if filters.intent:
        conditions.append(SessionHandoff.intent == filters.intent)
    if filters.priority:
        conditions.append(SessionHandoff.priority == filters.priority)
    if filters.claimed == "claimed":
        conditions.append(col(SessionHandoff.claimed_by_id).is_not(None))
    elif filters.claimed == "unclaimed":
        conditions.append(col(SessionHandoff.claimed_by_id).is_(None))
    elif filters.claimed == "breached":
        conditions.append(breached_condition(utcnow()))
    joins_session = False
    if filters.q:
        search, joins_session = _search_condition(db, actor, filters.q)
        conditions.append(search)
    return conditions, joins_session


def breached_condition(now: datetime):
    """Escalations past their response target: picked up late, or still unclaimed after it."""
    due = col(SessionHandoff.response_due_at)
    return and_(
        due.is_not(None),
        or_(
            col(SessionHandoff.claimed_at) > due,
            and_(col(SessionHandoff.claimed_at).is_(None), due < now),
        ),
    )


NEWEST_FIRST = (col(SessionHandoff.created_at).desc(), col(SessionHandoff.id).desc())


def _rows_select():
    """The columns of a history row, joined; the caller adds WHERE and ORDER BY."""
    by_user = aliased(User)
    claimer = aliased(User)
    confidence = cast(SessionHandoff.ai_assessment_data["confidence"].as_string(), String)
    return (
        select(
            SessionHandoff.created_at,
            SessionHandoff.id,
            SessionHandoff.session_id,
            SupportSession.problem_summary,
            SupportSession.problem_domain,
            SupportSession.client_name,
            SessionHandoff.intent,
            SessionHandoff.priority,
            SessionHandoff.handed_off_by_id,
            by_user.display_name,
            SessionHandoff.claimed_by_id,
            claimer.display_name,
            SessionHandoff.claimed_at,
            confidence,
            SupportSession.status,
            SessionHandoff.outcome,
            SessionHandoff.outcome_at,
            SupportSession.root_cause,
            SupportSession.resolution,
        )
        .join(SupportSession, col(SupportSession.id) == SessionHandoff.session_id)
        .join(by_user, col(by_user.id) == SessionHandoff.handed_off_by_id)
        .outerjoin(claimer, col(claimer.id) == SessionHandoff.claimed_by_id)
    )


def _matching(query, conditions: list, joins_session: bool):
    """`query` over session_handoff narrowed to `conditions`, joined to its session if they need it."""
    if joins_session:
        query = query.join(SupportSession, col(SupportSession.id) == SessionHandoff.session_id)
    return query.where(*conditions)


def _to_row(values) -> HistoryRow:
    (
        created_at,
        handoff_id,
        session_id,
        summary,
        domain,
        client,
        intent,
        priority,
        by_id,
        by_name,
        claimer_id,
        claimer_name,
        claimed_at,
        confidence,
        status,
        outcome,
        outcome_at,
        root_cause,
        resolution,
    ) = values
    wait = None
    if claimed_at is not None:
        wait = max(0, int((claimed_at - created_at).total_seconds()))
    resolved = outcome == HandoffOutcome.RESOLVED
    to_fix = None
    if resolved and claimed_at is not None and outcome_at is not None:
        to_fix = max(0, int((outcome_at - claimed_at).total_seconds()))
    return HistoryRow(
        created_at=created_at,
        handoff_id=str(handoff_id),
        session_id=session_id,
        problem_summary=summary,
        problem_domain=domain or "",
        client_name=client or "",
        intent=intent,
        priority=priority,
        handed_off_by_id=by_id,
        handed_off_by_name=by_name,
        claimed_by_id=claimer_id,
        claimed_by_name=claimer_name,
        claimed_at=claimed_at,
        time_to_claim_seconds=wait,
        ai_confidence=confidence or None,
        session_status=status,
        outcome=outcome,
        outcome_at=outcome_at,
        root_cause=root_cause if resolved else None,
        resolution=resolution if resolved else None,
        time_to_resolve_seconds=to_fix,
    )


def _count(db: Session, conditions: list, joins_session: bool) -> int:
    query = _matching(select(func.count()).select_from(SessionHandoff), conditions, joins_session)
    return int(db.exec(query).one())


def count_history(*, db: Session, actor: Actor, filters: HistoryFilters) -> int:
    """How many handoffs match `filters` in the actor's scope."""
    return _count(db, *_conditions(db, actor, filters))


def list_history(
    *, db: Session, actor: Actor, filters: HistoryFilters, page_size: int = PAGE_SIZE
) -> HistoryPage:
    """One page of the actor's handoff history, newest first, with the total count.

    A page past the end is clamped to the last page (a shared link outlives its data).
    """
    page_size = max(1, min(int(page_size), PAGE_SIZE_MAX))
    conditions, joins_session = _conditions(db, actor, filters)
    # The exact total: the page says "N handoffs · page X of Y". Without filters this is
    # one pass over the account's rows (~20 ms at 100,000 handoffs).
    total = _count(db, conditions, joins_session)
    page_count = max(1, math.ceil(total / page_size))
    page = min(max(1, filters.page), page_count)
    rows: list[HistoryRow] = []
    if total:
        # A deferred join: find the page's ids on session_handoff alone (an index walk
        # along (account_id, created_at)), then join sessions and names for those rows
        # only, so a deep page does not join everything it skips.
        page_ids = (
            _matching(select(SessionHandoff.id), conditions, joins_session)
            .order_by(*NEWEST_FIRST)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        result = db.exec(
            _rows_select()
            .where(
                SessionHandoff.account_id == actor.account_id,
                col(SessionHandoff.id).in_(page_ids.scalar_subquery()),
            )
            .order_by(*NEWEST_FIRST)
        )
        rows = [_to_row(values) for values in result.all()]
    return HistoryPage(
        rows=rows,
        total=total,
        page=page,
        page_size=page_size,
        page_count=page_count,
        filters=replace(filters, page=page),
    )


def iter_history(*, db: Session, actor: Actor, filters: HistoryFilters) -> Iterator[HistoryRow]:
    """Every matching handoff (all pages), newest first, fetched in chunks."""
    conditions, _ = _conditions(db, actor, filters)  # the row query joins the session anyway
    query = (
        _rows_select().where(*conditions).order_by(*NEWEST_FIRST).execution_options(yield_per=CSV_CHUNK_ROWS)
    )
    for values in db.exec(query):
        yield _to_row(values)


# ---------------------------------------------------------------------------
# CSV export
# ---------------------------------------------------------------------------

CSV_HEADER = (
    "created_at",
    "handoff_id",
    "session_id",
    "problem_summary",
    "problem_domain",
    "client",
    "intent",
    "priority",
    "handed_off_by",
    "claimed_by",
    "claimed_at",
    "time_to_claim_seconds",
    "ai_confidence",
    "session_status",
    "outcome",
    "outcome_at",
    "time_to_resolve_seconds",
    "root_cause",
    "what_fixed_it",
)


def _cell(value: str | None) -> str:
    """Text as a spreadsheet shows it literally (no formula injection from user text)."""
    text = value or ""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def iter_history_csv(*, db: Session, actor: Actor, filters: HistoryFilters) -> Iterator[str]:
    """The CSV export as text chunks (header first, then up to 1,000 rows per chunk).

    Covers all pages of `filters` (its `page` is ignored) in the actor's scope.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    pending = 0
    for row in iter_history(db=db, actor=actor, filters=filters):
        writer.writerow(
            (
                _iso(row.created_at),
                row.handoff_id,
                row.session_id,
                _cell(row.problem_summary),
                _cell(row.problem_domain),
                _cell(row.client_name),
                row.intent,
                row.priority,
                _cell(row.handed_off_by_name),
                _cell(row.claimed_by_name),
                _iso(row.claimed_at),
                "" if row.time_to_claim_seconds is None else row.time_to_claim_seconds,
                row.ai_confidence or "",
                row.session_status,
                row.outcome or "",
                _iso(row.outcome_at),
                "" if row.time_to_resolve_seconds is None else row.time_to_resolve_seconds,
                row.root_cause or "",
                _cell(row.resolution),
            )
        )
        pending += 1
        if pending >= CSV_CHUNK_ROWS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def export_history_csv(*, db: Session, actor: Actor, filters: HistoryFilters) -> str:
    """All matching handoffs as one CSV text (see `iter_history_csv`)."""
    return "".join(iter_history_csv(db=db, actor=actor, filters=filters))


def export_filename(*, today: date | None = None) -> str:
    """A download name such as `handoff-history-2026-11-22.csv`."""
    return f"handoff-history-{(today or datetime.now(UTC).date()).isoformat()}.csv"


# ---------------------------------------------------------------------------
# Filter menus
# ---------------------------------------------------------------------------


def history_people(*, db: Session, actor: Actor) -> list[Person]:
    """The actor's account users by name, for the handed-off-by and claimer menus.

    Includes deactivated and removed users: their handoffs are still in the history.
    """
    rows = db.exec(
        select(User.id, User.display_name)
        .where(User.account_id == actor.account_id)
        .order_by(func.lower(User.display_name), col(User.id))
    ).all()
    return [Person(id=user_id, name=name) for user_id, name in rows]
