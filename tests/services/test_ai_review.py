"""Claude grading the assessment against the fix, and "What will the senior ask?",
through the real `anthropic` SDK against the local fake Messages API.

The grading runs as the outbox job the resolve added (the real worker and handler);
every case ends by reading what was committed. Database tests run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlmodel import Session, col, select

from escalation_app.domain.assessments import Assessment, store_assessment
from escalation_app.domain.casework import resolve_case
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import AssessmentGrade, JobStatus
from escalation_app.domain.outbox import JobKind
from escalation_app.services import ai_review
from escalation_app.settings import Settings, get_settings
from tests.factories import World
from tests.fakes import anthropic as fake_api
from tests.outbox_helpers import clear_outbox, outbox_jobs, run_outbox
from tests.services.test_assessment import sent_api_key

GRADING = [JobKind.GRADING]
CAUSE = "The smart host's relay allow-list lost the new public IP"
FIX = "Added the new public IP to the smart host's relay allow-list"


class AIConfig:
    def __init__(self, mp: pytest.MonkeyPatch):
        self._mp = mp

    def set(
        self, *, key: str = "test-key", base_url: str = "", timeout: float = 5.0, fast_timeout: float = 3.0
    ):
        self._mp.setenv("ANTHROPIC_API_KEY", key)
        self._mp.setenv("ANTHROPIC_BASE_URL", base_url)
        self._mp.setenv("ESCALATION_AI_MODEL", "claude-test-model")
        self._mp.setenv("ANTHROPIC_FAST_MODEL", "claude-haiku-test")
        self._mp.setenv("ESCALATION_AI_ASSESSMENT_TIMEOUT_SECONDS", str(timeout))
        self._mp.setenv("SENIOR_QUESTIONS_TIMEOUT_SECONDS", str(fast_timeout))
        get_settings.cache_clear()
        return get_settings()


@pytest.fixture(autouse=True)
def ai() -> Iterator[AIConfig]:
    with pytest.MonkeyPatch.context() as mp:
        config = AIConfig(mp)
        config.set(key="")
        yield config
    get_settings.cache_clear()


@pytest.fixture
def fake() -> Iterator[fake_api.FakeAnthropic]:
    with fake_api.running_fake() as server:
        yield server


@pytest.fixture
def world(db) -> World:
    world = World(db)
    clear_outbox(db)
    return world


def _resolved_case(world: World, *, verdict: str = "yes", confidence: str = "high") -> AssessmentGrade:
    """Alex escalates; the assessment names CAUSE; Riley picks it up and resolves it with FIX."""
    db = world.db
    sid = world.new_session()
    handoff = create_handoff(
        db=db, actor=world.actor("alex"), session_id=sid, intent="escalate", notes="Stuck"
    )
    store_assessment(
        db=db,
        handoff_id=handoff.id,
        assessment=Assessment(summary_prose="Mail is stuck.", likely_cause=CAUSE, confidence=confidence),
        model="claude-test-model",
        offline=False,
    )
    claim_handoff(db=db, actor=world.actor("riley"), handoff_id=handoff.id)
    resolve_case(
        db=db,
        actor=world.actor("riley"),
        session_id=sid,
        fix=FIX,
        root_cause="configuration",
        ai_verdict=verdict,
    )
    return _grade(world.db.get_bind())


def _grade(engine) -> AssessmentGrade:
    with Session(engine) as s:
        return s.exec(select(AssessmentGrade).order_by(col(AssessmentGrade.id).desc())).first()


async def test_the_grading_job_stores_claudes_verdict_and_reason(world, engine, ai, fake):
    ai.set(base_url=fake.base_url)
    before = _resolved_case(world, verdict="partly")
    assert before.ai_status == "pending"
    fake.script(fake_api.grade("yes", "The fix restored the relay allow-list entry the assessment named."))

    assert await run_outbox(engine, kinds=GRADING) == 1

    grade = _grade(engine)
    assert (grade.ai_status, grade.ai_verdict) == ("ready", "yes")
    assert grade.ai_reason.startswith("The fix restored")
    assert grade.ai_model == fake_api.DEFAULT_MODEL and grade.ai_graded_at is not None
    # The human answer is kept apart.
    assert grade.human_verdict == "partly"
    [request] = fake.requests
    assert sent_api_key(request.headers) == "test-key"
    assert request.body["model"] == "claude-test-model"
    assert request.body["tool_choice"] == {"type": "tool", "name": "record_grade"}
    prompt = request.body["messages"][0]["content"]
    assert CAUSE in prompt and FIX in prompt and "high confidence" in prompt
    [job] = outbox_jobs(engine, kind=JobKind.GRADING)
    assert job.status == JobStatus.DONE and job.result == "graded yes"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (fake_api.grade("maybe", "unsure"), "malformed response"),
        (fake_api.text("It looks right to me."), "malformed response"),
        (fake_api.error(400, "prompt is too long", "invalid_request_error"), "Anthropic API error 400"),
    ],
)
async def test_a_failed_grading_is_stored_and_only_the_human_answer_counts(
    world, engine, ai, fake, reply, reason
):
    ai.set(base_url=fake.base_url)
    _resolved_case(world, verdict="no")
    fake.script(reply)
    await run_outbox(engine, kinds=GRADING)
    grade = _grade(engine)
    assert grade.ai_status == "failed" and grade.ai_verdict is None
    assert grade.ai_error.startswith(reason)
    assert grade.human_verdict == "no"
    [job] = outbox_jobs(engine, kind=JobKind.GRADING)
    assert job.status == JobStatus.DONE  # recorded, not retried


async def test_a_slow_grading_times_out_within_its_budget(world, engine, ai, fake):
    ai.set(base_url=fake.base_url, timeout=0.5)
    _resolved_case(world)
    fake.script(fake_api.Reply(body=fake_api.grade("yes", "x").body, delay=3))
    started = time.monotonic()
    await run_outbox(engine, kinds=GRADING)
    assert time.monotonic() - started < 2.5
    grade = _grade(engine)
    assert grade.ai_status == "failed" and "timed out" in grade.ai_error


async def test_without_a_key_no_grading_job_and_no_request(world, engine, fake):
    grade = _resolved_case(world, verdict="yes")
    assert grade.ai_status is None and grade.human_verdict == "yes"
    assert outbox_jobs(engine, kind=JobKind.GRADING) == []
    await run_outbox(engine)
    assert fake.requests == []


async def test_a_key_removed_before_the_job_runs_skips_it(world, engine, ai, fake):
    ai.set(base_url=fake.base_url)
    _resolved_case(world)
    ai.set(key="", base_url=fake.base_url)
    await run_outbox(engine, kinds=GRADING)
    [job] = outbox_jobs(engine, kind=JobKind.GRADING)
    assert job.status == JobStatus.SKIPPED
    grade = _grade(engine)
    assert grade.ai_status == "failed" and grade.ai_error == "no AI configured"
    assert fake.requests == []


# ---------------------------------------------------------------------------- senior questions


PROMPT = ai_review.questions_prompt(
    summary="Mail flow stopped",
    client="Acme",
    steps=["Restarted the transport service -> no change"],
    notes="Need help",
    customer_sees="Bounce 550 5.7.1",
)


async def test_senior_questions_come_from_the_fast_model_at_most_three(ai, fake):
    settings: Settings = ai.set(base_url=fake.base_url)
    fake.script(
        fake_api.questions(
            ["Which smart host?", "  ", "When did it start?", "Any firewall change?", "Which users?"]
        )
    )
    questions = await ai_review.senior_questions(PROMPT, settings)
    assert questions == ["Which smart host?", "When did it start?", "Any firewall change?"]
    [request] = fake.requests
    assert request.body["model"] == "claude-haiku-test"
    assert request.body["tool_choice"] == {"type": "tool", "name": "record_questions"}
    assert "Bounce 550 5.7.1" in request.body["messages"][0]["content"]


async def test_a_slow_answer_times_out_cleanly_with_no_hint(ai, fake):
    settings = ai.set(base_url=fake.base_url, fast_timeout=0.5)
    fake.script(fake_api.questions(["Too late?"], delay=3))
    started = time.monotonic()
    assert await ai_review.senior_questions(PROMPT, settings) == []
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "reply",
    [
        fake_api.overloaded(),
        fake_api.text("No tool call"),
        fake_api.tool_use({"questions": "one"}, name="record_questions"),
    ],
)
async def test_a_failed_answer_gives_no_hint(ai, fake, reply):
    settings = ai.set(base_url=fake.base_url)
    fake.script(reply)
    assert await ai_review.senior_questions(PROMPT, settings) == []


async def test_no_key_no_request_no_hint(ai, fake):
    settings = ai.set(key="", base_url=fake.base_url)
    assert await ai_review.senior_questions(PROMPT, settings) == []
    assert fake.requests == []


def test_the_questions_prompt_is_bounded():
    prompt = ai_review.questions_prompt(
        summary="s" * 5000,
        client="c" * 5000,
        steps=["t" * 5000] * 50,
        notes="n" * 9000,
        customer_sees="x" * 9000,
    )
    assert len(prompt) <= ai_review.QUESTIONS_PROMPT_MAX
