"""The AI handoff assessment: the one module that talks to Anthropic.

After an escalation commits, `schedule_assessment` starts `run_assessment` as an
app-owned background task, so the click never waits for the model. The task reads
the session (in a worker thread), asks Claude through the official SDK for a
structured assessment, stores it (or the reason it failed) and then tells the caller
through `on_ready` so open handoff screens can update.

Nothing here raises: every failure ends as `ai_status = failed` with a short reason a
senior can read, and is logged. Without `ANTHROPIC_API_KEY` the handoff gets a
deterministic offline summary instead (that is not a failure).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import anthropic
from sqlalchemy import Engine
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from escalation_app.domain import assessments
from escalation_app.domain.assessments import Assessment, AssessmentInput, MalformedAssessment
from escalation_app.domain.db import session_scope
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.services.tasks import spawn
from escalation_app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

OnReady = Callable[[uuid.UUID], Awaitable[None]]

TOOL_NAME = "record_assessment"
MAX_TOKENS = 1500
SWEEP_CONCURRENCY = 4

SYSTEM_PROMPT = (
    "You are a senior engineer at a managed service provider (MSP) helping a colleague "
    "who escalated a support session. Be concrete and practical; do not invent facts "
    "that are not in the session. Answer only by calling the record_assessment tool."
)

ASSESSMENT_TOOL = {
    "name": TOOL_NAME,
    "description": "Record the diagnostic assessment of the escalated support session.",
    "input_schema": {
        "type": "object",
        "properties": {
            "summary_prose": {
                "type": "string",
                "description": "2-3 plain sentences summarising the problem and state, fit for PSA ticket notes.",
            },
            "what_we_know": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Facts established so far, one per item.",
            },
            "likely_cause": {
                "type": "string",
                "description": "The most likely cause, in one or two sentences.",
            },
            "suggested_steps": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Concrete next steps, most promising first, not repeating what was tried.",
            },
            "confidence": {
                "type": "string",
                "enum": list(assessments.CONFIDENCES),
                "description": "Confidence in the likely cause.",
            },
        },
        "required": ["summary_prose", "what_we_know", "likely_cause", "suggested_steps", "confidence"],
    },
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient API errors are retried (all inside the overall timeout)."""

    attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 4.0


# Module-level so tests can shorten the waits.
RETRY_POLICY = RetryPolicy()


class AssessmentFailed(Exception):
    """The assessment could not be produced; `reason` is fit for the screen."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _is_transient(error: BaseException) -> bool:
    # 429, 5xx (529 overloaded is an InternalServerError) and network trouble are
    # worth another try; any other 4xx will fail the same way again.
    if isinstance(error, anthropic.APIConnectionError):
        return True
    if isinstance(error, anthropic.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return False


def _api_message(error: anthropic.APIStatusError) -> str:
    message = error.api_message if isinstance(error.api_message, str) else None
    return assessments.truncate(message or error.message, 200)


def failure_reason(error: BaseException, *, attempts: int = 1, timeout: float | None = None) -> str:
    """A short, human reason for an assessment failure (shown after "AI assessment unavailable:")."""
    tries = f"; tried {attempts} times" if attempts > 1 else ""
    if isinstance(error, AssessmentFailed):
        return error.reason
    if isinstance(error, TimeoutError | anthropic.APITimeoutError):
        return f"timed out after {timeout:g}s" if timeout else "timed out"
    if isinstance(error, anthropic.APIConnectionError):
        return f"could not reach the AI service{tries}"
    if isinstance(error, anthropic.APIStatusError):
        if error.status_code == 529:
            return f"the AI service is overloaded (529){tries}"
        return f"Anthropic API error {error.status_code}: {_api_message(error)}{tries}"
    if isinstance(error, MalformedAssessment):
        return f"malformed response: {error}"
    return f"unexpected error ({type(error).__name__})"


def _answer_of(message: anthropic.types.Message) -> dict | str:
    """The tool input if the model called our tool, else its text (plain JSON is accepted)."""
    texts = []
    for block in message.content:
        if block.type == "tool_use" and block.name == TOOL_NAME:
            return block.input if isinstance(block.input, dict) else str(block.input)
        if block.type == "text":
            texts.append(block.text)
    if texts:
        return "\n".join(texts)
    raise MalformedAssessment(f"no assessment in the answer (stop reason {message.stop_reason})")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every call: building one reads the CA bundle, 20-80 ms of CPU.

    A fresh SDK client per call built its own, on the event loop, right when the
    escalation's live push and the engineer's answer go out.
    """
    return ssl.create_default_context()


async def ask_claude(inp: AssessmentInput, settings: Settings) -> tuple[Assessment, str]:
    """Ask Claude for the assessment, retrying transient errors; returns it and the model id.

    Raises AssessmentFailed with a screen-ready reason. The caller bounds the total time.
    """
    budget = settings.escalation_ai_assessment_timeout_seconds
    policy = RETRY_POLICY
    retrying = AsyncRetrying(
        retry=retry_if_exception(_is_transient),
        wait=wait_exponential_jitter(
            multiplier=policy.initial_wait, jitter=policy.initial_wait, max=policy.max_wait
        ),
        # Give up early rather than sleep past the budget, so the reason names the error.
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(budget),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )
    tls = await asyncio.to_thread(_tls_context)
    async with anthropic.AsyncAnthropic(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url or None,
        # tenacity does the retrying, inside our own time budget.
        max_retries=0,
        timeout=budget,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=tls),
    ) as client:
        try:
            async for attempt in retrying:
                with attempt:
                    message = await client.messages.create(
                        model=settings.escalation_ai_model,
                        max_tokens=MAX_TOKENS,
                        system=SYSTEM_PROMPT,
                        tools=[ASSESSMENT_TOOL],
                        tool_choice={"type": "tool", "name": TOOL_NAME},
                        messages=[{"role": "user", "content": assessments.build_prompt(inp)}],
                    )
        except anthropic.AnthropicError as error:
            number = retrying.statistics.get("attempt_number", 1)
            raise AssessmentFailed(failure_reason(error, attempts=number, timeout=budget)) from error
        except ValueError as error:
            # The SDK hands on the JSON decoder's error for a 200 whose body is not JSON.
            raise AssessmentFailed("malformed response: the API answer is not valid JSON") from error
    try:
        if not isinstance(message, anthropic.types.Message):
            raise MalformedAssessment("the API answer is not a message")
        assessment = assessments.normalize(_answer_of(message))
    except MalformedAssessment as error:
        raise AssessmentFailed(failure_reason(error)) from error
    return assessment, message.model or settings.escalation_ai_model


def _load(handoff_id: uuid.UUID, engine: Engine | None) -> AssessmentInput | None:
    with session_scope(engine) as db:
        return assessments.load_pending_input(db=db, handoff_id=handoff_id)


def _store(
    handoff_id: uuid.UUID, engine: Engine | None, assessment: Assessment, model: str, offline: bool
) -> bool:
    with session_scope(engine) as db:
        return assessments.store_assessment(
            db=db, handoff_id=handoff_id, assessment=assessment, model=model, offline=offline
        )


def _fail(handoff_id: uuid.UUID, engine: Engine | None, reason: str) -> bool:
    with session_scope(engine) as db:
        return assessments.mark_failed(db=db, handoff_id=handoff_id, reason=reason)


async def _assess_and_store(handoff_id: uuid.UUID, engine: Engine | None) -> bool:
    """Produce and store the assessment; True when the row changed (ready or failed)."""
    inp = await asyncio.to_thread(_load, handoff_id, engine)
    if inp is None:
        logger.info("handoff %s needs no assessment (gone, parked or already done)", handoff_id)
        return False

    settings = get_settings()
    if not settings.anthropic_api_key:
        summary = assessments.offline_summary(inp)
        return await asyncio.to_thread(_store, handoff_id, engine, summary, assessments.OFFLINE_MODEL, True)

    budget = settings.escalation_ai_assessment_timeout_seconds
    try:
        async with asyncio.timeout(budget):
            assessment, model = await ask_claude(inp, settings)
    except TimeoutError:
        reason = failure_reason(TimeoutError(), timeout=budget)
    except AssessmentFailed as error:
        reason = error.reason
    except Exception as error:
        logger.exception("AI assessment of handoff %s failed unexpectedly", handoff_id)
        reason = failure_reason(error)
    else:
        return await asyncio.to_thread(_store, handoff_id, engine, assessment, model, False)

    logger.warning("AI assessment of handoff %s failed: %s", handoff_id, reason)
    return await asyncio.to_thread(_fail, handoff_id, engine, reason)


async def run_assessment(
    handoff_id: str | uuid.UUID, *, on_ready: OnReady | None = None, engine: Engine | None = None
) -> None:
    """Assess one escalation and store the outcome. Never raises (except cancellation).

    `on_ready(handoff_id)` is awaited after the outcome (ready or failed) has been
    committed, and only if this run changed the row; its errors are logged. If the
    task is cancelled (server shutdown) the row stays pending for the startup sweep.
    `engine` overrides the configured database (tests).
    """
    try:
        hid = parse_handoff_id(handoff_id)
        changed = await _assess_and_store(hid, engine)
    except Exception:
        # Usually the database: the row stays pending and the next startup sweep retries.
        logger.exception("AI assessment of handoff %s could not be stored", handoff_id)
        return
    if changed and on_ready is not None:
        try:
            await on_ready(hid)
        except Exception:
            logger.exception("on_ready callback failed for handoff %s", hid)


def schedule_assessment(
    handoff_id: str | uuid.UUID, *, on_ready: OnReady | None = None, engine: Engine | None = None
) -> asyncio.Task:
    """Start `run_assessment` in the background and return at once (call after commit)."""
    return spawn(
        run_assessment(handoff_id, on_ready=on_ready, engine=engine),
        name=f"ai-assessment-{handoff_id}",
    )


def _stale(older_than: timedelta, engine: Engine | None) -> list[uuid.UUID]:
    with session_scope(engine) as db:
        return assessments.list_stale_pending(db=db, older_than=older_than)


async def sweep_stale_pending(
    *,
    older_than: timedelta = timedelta(seconds=60),
    on_ready: OnReady | None = None,
    engine: Engine | None = None,
) -> int:
    """Finish assessments left pending by a server that stopped; returns how many it ran.

    Run once at startup. `older_than` keeps it off assessments that a live worker has
    only just started; if one is still picked up twice, the first result to commit
    wins and the other run changes nothing.
    """
    try:
        stale = await asyncio.to_thread(_stale, older_than, engine)
    except Exception:
        logger.exception("could not list pending assessments")
        return 0
    if stale:
        logger.info("completing %d assessment(s) left pending", len(stale))
    gate = asyncio.Semaphore(SWEEP_CONCURRENCY)

    async def one(hid: uuid.UUID) -> None:
        async with gate:
            await run_assessment(hid, on_ready=on_ready, engine=engine)

    await asyncio.gather(*(one(hid) for hid in stale))
    return len(stale)
