"""The AI handoff assessment: the one module that talks to Anthropic.

Every escalation commits with an `assessment` outbox job; the worker runs it through
`run_assessment_job`, so the click never waits for the model. The job reads the
session (in a worker thread), asks Claude through the official SDK for a structured
assessment, and stores it (or the reason it failed); storing adds the live push that
updates open handoff screens.

A model failure ends as `ai_status = failed` with a short reason a senior can read,
and is logged; only a failure to store raises (the outbox retries the job). Without `ANTHROPIC_API_KEY` the handoff gets a
deterministic offline summary instead (that is not a failure).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import uuid
from dataclasses import dataclass

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

from escalation_app.domain import assessments, outbox
from escalation_app.domain.assessments import Assessment, AssessmentInput, MalformedAssessment
from escalation_app.domain.db import session_scope
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.services.threads import in_job_thread
from escalation_app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

TOOL_NAME = "record_assessment"
MAX_TOKENS = 1500

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
    tls = await in_job_thread(_tls_context)
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
    inp = await in_job_thread(_load, handoff_id, engine)
    if inp is None:
        logger.info("handoff %s needs no assessment (gone, parked or already done)", handoff_id)
        return False

    settings = get_settings()
    if not settings.anthropic_api_key:
        summary = assessments.offline_summary(inp)
        return await in_job_thread(_store, handoff_id, engine, summary, assessments.OFFLINE_MODEL, True)

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
        return await in_job_thread(_store, handoff_id, engine, assessment, model, False)

    logger.warning("AI assessment of handoff %s failed: %s", handoff_id, reason)
    return await in_job_thread(_fail, handoff_id, engine, reason)


async def run_assessment_job(job: outbox.JobView, engine: Engine | None = None) -> str:
    """The outbox job of one escalation's assessment: assess it and store the outcome.

    A failed assessment is stored as such ("AI assessment unavailable: …") and the job
    is done; only a failure to store (the database) raises, so the job is retried.
    Storing also adds the "assessed" live push and releases the PSA note
    (`domain.effects.assessment_finished`).
    """
    if job.handoff_id is None:
        raise outbox.JobSkipped("No handoff")
    changed = await _assess_and_store(job.handoff_id, engine)
    return "stored" if changed else "nothing to do"


async def run_assessment(handoff_id: str | uuid.UUID, *, engine: Engine | None = None) -> bool:
    """Assess one escalation now and store the outcome; True when the row changed."""
    return await _assess_and_store(parse_handoff_id(handoff_id), engine)
