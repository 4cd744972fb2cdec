"""The assessment graded against the fix, and the patterns managers read (both databases).

A small hand-built data set: escalations with an assessment of known confidence,
picked up and resolved with the resolver's answer (and, with a key, an AI verdict
stored as the grading job would), so every number of the calibration table, the
accuracy per week, the per-engineer patterns and the recurring problems is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from escalation_app.domain import grading, patterns
from escalation_app.domain.assessments import Assessment, store_assessment
from escalation_app.domain.casework import hand_back, resolve_case
from escalation_app.domain.errors import InvalidInput, PermissionDenied
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import AssessmentGrade, OutboxJob, SessionHandoff, SupportSession
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.support_sessions import add_step, create_session
from escalation_app.domain.types import utcnow
from escalation_app.settings import get_settings
from tests.factories import World
from tests.outbox_helpers import clear_outbox


@pytest.fixture
def key(monkeypatch) -> Iterator[callable]:
    """No API key unless a test turns it on (a developer's .env cannot leak in)."""

    def set_key(value: str) -> None:
        monkeypatch.setenv("ANTHROPIC_API_KEY", value)
        get_settings.cache_clear()

    set_key("")
    yield set_key
    get_settings.cache_clear()


@pytest.fixture
def world(db, key) -> World:
    world = World(db)
    world.add_user("dana@northwind.example", "Dana Engineer", "engineer")
    world.add_user("eli@northwind.example", "Eli Engineer", "engineer")
    clear_outbox(db)
    return world


def _case(
    world: World,
    *,
    confidence: str | None = "medium",
    owner: str = "dana",
    summary: str = "Mail flow stopped",
    client: str = "Acme",
    claimer: str = "riley",
    claimed_minutes_ago: float | None = None,
) -> tuple[int, SessionHandoff]:
    """`owner` escalates a new session (an assessment of `confidence`, None: offline);
    `claimer` picks it up, optionally `claimed_minutes_ago`."""
    db, actor = world.db, world.actor(owner)
    support_session = create_session(
        db=db, actor=actor, problem_summary=summary, problem_domain="Email", client_name=client
    )
    add_step(db=db, actor=actor, session_id=support_session.id, tried="Restarted", result="No change")
    handoff = create_handoff(
        db=db, actor=actor, session_id=support_session.id, intent="escalate", notes="Stuck on this one"
    )
    store_assessment(
        db=db,
        handoff_id=handoff.id,
        assessment=Assessment(
            summary_prose="Mail is stuck.",
            likely_cause="The smart host's relay allow-list lost the new IP",
            confidence=confidence or "low",
        ),
        model="claude-test" if confidence else "offline",
        offline=confidence is None,
    )
    claim_handoff(db=db, actor=world.actor(claimer), handoff_id=handoff.id)
    if claimed_minutes_ago is not None:
        db.exec(
            update(SessionHandoff)
            .where(col(SessionHandoff.id) == handoff.id)
            .values(claimed_at=utcnow() - timedelta(minutes=claimed_minutes_ago))
        )
        db.commit()
    return support_session.id, handoff


def _resolve(world: World, sid: int, verdict: str | None, *, by: str = "riley", cause: str = "configuration"):
    return resolve_case(
        db=world.db,
        actor=world.actor(by),
        session_id=sid,
        fix="Added the new IP to the relay allow-list",
        root_cause=cause,
        ai_verdict=verdict,
    )


def _grades(world: World) -> list[AssessmentGrade]:
    world.db.expire_all()
    return list(world.db.exec(select(AssessmentGrade).order_by(col(AssessmentGrade.id))).all())


def _grading_jobs(world: World) -> list[OutboxJob]:
    return list(world.db.exec(select(OutboxJob).where(OutboxJob.kind == JobKind.GRADING)).all())


# ---------------------------------------------------------------------------- recording


def test_resolve_records_the_human_answer_and_without_a_key_no_grading_job(world):
    sid, handoff = _case(world, confidence="high")
    question = grading.resolve_question(db=world.db, actor=world.actor("riley"), session_id=sid)
    assert question is not None and question.confidence == "high"
    assert question.likely_cause.startswith("The smart host")

    _resolve(world, sid, "Partly")

    [grade] = _grades(world)
    assert (grade.handoff_id, grade.session_id) == (handoff.id, sid)
    assert (grade.confidence, grade.human_verdict, grade.human_by_id) == (
        "high",
        "partly",
        world.users["riley"].id,
    )
    assert grade.ai_status is None and grade.ai_verdict is None
    assert _grading_jobs(world) == []
    # Asked once: the resolved case has nothing left to grade.
    assert grading.gradable_handoff(world.db, sid) is None


def test_a_skipped_question_is_recorded_without_a_verdict(world):
    sid, _ = _case(world, confidence="low")
    _resolve(world, sid, "")
    [grade] = _grades(world)
    assert grade.human_verdict is None and grade.human_by_id is None and grade.confidence == "low"


def test_with_a_key_the_resolve_adds_one_grading_job(world, key):
    key("test-key")
    sid, handoff = _case(world, confidence="medium")
    _resolve(world, sid, "yes")
    [grade] = _grades(world)
    assert grade.ai_status == "pending" and grade.human_verdict == "yes"
    [job] = _grading_jobs(world)
    assert job.handoff_id == handoff.id and job.dedupe_key == f"grading:{handoff.id}"


def test_offline_summaries_and_cases_without_an_assessment_are_not_graded(world, key):
    key("test-key")
    offline_sid, _ = _case(world, confidence=None)
    assert grading.resolve_question(db=world.db, actor=world.actor("riley"), session_id=offline_sid) is None
    _resolve(world, offline_sid, "")
    # A session nobody escalated: nothing to grade either.
    plain = world.new_session("dana")
    _resolve(world, plain, "", by="dana")
    assert _grades(world) == [] and _grading_jobs(world) == []


def test_a_bad_answer_is_refused_and_changes_nothing(world):
    sid, _ = _case(world)
    with pytest.raises(InvalidInput, match="yes, partly, no"):
        _resolve(world, sid, "maybe")
    with pytest.raises(InvalidInput):
        _resolve(world, sid, ["yes"])  # type: ignore[arg-type]
    world.db.rollback()
    world.db.expire_all()
    support_session = world.db.get(SupportSession, sid)
    assert support_session.status != "resolved" and support_session.resolution is None
    assert _grades(world) == []


def test_the_owner_resolving_after_a_hand_back_grades_the_escalation(world):
    sid, handoff = _case(world, confidence="high")
    hand_back(db=world.db, actor=world.actor("riley"), session_id=sid, guidance="Try the relay list")
    _resolve(world, sid, "no", by="dana")
    [grade] = _grades(world)
    assert grade.handoff_id == handoff.id and grade.human_verdict == "no"
    assert grade.human_by_id == world.users["dana"].id


def test_storing_the_ai_verdict_is_bounded_and_happens_once(world, key):
    key("test-key")
    sid, handoff = _case(world)
    _resolve(world, sid, "")
    with pytest.raises(InvalidInput):
        grading.store_ai_grade(db=world.db, handoff_id=handoff.id, verdict="probably", reason="x", model="m")
    assert grading.store_ai_grade(
        db=world.db, handoff_id=handoff.id, verdict="partly", reason="r" * 999, model="m"
    )
    # Not pending any more: a second run (a retried job) changes nothing.
    assert not grading.store_ai_grade(
        db=world.db, handoff_id=handoff.id, verdict="no", reason="late", model="m"
    )
    assert not grading.mark_ai_failed(db=world.db, handoff_id=handoff.id, reason="late")
    [grade] = _grades(world)
    assert grade.ai_verdict == "partly" and len(grade.ai_reason) == grading.REASON_MAX
    assert grade.ai_status == "ready"


# ---------------------------------------------------------------------------- calibration


# (confidence, human answer, AI verdict or None when the grading failed)
DATA_SET = [
    ("high", "yes", "yes"),
    ("high", "yes", "partly"),
    ("high", "partly", "yes"),
    ("high", "no", "no"),
    ("medium", "partly", "no"),
    ("medium", "", "yes"),  # the resolver skipped the question
    ("low", "no", "no"),
    ("low", "no", None),  # the AI grading failed: only the human answer counts
    ("low", "yes", "partly"),
]


def _build_data_set(world: World, key) -> list[tuple[int, SessionHandoff]]:
    key("test-key")
    cases = []
    for confidence, human, ai in DATA_SET:
        sid, handoff = _case(world, confidence=confidence)
        _resolve(world, sid, human)
        if ai:
            grading.store_ai_grade(
                db=world.db, handoff_id=handoff.id, verdict=ai, reason="checked", model="m"
            )
        else:
            grading.mark_ai_failed(db=world.db, handoff_id=handoff.id, reason="timed out after 30s")
        cases.append((sid, handoff))
    return cases


def _row(rows, confidence):
    return next(r for r in rows if r["confidence"] == confidence)


def test_calibration_table_counts_human_and_ai_verdicts_apart(world, key):
    _build_data_set(world, key)
    result = patterns.lessons(db=world.db, actor=world.actor("morgan"), now=utcnow() + timedelta(minutes=1))
    human, ai = result.calibration["human"], result.calibration["ai"]
    assert [r["confidence"] for r in human] == ["low", "medium", "high", "all"]

    high = _row(human, "high")
    assert (high["graded"], high["yes"], high["partly"], high["no"]) == (4, 2, 1, 1)
    assert (high["yes_pct"], high["partly_pct"], high["no_pct"], high["accuracy"]) == (50.0, 25.0, 25.0, 62.5)
    medium = _row(human, "medium")  # the skipped answer is not graded
    assert (medium["graded"], medium["partly"], medium["accuracy"]) == (1, 1, 50.0)
    low = _row(human, "low")
    assert (low["graded"], low["yes"], low["no"], low["accuracy"]) == (3, 1, 2, 33.3)
    everything = _row(human, "all")
    assert (everything["graded"], everything["yes"], everything["partly"], everything["no"]) == (8, 3, 2, 3)
    assert everything["accuracy"] == 50.0

    ai_high = _row(ai, "high")
    assert (ai_high["graded"], ai_high["yes"], ai_high["partly"], ai_high["no"], ai_high["accuracy"]) == (
        4,
        2,
        1,
        1,
        62.5,
    )
    ai_medium = _row(ai, "medium")
    assert (ai_medium["graded"], ai_medium["yes"], ai_medium["no"], ai_medium["accuracy"]) == (2, 1, 1, 50.0)
    ai_low = _row(ai, "low")  # the failed grading is not counted
    assert (ai_low["graded"], ai_low["partly"], ai_low["no"], ai_low["accuracy"]) == (2, 1, 1, 25.0)
    assert (_row(ai, "all")["graded"], _row(ai, "all")["accuracy"]) == (8, 50.0)


def test_accuracy_per_week_follows_the_resolve_time(world, key):
    cases = _build_data_set(world, key)
    # The three low-confidence cases were resolved last week.
    week_ago = utcnow() - timedelta(days=8)
    low_ids = [h.id for (sid, h), (conf, _, _) in zip(cases, DATA_SET, strict=True) if conf == "low"]
    world.db.exec(
        update(AssessmentGrade)
        .where(col(AssessmentGrade.handoff_id).in_(low_ids))
        .values(resolved_at=week_ago)
    )
    world.db.commit()
    result = patterns.lessons(db=world.db, actor=world.actor("morgan"), now=utcnow() + timedelta(minutes=1))
    weeks = result.accuracy_per_week
    assert len(weeks) == patterns.WEEKS
    this, last = weeks[-1], weeks[-2]
    assert (this["human_graded"], this["human_accuracy"]) == (5, 60.0)  # yes, yes, partly, no, partly
    assert (this["ai_graded"], this["ai_accuracy"]) == (6, 58.3)  # yes, partly, yes, no, no, yes
    assert (last["human_graded"], last["human_accuracy"]) == (3, 33.3)
    assert (last["ai_graded"], last["ai_accuracy"]) == (2, 25.0)
    assert all(w["human_graded"] == 0 and w["human_accuracy"] is None for w in weeks[:-2])


def test_lessons_are_for_managers_of_their_own_account_only(world, key):
    _build_data_set(world, key)
    with pytest.raises(PermissionDenied):
        patterns.lessons(db=world.db, actor=world.actor("alex"))
    contoso = patterns.lessons(db=world.db, actor=world.actor("jordan"))
    assert _row(contoso.calibration["human"], "all")["graded"] == 0
    assert contoso.per_engineer == [] or all(r["name"] != "Dana Engineer" for r in contoso.per_engineer)
    assert contoso.recurring == []


# ---------------------------------------------------------------------------- patterns


def test_per_engineer_escalations_quick_fixes_root_causes_and_hand_backs(world):
    # Dana: 4 escalations; 2 fixed within 10 minutes of the pick-up, 1 after 30 minutes,
    # 1 handed back to her (then resolved by her, 50 minutes after the pick-up).
    quick1, _ = _case(world, owner="dana")
    _resolve(world, quick1, "", cause="network")
    quick2, _ = _case(world, owner="dana", claimed_minutes_ago=9)
    _resolve(world, quick2, "", cause="network")
    slow, _ = _case(world, owner="dana", claimed_minutes_ago=30)
    _resolve(world, slow, "", cause="permissions")
    back, _ = _case(world, owner="dana", claimed_minutes_ago=50)
    hand_back(db=world.db, actor=world.actor("riley"), session_id=back, guidance="Check the licence")
    _resolve(world, back, "", by="dana", cause="network")
    # Eli: one escalation, still being worked.
    _case(world, owner="eli")

    rows = patterns.lessons(
        db=world.db, actor=world.actor("morgan"), now=utcnow() + timedelta(minutes=1)
    ).per_engineer
    dana = next(r for r in rows if r["name"] == "Dana Engineer")
    assert (dana["escalations"], dana["quick_fixes"], dana["quick_pct"], dana["hand_backs"]) == (
        4,
        2,
        50.0,
        1,
    )
    # The hand-back's resolution belongs to the hand-back, not to Dana's escalation.
    assert dana["top_causes"] == [
        {"label": "Network or connectivity", "count": 2},
        {"label": "Permissions or access", "count": 1},
    ]
    eli = next(r for r in rows if r["name"] == "Eli Engineer")
    assert (
        eli["escalations"],
        eli["quick_fixes"],
        eli["quick_pct"],
        eli["top_causes"],
        eli["hand_backs"],
    ) == (
        1,
        0,
        0.0,
        [],
        0,
    )


def test_recurring_problems_per_client_by_root_cause_and_by_similar_summary(world):
    for summary in ("VPN drops for remote staff", "Outlook asks for the password", "Teams calls cut out"):
        sid, _ = _case(world, client="Lakeview", summary=summary)
        _resolve(world, sid, "", cause="network")
    for summary in ("Printer offline on floor 2", "printer offline on floor 3", "Printer offline, floor 2!"):
        _case(world, client="Cedar Law", summary=summary)  # still being worked: no root cause yet
    # Two of a kind is not recurring; nor is the same problem at different clients.
    for client in ("Lakeview", "Cedar Law"):
        sid, _ = _case(world, client=client, summary="Scanner fails to email")
        _resolve(world, sid, "", cause="hardware")

    recurring = patterns.lessons(
        db=world.db, actor=world.actor("morgan"), now=utcnow() + timedelta(minutes=1)
    ).recurring
    assert [(p["client"], p["kind"], p["label"], p["count"]) for p in recurring] == [
        ("Cedar Law", "similar", "Similar problem: Printer offline, floor 2!", 3),
        ("Lakeview", "root_cause", "Same root cause: Network or connectivity", 3),
    ]
    lakeview = recurring[1]
    summaries = {c["summary"] for c in lakeview["cases"]}
    assert summaries == {"VPN drops for remote staff", "Outlook asks for the password", "Teams calls cut out"}
    assert all(isinstance(c["session_id"], int) for c in lakeview["cases"])


def test_similar_summaries_rule():
    assert patterns.similar("Printer offline on floor 2", "printer offline, floor 2!")
    assert patterns.similar("VPN drops every few minutes", "VPN drops every few minutes.")
    assert not patterns.similar("VPN drops every few minutes", "Outlook asks for the password")
    assert not patterns.similar("", "")


# ---------------------------------------------------------------------------- demo history


def test_the_demo_history_teaches_calibration_patterns_and_a_recurring_problem(engine, db, key):
    from escalation_app.domain.completeness import pickup_comparison
    from escalation_app.domain.demo_history import RECURRING_CLIENT, load_demo_history

    world = World(db)
    now = utcnow()
    load_demo_history(db, now=now)
    result = patterns.lessons(db=db, actor=world.actor("morgan"), now=now)
    for source in ("human", "ai"):
        rows = {r["confidence"]: r for r in result.calibration[source]}
        assert all(rows[c]["graded"] >= 5 for c in ("low", "medium", "high")), rows
        # High confidence was right more often than low: the table says so.
        assert rows["high"]["accuracy"] > rows["low"]["accuracy"]
    assert sum(w["human_graded"] for w in result.accuracy_per_week) > 20
    engineers = {r["name"]: r for r in result.per_engineer}
    assert {"Alex Kim", "Sam Patel", "Jamie Rivera", "Taylor Brooks"} <= set(engineers)
    assert engineers["Taylor Brooks"]["quick_fixes"] > 0
    assert engineers["Taylor Brooks"]["quick_pct"] > engineers["Sam Patel"]["quick_pct"]
    assert any(r["top_causes"] for r in engineers.values())
    assert sum(r["hand_backs"] for r in engineers.values()) > 0
    harbor = [p for p in result.recurring if p["client"] == RECURRING_CLIENT and p["kind"] == "similar"]
    assert harbor and harbor[0]["count"] >= 4
    comparison = pickup_comparison(db=db, account_id=world.northwind.id, now=now)
    assert comparison is not None and comparison.complete_seconds < comparison.incomplete_seconds
