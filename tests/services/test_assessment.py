"""The AI handoff assessment, end to end against a local fake of the Messages API.

The real `anthropic` SDK talks HTTP to `tests.fakes.anthropic` through `base_url`;
every case ends by reading what was committed, from a separate database session.
Each escalation commits with its `assessment` outbox job; most cases run that job
through the real worker and handler (`run_outbox`).
Database tests run on SQLite and PostgreSQL (the `db`/`engine` fixtures).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from escalation_app.domain import assessments, outbox
from escalation_app.domain.assessments import (
    OFFLINE_LABEL,
    Assessment,
    MalformedAssessment,
    assessment_panel,
    build_prompt,
    load_assessment_input,
    mark_failed,
    normalize,
    reset_for_retry,
    store_assessment,
    toggle_checked_step,
)
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import SessionHandoff
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.support_sessions import add_step
from escalation_app.domain.types import utcnow
from escalation_app.services import assessment as service
from escalation_app.services.assessment import ASSESSMENT_TOOL, RetryPolicy, run_assessment
from escalation_app.settings import Settings, get_settings
from tests.factories import World
from tests.fakes import anthropic as fake_api
from tests.outbox_helpers import Clock, clear_outbox, outbox_jobs, run_outbox, take_and_die

ATTEMPTS = 3
ASSESS = [JobKind.ASSESSMENT]
FULL = {
    "summary_prose": "Outbound mail is stuck in the queue. The smart host rejects relaying.",
    "what_we_know": ["Queue holds 240 messages", "Smart host answers 550 5.7.1"],
    "likely_cause": "The smart host's relay allow-list lost the new public IP",
    "suggested_steps": ["Check the relay allow-list", "Compare the public IP", "Flush the queue"],
    "confidence": "high",
}


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------


class AIConfig:
    """Sets the AI settings through the environment, as the app reads them."""

    def __init__(self, mp: pytest.MonkeyPatch):
        self._mp = mp

    def set(
        self,
        *,
        key: str = "test-key",
        base_url: str = "",
        timeout: float = 5.0,
        model: str = "claude-test-model",
    ) -> Settings:
        # Empty strings (not deletion) so a developer's .env cannot leak in.
        self._mp.setenv("ANTHROPIC_API_KEY", key)
        self._mp.setenv("ANTHROPIC_BASE_URL", base_url)
        self._mp.setenv("ESCALATION_AI_MODEL", model)
        self._mp.setenv("ESCALATION_AI_ASSESSMENT_TIMEOUT_SECONDS", str(timeout))
        get_settings.cache_clear()
        return get_settings()


@pytest.fixture(autouse=True)
def ai() -> Iterator[AIConfig]:
    """No AI configured unless a test says so; fast retries; settings restored after."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(service, "RETRY_POLICY", RetryPolicy(attempts=ATTEMPTS, initial_wait=0.01, max_wait=0.05))
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
    # Only this test's escalations have jobs (the demo data's has its own).
    clear_outbox(db)
    return world


class ReadyCalls:
    """What open screens are told: each "assessed" live push committed, with the status a
    fresh session could read when the committing process heard of it."""

    def __init__(self, engine):
        self.engine = engine
        self.heard: list[outbox.JobView] = []
        self.statuses: dict[int, str] = {}

    def __call__(self, jobs: list[outbox.JobView]) -> None:
        self.heard.extend(jobs)
        for job in jobs:
            if job.kind == JobKind.LIVE and job.payload.get("event") == "assessed":
                self.statuses[job.id] = read(self.engine, job.handoff_id).ai_status

    @property
    def calls(self) -> list[tuple[uuid.UUID, str]]:
        return [
            (job.handoff_id, self.statuses[job.id])
            for job in self.heard
            if job.kind == JobKind.LIVE and job.payload.get("event") == "assessed"
        ]


@pytest.fixture
def on_ready(engine) -> Iterator[ReadyCalls]:
    """Listen to the outbox's commits for the "assessed" live push (what replaced `on_ready`)."""
    calls = ReadyCalls(engine)
    outbox.set_commit_listener(calls)
    try:
        yield calls
    finally:
        outbox.set_commit_listener(None)


def assessed_pushes(engine, handoff_id) -> list[str]:
    """The "assessed" live pushes committed for a handoff (their job statuses)."""
    return [
        j.status
        for j in outbox_jobs(engine, handoff_id=handoff_id, kind=JobKind.LIVE)
        if j.payload.get("event") == "assessed"
    ]


def read(engine, handoff_id) -> SessionHandoff:
    """The committed row, through a separate short-lived session."""
    with Session(engine) as other:
        row = other.get(SessionHandoff, handoff_id)
        assert row is not None
        other.expunge(row)
        return row


def escalate(world: World, *, steps: int = 3, notes: str = "Mail stuck since 9am", owner: str = "alex"):
    sid = world.new_session(owner=owner, steps=steps)
    handoff = create_handoff(
        db=world.db, actor=world.actor(owner), session_id=sid, intent="escalate", notes=notes
    )
    return handoff.id


def park(world: World) -> uuid.UUID:
    sid = world.new_session()
    return create_handoff(db=world.db, actor=world.actor("alex"), session_id=sid, intent="park").id


def sent_api_key(headers: dict[str, str]) -> str | None:
    # SDK 2.x sends the key as a bearer token; older ones as x-api-key.
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


async def assess_with(fake, ai, engine, handoff_id, *replies, timeout=5.0):
    """Run the escalation's assessment job through the worker, against the scripted fake."""
    ai.set(base_url=fake.base_url, timeout=timeout)
    fake.script(*replies)
    assert await run_outbox(engine, kinds=ASSESS) == 1
    [job] = outbox_jobs(engine, handoff_id=handoff_id, kind=JobKind.ASSESSMENT)
    # A stored outcome (ready or failed) is the job done; only a failure to store retries.
    assert (job.status, job.attempts, job.result) == ("done", 1, "stored")
    return read(engine, handoff_id)


# ---------------------------------------------------------------------------
# Successful answers
# ---------------------------------------------------------------------------


async def test_tool_use_answer_is_stored_and_request_has_the_right_shape(world, engine, fake, ai, on_ready):
    hid = escalate(world, notes="Smart host rejects us since the ISP change")

    row = await assess_with(fake, ai, engine, hid, fake_api.tool_use(FULL))

    assert row.ai_status == "ready"
    assert row.ai_error is None
    assert row.ai_assessment == FULL["summary_prose"]
    data = row.ai_assessment_data
    assert {k: data[k] for k in FULL} == FULL
    assert data["offline"] is False
    assert "relay allow-list lost the new public IP" in data["start_here"]
    assert "Check the relay allow-list" in data["start_here"]
    # The model that answered, not only the one asked for.
    assert row.ai_model == fake_api.DEFAULT_MODEL
    assert row.ai_generated_at is not None
    # Open screens are pushed once, by a job committed with the result (it reads "ready").
    assert on_ready.calls == [(hid, "ready")]
    assert assessed_pushes(engine, hid) == ["pending"]

    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert sent_api_key(request.headers) == "test-key"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", request.headers["anthropic-version"])
    body = request.body
    assert body["model"] == "claude-test-model"
    assert body["max_tokens"] > 0
    assert body["tool_choice"] == {"type": "tool", "name": "record_assessment"}
    [tool] = body["tools"]
    assert tool["name"] == "record_assessment"
    assert set(tool["input_schema"]["properties"]) == set(Assessment.model_fields)
    assert tool["input_schema"]["properties"]["confidence"]["enum"] == ["low", "medium", "high"]
    [user_message] = body["messages"]
    assert user_message["role"] == "user"
    prompt = user_message["content"]
    assert "Problem: Mail flow stopped" in prompt
    assert "Smart host rejects us since the ISP change" in prompt
    assert "3. step 3 -> result 3" in prompt


async def test_plain_json_text_answer_is_accepted(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.text(json.dumps(FULL)))
    assert row.ai_status == "ready"
    assert row.ai_assessment_data["suggested_steps"] == FULL["suggested_steps"]
    assert row.ai_assessment_data["confidence"] == "high"


async def test_json_in_code_fences_is_accepted(world, engine, fake, ai):
    hid = escalate(world)
    answer = "Here is my assessment:\n```json\n" + json.dumps(FULL, indent=2) + "\n```\nGood luck!"
    row = await assess_with(fake, ai, engine, hid, fake_api.text(answer))
    assert row.ai_status == "ready"
    assert row.ai_assessment_data["likely_cause"] == FULL["likely_cause"]
    assert row.ai_assessment_data["what_we_know"] == FULL["what_we_know"]


async def test_missing_fields_get_defaults_and_summary_falls_back_to_cause(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.tool_use({"likely_cause": "Expired relay cert"}))
    assert row.ai_status == "ready"
    assert row.ai_assessment == "Expired relay cert"
    data = row.ai_assessment_data
    assert data["summary_prose"] == "Expired relay cert"
    assert data["what_we_know"] == []
    assert data["suggested_steps"] == []
    assert data["confidence"] == "medium"


async def test_invalid_confidence_becomes_medium(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.tool_use({**FULL, "confidence": "very high"}))
    assert row.ai_status == "ready"
    assert row.ai_assessment_data["confidence"] == "medium"
    assert row.ai_assessment_data["likely_cause"] == FULL["likely_cause"]


async def test_overloaded_then_success_is_retried(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.overloaded(), fake_api.tool_use(FULL))
    assert row.ai_status == "ready"
    assert row.ai_error is None
    assert len(fake.requests) == 2
    assert fake.requests[0].body == fake.requests[1].body


# ---------------------------------------------------------------------------
# Failures: the handoff stays, the reason is stored
# ---------------------------------------------------------------------------


async def test_answer_slower_than_the_timeout_fails_with_timed_out(world, engine, fake, ai, on_ready):
    hid = escalate(world)
    slow = fake_api.tool_use(FULL)
    slow.delay = 10  # cut short when the fake stops
    row = await assess_with(fake, ai, engine, hid, slow, timeout=1.0)
    assert row.ai_status == "failed"
    assert row.ai_error == "timed out after 1s"
    assert row.ai_assessment is None and row.ai_assessment_data is None
    assert on_ready.calls == [(hid, "failed")]


async def test_server_error_is_retried_then_fails(world, engine, fake, ai):
    hid = escalate(world)
    errors = [fake_api.error(500, "Internal server error") for _ in range(ATTEMPTS)]
    row = await assess_with(fake, ai, engine, hid, *errors)
    assert row.ai_status == "failed"
    assert row.ai_error == f"Anthropic API error 500: Internal server error; tried {ATTEMPTS} times"
    assert len(fake.requests) == ATTEMPTS
    assert row.ai_assessment is None


async def test_overloaded_every_time_fails_as_overloaded(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, *[fake_api.overloaded() for _ in range(ATTEMPTS)])
    assert row.ai_status == "failed"
    assert row.ai_error == f"the AI service is overloaded (529); tried {ATTEMPTS} times"
    assert len(fake.requests) == ATTEMPTS


async def test_client_error_is_not_retried(world, engine, fake, ai):
    hid = escalate(world)
    reply = fake_api.error(401, "invalid x-api-key", "authentication_error")
    row = await assess_with(fake, ai, engine, hid, reply, fake_api.tool_use(FULL))
    assert row.ai_status == "failed"
    assert row.ai_error == "Anthropic API error 401: invalid x-api-key"
    assert len(fake.requests) == 1
    assert fake.unused == 1


async def test_malformed_json_answer_fails(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.text('{"summary_prose": "DNS", "what_we_'))
    assert row.ai_status == "failed"
    assert row.ai_error.startswith("malformed response: malformed JSON")
    assert row.ai_assessment_data is None


async def test_response_body_that_is_not_json_fails_as_malformed(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.raw(b'{"id": "msg_1", "content": ['))
    assert row.ai_status == "failed"
    assert row.ai_error == "malformed response: the API answer is not valid JSON"


async def test_connection_refused_fails_after_retries(world, engine, ai):
    hid = escalate(world)
    ai.set(base_url=fake_api.closed_port_url())
    await run_outbox(engine, kinds=ASSESS)
    row = read(engine, hid)
    assert row.ai_status == "failed"
    assert row.ai_error == f"could not reach the AI service; tried {ATTEMPTS} times"


async def test_failures_are_logged(world, engine, fake, ai, caplog):
    hid = escalate(world)
    with caplog.at_level(logging.WARNING, logger=service.__name__):
        await assess_with(fake, ai, engine, hid, fake_api.error(400, "bad request", "invalid_request_error"))
    assert any(str(hid) in r.getMessage() and "bad request" in r.getMessage() for r in caplog.records)


async def test_a_failing_commit_listener_is_logged_not_raised(world, engine, ai, caplog):
    hid = escalate(world)

    def broken(_jobs):
        raise RuntimeError("publisher down")

    outbox.set_commit_listener(broken)
    try:
        with caplog.at_level(logging.ERROR, logger=outbox.__name__):
            await run_outbox(engine, kinds=ASSESS)
    finally:
        outbox.set_commit_listener(None)
    assert read(engine, hid).ai_status == "ready"
    # The push itself is committed: a worker runs it even though the wake-up failed.
    assert assessed_pushes(engine, hid) == ["pending"]
    assert any("outbox commit listener failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------
# No key, parks, the sweep, and the click path
# ---------------------------------------------------------------------------


async def test_without_a_key_an_offline_summary_is_stored(world, engine, fake, ai, on_ready):
    ai.set(key="", base_url=fake.base_url)
    hid = escalate(world, steps=2, notes="Customer says it worked yesterday")

    assert await run_outbox(engine, kinds=ASSESS) == 1

    row = read(engine, hid)
    assert fake.requests == []
    assert row.ai_status == "ready"
    assert row.ai_error is None
    assert row.ai_model == "offline"
    assert row.ai_assessment.startswith(OFFLINE_LABEL)
    assert "Last step: step 2 → result 2" in row.ai_assessment
    data = row.ai_assessment_data
    assert data["offline"] is True
    assert data["confidence"] == "low"
    assert "Tried: step 1 → result 1" in data["what_we_know"]
    assert any("Customer says it worked yesterday" in s for s in data["suggested_steps"])
    assert data["start_here"]
    assert on_ready.calls == [(hid, "ready")]


async def test_a_park_is_never_assessed(world, engine, fake, ai, on_ready):
    hid = park(world)
    ai.set(base_url=fake.base_url)
    fake.script(fake_api.tool_use(FULL))

    # A park commits no assessment job; asked directly, the service does nothing.
    assert outbox_jobs(engine, handoff_id=hid, kind=JobKind.ASSESSMENT) == []
    assert await run_outbox(engine, kinds=ASSESS) == 0
    assert await run_assessment(hid, engine=engine) is False

    row = read(engine, hid)
    assert row.ai_status == "not_needed"
    assert row.ai_assessment_data is None
    assert fake.requests == []
    assert on_ready.calls == [] and assessed_pushes(engine, hid) == []
    with Session(engine) as other:
        assert not store_assessment(
            db=other, handoff_id=hid, assessment=Assessment(), model="m", offline=False
        )
        assert not mark_failed(db=other, handoff_id=hid, reason="x")
    assert read(engine, hid).ai_status == "not_needed"


async def test_finished_assessment_is_not_overwritten_by_a_second_run(world, engine, fake, ai):
    hid = escalate(world)
    await assess_with(fake, ai, engine, hid, fake_api.tool_use(FULL))
    fake.script(fake_api.tool_use({**FULL, "likely_cause": "something else"}))
    # A second run of the same job (its worker died after storing, say) changes nothing.
    [job] = outbox_jobs(engine, handoff_id=hid, kind=JobKind.ASSESSMENT)
    assert await service.run_assessment_job(outbox.JobView.of(job), engine) == "nothing to do"
    assert await run_assessment(hid, engine=engine) is False
    assert len(fake.requests) == 1
    assert read(engine, hid).ai_assessment_data["likely_cause"] == FULL["likely_cause"]
    assert assessed_pushes(engine, hid) == ["pending"]


async def test_an_assessment_whose_worker_died_is_run_again_after_its_lease(world, engine, fake, ai):
    ai.set(base_url=fake.base_url)
    clock = Clock(utcnow() + timedelta(seconds=5))
    stale = escalate(world)
    # A worker took the assessment and died (a deploy, OOM): the job stays leased.
    [taken] = take_and_die(engine, clock=clock, kinds=ASSESS)
    assert taken.handoff_id == stale
    lease = outbox.policy(JobKind.ASSESSMENT).lease()
    # A later escalation, taken by a worker that is still busy with it.
    clock.advance(seconds=lease.total_seconds() / 2)
    fresh = escalate(world, owner="sam")
    [busy] = take_and_die(engine, clock=clock, kinds=ASSESS)
    assert busy.handoff_id == fresh
    parked = park(world)
    fake.script(fake_api.tool_use(FULL))

    assert await run_outbox(engine, kinds=ASSESS, clock=clock) == 0  # both leased
    clock.advance(seconds=lease.total_seconds() / 2 + 1)
    assert await run_outbox(engine, kinds=ASSESS, clock=clock) == 1

    assert read(engine, stale).ai_status == "ready"
    assert read(engine, stale).ai_assessment == FULL["summary_prose"]
    assert read(engine, fresh).ai_status == "pending"
    assert read(engine, parked).ai_status == "not_needed"
    [job] = outbox_jobs(engine, handoff_id=stale, kind=JobKind.ASSESSMENT)
    assert (job.status, job.attempts) == ("done", 2)
    assert assessed_pushes(engine, stale) == ["pending"] and assessed_pushes(engine, fresh) == []
    assert len(fake.requests) == 1


async def test_escalate_commits_and_returns_before_the_ai_answers(world, engine, fake, ai):
    ai.set(base_url=fake.base_url, timeout=20)
    release = threading.Event()
    held = fake_api.tool_use(FULL)
    held.gate = release
    fake.script(held)
    sid = world.new_session()

    # What the escalate handler does: commit the handoff with its jobs, and return.
    handoff = create_handoff(
        db=world.db, actor=world.actor("alex"), session_id=sid, intent="escalate", notes="help"
    )
    fake.note("click-returned")
    [job] = outbox_jobs(engine, handoff_id=handoff.id, kind=JobKind.ASSESSMENT)
    assert job.status == "pending"
    # The process's worker picks the job up.
    task = asyncio.create_task(run_outbox(engine, kinds=ASSESS))

    # The assessment is now in flight and held by the fake; the handoff is visible.
    assert await asyncio.to_thread(fake.wait_for_requests, 1)
    assert read(engine, handoff.id).ai_status == "pending"
    fake.note("committed-visible")
    release.set()
    assert await asyncio.wait_for(task, timeout=10) == 1

    assert fake.log == ["click-returned", "request", "committed-visible", "answered"]
    assert read(engine, handoff.id).ai_status == "ready"


# ---------------------------------------------------------------------------
# Retry and the suggested-steps checklist
# ---------------------------------------------------------------------------


async def test_retry_after_failure_then_success(world, engine, fake, ai):
    hid = escalate(world)
    row = await assess_with(fake, ai, engine, hid, fake_api.error(401, "invalid x-api-key"))
    assert row.ai_status == "failed"

    reset = reset_for_retry(db=world.db, actor=world.actor("sam"), handoff_id=str(hid))
    assert reset.ai_status == "pending"
    assert read(engine, hid).ai_status == "pending"
    assert read(engine, hid).ai_error is None

    # Retry re-runs the escalation's one assessment job from its first attempt.
    [job] = outbox_jobs(engine, handoff_id=hid, kind=JobKind.ASSESSMENT)
    assert (job.status, job.attempts) == ("pending", 0)
    fake.script(fake_api.tool_use(FULL))
    assert await run_outbox(engine, kinds=ASSESS) == 1
    assert read(engine, hid).ai_status == "ready"
    [job] = outbox_jobs(engine, handoff_id=hid, kind=JobKind.ASSESSMENT)
    assert (job.status, job.attempts) == ("done", 1)
    assert assessed_pushes(engine, hid) == ["pending", "pending"]


def _failed(world, engine) -> uuid.UUID:
    hid = escalate(world)
    with Session(engine) as other:
        assert mark_failed(db=other, handoff_id=hid, reason="timed out after 30s")
    return hid


def test_retry_is_refused_to_viewers_other_accounts_and_non_failed(world, engine):
    hid = _failed(world, engine)
    db = world.db
    with pytest.raises(PermissionDenied):
        reset_for_retry(db=db, actor=world.actor("val"), handoff_id=hid)
    db.rollback()
    with pytest.raises(NotFound):
        reset_for_retry(db=db, actor=world.actor("casey"), handoff_id=hid)
    db.rollback()
    with pytest.raises(NotFound):
        reset_for_retry(db=db, actor=world.actor("sam"), handoff_id="not-a-uuid")
    db.rollback()
    assert read(engine, hid).ai_status == "failed"

    reset_for_retry(db=db, actor=world.actor("riley"), handoff_id=hid)
    with pytest.raises(InvalidInput, match="Only a failed assessment"):
        reset_for_retry(db=db, actor=world.actor("sam"), handoff_id=hid)
    db.rollback()
    with pytest.raises(InvalidInput, match="Parked"):
        reset_for_retry(db=db, actor=world.actor("alex"), handoff_id=park(world))
    db.rollback()
    assert read(engine, hid).ai_status == "pending"


def _ready(world, engine) -> uuid.UUID:
    hid = escalate(world)
    with Session(engine) as other:
        assert store_assessment(
            db=other, handoff_id=hid, assessment=normalize(FULL), model="claude-x", offline=False
        )
    return hid


def test_checklist_ticks_are_saved_and_validated(world, engine):
    hid = _ready(world, engine)
    sam = world.actor("sam")
    db = world.db

    assert toggle_checked_step(db=db, actor=sam, handoff_id=hid, index=2, checked=True) == [2]
    assert toggle_checked_step(db=db, actor=sam, handoff_id=hid, index=0, checked=True) == [0, 2]
    # Handlers can be called with strings; "false" must untick, not tick.
    assert toggle_checked_step(db=db, actor=sam, handoff_id=hid, index="2", checked="false") == [0]
    assert toggle_checked_step(db=db, actor=sam, handoff_id=hid, index=0, checked=True) == [0]
    assert read(engine, hid).checked_steps == [0]

    for bad_index in (3, -1, "x", None, True):
        with pytest.raises(InvalidInput, match="No such suggested step"):
            toggle_checked_step(db=db, actor=sam, handoff_id=hid, index=bad_index, checked=True)
        db.rollback()
    with pytest.raises(InvalidInput, match="true or false"):
        toggle_checked_step(db=db, actor=sam, handoff_id=hid, index=1, checked="maybe")
    db.rollback()
    assert read(engine, hid).checked_steps == [0]


def test_checklist_is_account_scoped_and_read_only_for_viewers(world, engine):
    hid = _ready(world, engine)
    db = world.db
    with pytest.raises(PermissionDenied):
        toggle_checked_step(db=db, actor=world.actor("val"), handoff_id=hid, index=0, checked=True)
    db.rollback()
    with pytest.raises(NotFound):
        toggle_checked_step(db=db, actor=world.actor("jordan"), handoff_id=hid, index=0, checked=True)
    db.rollback()
    pending = escalate(world, owner="sam")
    with pytest.raises(InvalidInput):
        toggle_checked_step(db=db, actor=world.actor("alex"), handoff_id=pending, index=0, checked=True)
    db.rollback()
    assert read(engine, hid).checked_steps == []


def test_a_new_assessment_clears_old_ticks(world, engine):
    hid = _ready(world, engine)
    toggle_checked_step(db=world.db, actor=world.actor("sam"), handoff_id=hid, index=1, checked=True)
    with Session(engine) as other:
        other.exec(update(SessionHandoff).where(SessionHandoff.id == hid).values(ai_status="pending"))
        other.commit()
        assert store_assessment(
            db=other, handoff_id=hid, assessment=normalize(FULL), model="m", offline=False
        )
    assert read(engine, hid).checked_steps == []


def test_assessment_panel_reads_the_stored_row(world, engine):
    hid = _ready(world, engine)
    panel = assessment_panel(read(engine, hid))
    assert panel.status == "ready"
    assert panel.assessment == normalize(FULL)
    assert panel.offline is False
    assert panel.model == "claude-x"
    assert panel.start_here.startswith("Likely cause:")

    failed = _failed(world, engine)
    panel = assessment_panel(read(engine, failed))
    assert (panel.status, panel.error, panel.assessment) == ("failed", "timed out after 30s", None)


# ---------------------------------------------------------------------------
# The input: bounded, first 15 steps, notes
# ---------------------------------------------------------------------------


def test_input_is_bounded_and_keeps_the_first_fifteen_steps(world, engine):
    alex = world.actor("alex")
    sid = world.new_session(steps=0)
    for i in range(20):
        add_step(
            db=world.db, actor=alex, session_id=sid, tried=f"try {i + 1} " + "x" * 1900, result=f"r{i + 1}"
        )
    handoff = create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate", notes="n" * 5000)

    with Session(engine) as other:
        inp = load_assessment_input(db=other, handoff_id=handoff.id)
    assert inp.total_steps == 20
    assert [s.position for s in inp.steps] == list(range(1, 16))
    assert inp.omitted_steps == 5
    assert all(len(s.tried) <= assessments.STEP_TEXT_MAX for s in inp.steps)
    assert inp.steps[0].tried.startswith("try 1 ") and inp.steps[0].tried.endswith("…")
    assert len(inp.escalation_reason) == assessments.REASON_MAX
    assert inp.engineer_name == "Alex Kim"

    prompt = build_prompt(inp)
    assert len(prompt) <= assessments.PROMPT_MAX
    assert "(5 later steps not shown)" in prompt
    assert "try 16" not in prompt and "15. try 15" in prompt


def test_input_carries_the_latest_earlier_notes(world, engine):
    alex = world.actor("alex")
    sid = world.new_session()
    create_handoff(db=world.db, actor=alex, session_id=sid, intent="park", notes="Waiting for the customer")
    handoff = create_handoff(db=world.db, actor=alex, session_id=sid, intent="escalate", notes="Still broken")
    parked = park(world)
    world.db.expire_all()  # read back what was committed
    inp = load_assessment_input(db=world.db, handoff_id=handoff.id)
    assert inp.latest_notes == "Waiting for the customer"
    assert inp.escalation_reason == "Still broken"
    with pytest.raises(InvalidInput):
        load_assessment_input(db=world.db, handoff_id=parked)
    with pytest.raises(NotFound):
        load_assessment_input(db=world.db, handoff_id=uuid.uuid4())
    assert "Earlier notes: Waiting for the customer" in build_prompt(inp)


# ---------------------------------------------------------------------------
# normalize(): pure, no database
# ---------------------------------------------------------------------------


def test_tool_schema_matches_the_assessment_model():
    schema = ASSESSMENT_TOOL["input_schema"]
    assert set(schema["properties"]) == set(Assessment.model_fields)
    assert set(schema["required"]) == set(Assessment.model_fields)


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        ({**FULL, "confidence": "HIGH "}, "confidence", "high"),
        ({**FULL, "confidence": 0.9}, "confidence", "medium"),
        ({**FULL, "confidence": None}, "confidence", "medium"),
        ({**FULL, "what_we_know": "- a\n- b\n\n"}, "what_we_know", ["a", "b"]),
        ({**FULL, "suggested_steps": "1. one\n2) two"}, "suggested_steps", ["one", "two"]),
        ({**FULL, "suggested_steps": '["one", "two"]'}, "suggested_steps", ["one", "two"]),
        ({**FULL, "suggested_steps": ["one", "", None, 3]}, "suggested_steps", ["one", "3"]),
        ({**FULL, "what_we_know": None}, "what_we_know", []),
        ({**FULL, "likely_cause": ["DNS", "TTL"]}, "likely_cause", "DNS; TTL"),
        ({**FULL, "summary_prose": "  "}, "summary_prose", FULL["likely_cause"]),
        ({"summary": "short", "next_steps": ["go"]}, "summary_prose", "short"),
        ("```\n" + '{"likely_cause": "x"}' + "\n```", "summary_prose", "x"),
        ('Sure! {"likely_cause": "y", "confidence": "low"} Hope that helps.', "confidence", "low"),
    ],
)
def test_normalize_tolerates_sloppy_answers(raw, field, expected):
    assert getattr(normalize(raw), field) == expected


@pytest.mark.parametrize(
    "raw",
    ['{"likely_cause": "x"', "not json at all", "```json\n{oops}\n```", "[1, 2]", {}, {"confidence": "high"}],
)
def test_normalize_rejects_what_is_not_an_assessment(raw):
    with pytest.raises(MalformedAssessment):
        normalize(raw)


def test_normalize_bounds_long_output():
    result = normalize({"summary_prose": "s" * 5000, "suggested_steps": ["t" * 900] * 50})
    assert len(result.summary_prose) == assessments.OUT_SUMMARY_MAX
    assert len(result.suggested_steps) == assessments.OUT_ITEMS_MAX
    assert all(len(s) == assessments.OUT_ITEM_MAX for s in result.suggested_steps)
