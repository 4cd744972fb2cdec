"""Handoff history: filters, pagination, search, CSV export and who sees what, on both databases."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import delete

from escalation_app.domain import history
from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.history import (
    HistoryFilters,
    export_history_csv,
    filters_to_query,
    history_people,
    iter_history_csv,
    list_history,
    parse_filters,
)
from escalation_app.domain.models import Notification, OutboxJob, SessionHandoff, SupportSession, Team
from tests.factories import World

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def world(db) -> World:
    world = World(db)
    # Start from no handoffs at all: each test builds exactly the ones it checks.
    db.exec(delete(OutboxJob))
    db.exec(delete(Notification))
    db.exec(delete(SessionHandoff))
    db.commit()
    return world


def add_handoff(
    world: World,
    by: str,
    created: datetime,
    *,
    summary: str = "Mail flow stopped",
    notes: str = "",
    intent: str = "escalate",
    priority: str = "normal",
    claimer: str | None = None,
    wait: timedelta | None = None,
    confidence: str | None = None,
    status: str = "escalated",
    account=None,
) -> str:
    """Insert a session and one handoff with exactly these facts; returns the handoff id."""
    user = world.users[by]
    support_session = SupportSession(
        account_id=user.account_id,
        owner_id=user.id,
        problem_summary=summary,
        problem_domain="Email",
        client_name="Acme",
        status=status,
        created_at=created - timedelta(minutes=30),
        updated_at=created,
    )
    world.db.add(support_session)
    world.db.flush()
    handoff = SessionHandoff(
        session_id=support_session.id,
        account_id=user.account_id,
        handed_off_by_id=user.id,
        intent=intent,
        priority=priority,
        engineer_notes=notes,
        ai_status="ready" if confidence else "pending",
        ai_assessment_data={"confidence": confidence, "likely_cause": "x"} if confidence else None,
        claimed_by_id=world.users[claimer].id if claimer else None,
        claimed_at=created + (wait or timedelta(minutes=5)) if claimer else None,
        created_at=created,
    )
    world.db.add(handoff)
    world.db.commit()
    return str(handoff.id)


@pytest.fixture
def data(world) -> dict[str, str]:
    """Seven Northwind handoffs and one Contoso one, labelled a..g (oldest first) and c1."""
    ids = {
        "a": add_handoff(world, "alex", T0, summary="VPN drops after update", priority="low"),
        "b": add_handoff(
            world,
            "sam",
            T0 + timedelta(days=1),
            summary="Printer offline",
            notes="Tried the 100% toner fix",
            claimer="riley",
            wait=timedelta(seconds=90),
            confidence="high",
            status="resolved",
        ),
        "c": add_handoff(
            world,
            "alex",
            T0 + timedelta(days=2),
            summary="Outlook password prompts",
            intent="park",
            notes="Waiting for the customer",
            status="paused",
        ),
        "d": add_handoff(
            world,
            "alex",
            T0 + timedelta(days=3),
            summary="DNS resolution slow",
            notes="Suspect the FORWARDERS on dc01",
            priority="urgent",
            claimer="morgan",
            wait=timedelta(hours=2),
            confidence="low",
            status="active",
        ),
        "e": add_handoff(world, "sam", T0 + timedelta(days=3, hours=14, minutes=59), priority="high"),
        "f": add_handoff(
            world,
            "alex",
            T0 + timedelta(days=5),
            summary="=HYPERLINK(evil) VPN broken",
            notes="formula-looking summary",
            claimer="sam",
            wait=timedelta(minutes=10),
        ),
        "g": add_handoff(world, "sam", T0 + timedelta(days=6), summary="Backup job failed", priority="high"),
        "c1": add_handoff(world, "casey", T0 + timedelta(days=4), summary="VPN drops at Contoso"),
    }
    return ids


def ids_of(page) -> list[str]:
    return [row.handoff_id for row in page.rows]


def test_default_page_is_the_accounts_handoffs_newest_first(world, data):
    page = list_history(db=world.db, actor=world.actor("morgan"), filters=HistoryFilters())
    assert ids_of(page) == [data[k] for k in "gfedcba"]
    assert (page.total, page.page, page.page_count, page.page_size) == (7, 1, 1, 50)

    by_id = {row.handoff_id: row for row in page.rows}
    b = by_id[data["b"]]
    assert b.problem_summary == "Printer offline"
    assert b.created_at == T0 + timedelta(days=1)
    assert b.created_at.tzinfo is not None
    assert (b.intent, b.priority) == ("escalate", "normal")
    assert (b.handed_off_by_name, b.claimed_by_name) == ("Sam Patel", "Riley Chen")
    assert b.time_to_claim_seconds == 90
    assert b.ai_confidence == "high"
    assert b.session_status == "resolved"
    d = by_id[data["d"]]
    assert (d.time_to_claim_seconds, d.ai_confidence, d.claimed_by_name) == (7200, "low", "Morgan Lee")
    a = by_id[data["a"]]
    assert (a.claimed_by_name, a.claimed_at, a.time_to_claim_seconds, a.ai_confidence) == (
        None,
        None,
        None,
        None,
    )
    assert by_id[data["c"]].session_status == "paused"


def test_each_filter(world, data):
    users = world.users

    def found(**kwargs) -> set[str]:
        page = list_history(db=world.db, actor=world.actor("riley"), filters=HistoryFilters(**kwargs))
        assert page.total == len(page.rows)
        return set(ids_of(page))

    def expect(*labels: str) -> set[str]:
        return {data[label] for label in labels}

    # Dates are whole UTC days, both ends included (e is at 23:59 on day 3).
    assert found(date_from=date(2026, 3, 5)) == expect("d", "e", "f", "g")
    assert found(date_to=date(2026, 3, 5)) == expect("a", "b", "c", "d", "e")
    assert found(date_from=date(2026, 3, 5), date_to=date(2026, 3, 5)) == expect("d", "e")
    assert found(date_from=date(2026, 4, 1)) == set()

    assert found(handed_off_by_id=users["alex"].id) == expect("a", "c", "d", "f")
    assert found(handed_off_by_id=users["sam"].id) == expect("b", "e", "g")
    assert found(handed_off_by_id=users["casey"].id) == set()  # another account's user: nothing
    assert found(claimed_by_id=users["riley"].id) == expect("b")
    assert found(claimed_by_id=users["sam"].id) == expect("f")
    assert found(intent="park") == expect("c")
    assert found(intent="escalate") == expect("a", "b", "d", "e", "f", "g")
    assert found(priority="high") == expect("e", "g")
    assert found(priority="urgent") == expect("d")
    assert found(claimed="claimed") == expect("b", "d", "f")
    assert found(claimed="unclaimed") == expect("a", "c", "e", "g")
    # Combined filters narrow together.
    assert found(handed_off_by_id=users["alex"].id, claimed="claimed") == expect("d", "f")
    assert found(priority="high", date_to=date(2026, 3, 5)) == expect("e")


def test_free_text_search_in_summary_and_notes(world, data):
    def found(q: str) -> set[str]:
        page = list_history(db=world.db, actor=world.actor("morgan"), filters=HistoryFilters(q=q))
        return set(ids_of(page))

    assert found("vpn") == {data["a"], data["f"]}  # summary, any case; Contoso's never
    assert found("VPN DROPS") == {data["a"]}
    assert found("forwarders") == {data["d"]}  # notes
    assert found("customer") == {data["c"]}
    assert found("mail flow") == {data["e"]}
    # LIKE wildcards are literal text.
    assert found("100%") == {data["b"]}
    assert found("%") == {data["b"]}
    assert found("_") == set()
    assert found("nothing like this") == set()


@pytest.mark.parametrize("broad", [False, True], ids=["index-lookups", "one-pass"])
def test_search_finds_the_same_rows_whichever_way_it_runs(world, data, monkeypatch, broad):
    # A search runs as trigram-index lookups ("narrow") or as one pass over the joined rows
    # ("broad": most summaries match); both must find exactly the same handoffs.
    monkeypatch.setattr(history, "_search_is_broad", lambda db, actor, pattern: broad)
    backslash = add_handoff(
        world, "alex", T0 + timedelta(days=1, hours=1), summary=r"Share C:\temp_1 is out of space"
    )

    def found(q: str, name: str = "morgan", **kwargs) -> set[str]:
        page = list_history(db=world.db, actor=world.actor(name), filters=HistoryFilters(q=q, **kwargs))
        assert page.total == len(page.rows)
        return set(ids_of(page))

    assert found("vpn") == found("VpN") == {data["a"], data["f"]}  # summary, any case
    assert found("FORWARDERS on") == {data["d"]}  # notes, any case
    assert found("o") == {data[k] for k in "abcdefg"} | {backslash}  # in every summary
    # LIKE wildcards and the escape character are literal text.
    assert found("100%") == found("%") == {data["b"]}
    assert found("_") == found("p_1") == found("\\") == found(r"C:\temp") == {backslash}
    assert found("c:%temp") == found("temp%1") == set()
    # Search narrows together with the other filters and the actor's scope.
    assert found("vpn", claimed="claimed") == {data["f"]}
    assert found("o", "sam") == {data[k] for k in "abcdefg"} | {backslash}  # sam's team
    assert found("vpn", "casey") == {data["c1"]}
    # Pages and the CSV export read the same matches.
    actor = world.actor("riley")
    pages = [
        list_history(db=world.db, actor=actor, filters=HistoryFilters(q="o", page=n), page_size=3)
        for n in (1, 2, 3)
    ]
    assert [(p.total, p.page_count) for p in pages] == [(8, 3)] * 3
    assert [len(p.rows) for p in pages] == [3, 3, 2]
    newest_first = [data[k] for k in "gfedc"] + [backslash, data["b"], data["a"]]
    assert [row_id for p in pages for row_id in ids_of(p)] == newest_first
    text = export_history_csv(db=world.db, actor=actor, filters=HistoryFilters(q="vpn"))
    assert [r[1] for r in list(csv.reader(io.StringIO(text)))[1:]] == [data["f"], data["a"]]


def test_a_search_is_broad_when_most_recent_summaries_match(world, data):
    def broad(q: str, name: str = "riley") -> bool:
        return history._search_is_broad(world.db, world.actor(name), history._like_pattern(q))

    assert broad("o") and broad("O")  # every Northwind summary
    assert not broad("vpn") and not broad("nothing like this")
    assert broad("vpn", "casey")  # Contoso's only handoff


def test_pagination_pages_totals_and_stable_order(world, data):
    # Two more handoffs at exactly the same moment as g: ties still page consistently.
    tied = {add_handoff(world, "alex", T0 + timedelta(days=6)) for _ in range(2)}
    actor = world.actor("morgan")
    seen: list[str] = []
    for number in (1, 2, 3):
        page = list_history(db=world.db, actor=actor, filters=HistoryFilters(page=number), page_size=4)
        assert (page.total, page.page_count, page.page, page.page_size) == (9, 3, number, 4)
        assert len(page.rows) == (4 if number < 3 else 1)
        assert page.has_previous == (number > 1)
        assert page.has_next == (number < 3)
        seen += ids_of(page)
    assert len(seen) == len(set(seen)) == 9
    assert set(seen[:3]) == tied | {data["g"]}
    assert seen[3:] == [data[k] for k in "fedcba"]

    # A page past the end (an old shared link) shows the last page.
    late = list_history(db=world.db, actor=actor, filters=HistoryFilters(page=99), page_size=4)
    assert (late.page, ids_of(late), late.filters.page) == (3, [data["a"]], 3)
    # Filters and pages together.
    high = list_history(
        db=world.db, actor=actor, filters=HistoryFilters(priority="high", page=2), page_size=1
    )
    assert (high.total, high.page_count, ids_of(high)) == (2, 2, [data["e"]])
    # No rows at all: one empty page.
    empty = list_history(db=world.db, actor=actor, filters=HistoryFilters(q="zzz"))
    assert (empty.rows, empty.total, empty.page, empty.page_count) == ([], 0, 1, 1)


def test_role_scoping(world, data):
    northwind = {data[k] for k in "abcdefg"}

    def visible(name: str, **kwargs) -> set[str]:
        page = list_history(db=world.db, actor=world.actor(name), filters=HistoryFilters(**kwargs))
        return set(ids_of(page))

    assert visible("morgan") == northwind  # owner
    assert visible("riley") == northwind  # admin
    assert visible("val") == northwind  # viewer: the account's history, read-only
    # Engineers: their team's handoffs (the queue's scope) and those they are party to.
    assert visible("alex") == visible("sam") == northwind
    other_team = Team(account_id=world.northwind.id, name="Projects")
    world.db.add(other_team)
    world.db.flush()
    moved = world.db.get(SessionHandoff, uuid.UUID(data["b"]))  # sam's, unclaimed
    moved.team_id = other_team.id
    world.db.add(moved)
    world.db.commit()
    assert visible("alex") == northwind - {data["b"]}
    assert visible("sam") == northwind  # handed it off
    assert visible("morgan") == northwind  # owners read the whole account
    # An engineer cannot widen the scope by filtering on someone else.
    assert visible("alex", handed_off_by_id=world.users["sam"].id) == {data["e"], data["g"]}
    moved.target_user_id = world.users["alex"].id
    world.db.add(moved)
    world.db.commit()
    assert data["b"] in visible("alex")  # sent to alex
    # Contoso never sees Northwind, and the other way round.
    assert visible("jordan") == {data["c1"]}
    assert visible("casey") == {data["c1"]}
    assert visible("jordan", handed_off_by_id=world.users["alex"].id) == set()
    # The CSV export has the same scope.
    text = export_history_csv(db=world.db, actor=world.actor("jordan"), filters=HistoryFilters())
    assert data["c1"] in text and data["a"] not in text
    text = export_history_csv(db=world.db, actor=world.actor("alex"), filters=HistoryFilters())
    assert northwind <= set(text.split(","))


def test_csv_export_has_header_and_every_matching_row(world, data, monkeypatch):
    # Small chunks, so the export crosses several fetch and write chunks.
    monkeypatch.setattr(history, "CSV_CHUNK_ROWS", 2)
    filters = HistoryFilters(page=2)  # the page is ignored: the export has all pages
    chunks = list(iter_history_csv(db=world.db, actor=world.actor("riley"), filters=filters))
    assert len(chunks) >= 4
    text = "".join(chunks)
    assert text == export_history_csv(db=world.db, actor=world.actor("riley"), filters=filters)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(history.CSV_HEADER)
    assert [r[1] for r in rows[1:]] == [data[k] for k in "gfedcba"]
    record = {rows[0][i]: value for i, value in enumerate(rows[1 + "gfedcba".index("d")])}
    assert record == {
        "created_at": "2026-03-05T09:00:00+00:00",
        "handoff_id": data["d"],
        "session_id": record["session_id"],
        "problem_summary": "DNS resolution slow",
        "problem_domain": "Email",
        "client": "Acme",
        "intent": "escalate",
        "priority": "urgent",
        "handed_off_by": "Alex Kim",
        "claimed_by": "Morgan Lee",
        "claimed_at": "2026-03-05T11:00:00+00:00",
        "time_to_claim_seconds": "7200",
        "ai_confidence": "low",
        "session_status": "active",
        "outcome": "",
        "outcome_at": "",
        "time_to_resolve_seconds": "",
        "root_cause": "",
        "what_fixed_it": "",
    }
    assert record["session_id"].isdigit()
    unclaimed = rows[1 + "gfedcba".index("a")]
    assert unclaimed[9:13] == ["", "", "", ""]
    # Text that a spreadsheet would run as a formula is written as plain text.
    formula = rows[1 + "gfedcba".index("f")]
    assert formula[3] == "'=HYPERLINK(evil) VPN broken"

    filtered = export_history_csv(
        db=world.db, actor=world.actor("riley"), filters=HistoryFilters(claimed="claimed")
    )
    assert [r[1] for r in list(csv.reader(io.StringIO(filtered)))[1:]] == [data[k] for k in "fdb"]
    empty = export_history_csv(db=world.db, actor=world.actor("riley"), filters=HistoryFilters(q="zzz"))
    assert list(csv.reader(io.StringIO(empty))) == [list(history.CSV_HEADER)]


def test_parse_filters_and_back_to_the_url():
    query = {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "by": "4",
        "claimer": "7",
        "intent": "Escalate",
        "priority": "URGENT",
        "claimed": "unclaimed",
        "q": "  vpn  ",
        "page": "3",
        "utm_source": "ignored",
    }
    filters = parse_filters(query)
    assert filters == HistoryFilters(
        date_from=date(2026, 3, 1),
        date_to=date(2026, 3, 31),
        handed_off_by_id=4,
        claimed_by_id=7,
        intent="escalate",
        priority="urgent",
        claimed="unclaimed",
        q="vpn",
        page=3,
    )
    back = filters_to_query(filters)
    assert back == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "by": "4",
        "claimer": "7",
        "intent": "escalate",
        "priority": "urgent",
        "claimed": "unclaimed",
        "q": "vpn",
        "page": "3",
    }
    assert parse_filters(back) == filters
    # Empty and missing values mean "not set"; page 1 is left out of the URL.
    assert parse_filters({}) == HistoryFilters()
    assert parse_filters({"from": "", "intent": "", "page": ""}) == HistoryFilters()
    assert filters_to_query(HistoryFilters()) == {}
    assert filters_to_query(filters.with_page(1)) == {k: v for k, v in back.items() if k != "page"}
    # Repeated keys arrive as lists: the last one wins.
    assert parse_filters({"priority": ["low", "high"]}).priority == "high"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "yesterday"}, "From date must be a date like 2026-01-31."),
        ({"to": "2026-02-30"}, "To date must be a date like 2026-01-31."),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "From date must be on or before the to date."),
        ({"intent": "panic"}, "Intent must be one of: park, escalate, handback."),
        ({"priority": "asap"}, "Priority must be one of: low, normal, high, urgent."),
        ({"claimed": "maybe"}, "Claimed must be one of: claimed, unclaimed, breached."),
        ({"by": "alex"}, "Handed off by must be a person from the list."),
        ({"claimer": "-3"}, "Claimed by must be a person from the list."),
        ({"claimer": "0"}, "Claimed by must be a person from the list."),
        ({"page": "0"}, "Page must be a whole number from 1."),
        ({"page": "two"}, "Page must be a whole number from 1."),
        ({"q": "x" * 101}, "Search must be at most 100 characters."),
    ],
)
def test_parse_filters_rejects_bad_values_clearly(query, message):
    with pytest.raises(InvalidInput) as error:
        parse_filters(query)
    assert error.value.message == message


def test_history_people_are_the_accounts_users(world):
    northwind = history_people(db=world.db, actor=world.actor("val"))
    assert [p.name for p in northwind] == ["Alex Kim", "Morgan Lee", "Riley Chen", "Sam Patel", "Val Ortiz"]
    assert northwind[0].id == world.users["alex"].id
    contoso = history_people(db=world.db, actor=world.actor("casey"))
    assert [p.name for p in contoso] == ["Casey Diaz", "Jordan Fox"]
