"""PSA writeback: the one module that talks to ConnectWise PSA and HaloPSA.

After an escalation commits, `push_escalation_note` writes an internal note with the
handoff documentation into the session's PSA ticket; after a claim commits,
`push_claim_note` adds "Picked up by {name}". The escalation note carries the AI
summary: while the assessment is still pending the note waits, and is posted by
`on_assessment_ready` (the assessment's on_ready hook) or, if that never comes, by the
sweep once the AI time budget plus a margin has passed. Either way there is one note
per handoff (`domain.psa` takes each note with a conditional UPDATE).

Each note is a delivery record (channel "psa"). Failures are recorded with a reason:
5xx, 429, timeouts and network errors are retried with backoff by `retry_due_psa`
(run by `run_psa_sweeper`); a missing ticket (404), rejected credentials (401), a
refusal (403) and other 4xx answers fail at once and are not retried.

Nothing here raises into the caller (except `test_connection`, whose DomainErrors the
admin page shows). Database work runs in worker threads; no transaction is open
while a PSA is being called. Secrets are never logged or written to a record.
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from escalation_app.domain import psa as psa_domain
from escalation_app.domain.actors import Actor
from escalation_app.domain.db import session_scope
from escalation_app.domain.errors import NotFound
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.domain.psa import KIND_PSA_CLAIM, KIND_PSA_ESCALATION, PsaCredentials, PsaJob, PsaType
from escalation_app.services import outbound
from escalation_app.services.tasks import spawn
from escalation_app.settings import get_settings

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 15.0
# Handoffs whose notes are posted at once by one sweep (each handoff's notes in order).
SEND_CONCURRENCY = 8
CW_API_PATH = "/v4_6_release/apis/3.0"
_SNIPPET = 200
_RETRY_STATUSES = {408, 425, 429}
_NOT_FOUND_WORDS = ("not found", "does not exist", "doesn't exist", "not exist", "invalid ticket")

# The handoff screen's line lives with the records it reads; re-exported for callers here.
psa_status_line = psa_domain.psa_status_line

T = TypeVar("T")


class PsaError(Exception):
    """A PSA call that did not work; the message is fit for the record and the screen."""

    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.message = message
        self.retry = retry


# --- Request shapes (one function per vendor format, easy to adjust) -----------------


def connectwise_headers(credentials: PsaCredentials) -> dict[str, str]:
    """ConnectWise REST auth: Basic `companyId+publicKey:privateKey` and the `clientId` header."""
    user = f"{credentials.company_id}+{credentials.public_key}:{credentials.secret}"
    return {
        "Authorization": "Basic " + base64.b64encode(user.encode()).decode("ascii"),
        "clientId": credentials.client_id,
        "Accept": "application/json",
    }


def connectwise_note_body(text: str) -> dict:
    """A ConnectWise service ticket note, internal analysis only (not shown to the contact)."""
    return {
        "text": text,
        "internalAnalysisFlag": True,
        "detailDescriptionFlag": False,
        "resolutionFlag": False,
    }


def halopsa_token_form(credentials: PsaCredentials) -> dict[str, str]:
    """HaloPSA's OAuth client-credentials token request (form-encoded)."""
    return {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.secret,
        "scope": "all",
    }


def halopsa_action_body(ticket: int, text: str) -> list[dict]:
    """A HaloPSA private note action on a ticket (POST /api/Actions takes a list).

    Halo renders `note` as HTML: the text is escaped (it is the engineer's) and its
    line breaks kept; `hiddenfromuser` and no email keep it away from the end user.
    """
    note = html.escape(text).replace("\n", "<br>")
    return [
        {
            "ticket_id": ticket,
            "note": note,
            "outcome": "Private Note",
            "hiddenfromuser": True,
            "sendemail": False,
        }
    ]


# --- HTTP -----------------------------------------------------------------------------


def _timeout() -> float:
    return get_settings().psa_timeout_seconds


def _snippet(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:
        return ""
    return " ".join(text[:_SNIPPET].split())


def _failure(response: httpx.Response, *, ticket: int | None) -> PsaError:
    """The error for a non-2xx answer (`ticket`: the ticket the request was about)."""
    code = response.status_code
    snippet = _snippet(response)
    detail = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    if 300 <= code < 400:
        return PsaError(f"PSA answered with a redirect (HTTP {code}); check the PSA URL", retry=False)
    if code == 401:
        return PsaError("PSA rejected the credentials (HTTP 401)", retry=False)
    if code == 403:
        return PsaError("PSA refused access (HTTP 403): check the API user's permissions", retry=False)
    # The API says "no such ticket" in JSON; an HTML 404 page means the URL is wrong.
    is_json = "json" in response.headers.get("content-type", "").lower()
    if ticket is not None and (
        (code == 404 and is_json)
        or (code in (400, 422) and any(w in snippet.lower() for w in _NOT_FOUND_WORDS))
    ):
        return PsaError(f"PSA ticket #{ticket} not found", retry=False)
    if code == 404:
        return PsaError("PSA answered HTTP 404: check the PSA URL", retry=False)
    if code in _RETRY_STATUSES or code >= 500:
        return PsaError(f"PSA unavailable ({detail})", retry=True)
    return PsaError(f"PSA refused the request ({detail})", retry=False)


def _check(response: httpx.Response, *, ticket: int | None = None) -> httpx.Response:
    if not 200 <= response.status_code < 300:
        raise _failure(response, ticket=ticket)
    return response


def _client(timeout: float) -> httpx.AsyncClient:
    # Every connection's address is checked (no internal addresses; see outbound.py).
    return outbound.client(timeout)


async def _halo_token(client: httpx.AsyncClient, credentials: PsaCredentials) -> str:
    response = await client.post(
        f"{credentials.url}/auth/token",
        params={"tenant": credentials.tenant} if credentials.tenant else None,
        data=halopsa_token_form(credentials),
        headers={"Accept": "application/json"},
    )
    if response.status_code in (400, 401) and "invalid_client" in response.text:
        raise PsaError("PSA rejected the credentials (invalid client id or secret)", retry=False)
    _check(response)
    try:
        token = response.json().get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise PsaError("HaloPSA answered the token request without an access token", retry=False)
    return token


async def _call(work, timeout: float):
    """Run one PSA exchange, turning network trouble into PsaError."""
    try:
        # httpx bounds each phase; this bounds the whole exchange (token + request).
        async with asyncio.timeout(timeout * 3):
            return await work()
    except PsaError:
        raise
    except (httpx.TimeoutException, TimeoutError):
        raise PsaError(f"PSA did not answer within {timeout:g} s", retry=True) from None
    except httpx.HTTPError as exc:
        raise PsaError(f"Could not reach the PSA ({type(exc).__name__})", retry=True) from None


async def post_note(credentials: PsaCredentials, ticket: int, text: str) -> None:
    """Post an internal note to `ticket`; raises PsaError (with `retry`) on failure."""
    timeout = _timeout()

    async def connectwise() -> None:
        async with _client(timeout) as client:
            response = await client.post(
                f"{credentials.url}{CW_API_PATH}/service/tickets/{ticket}/notes",
                headers=connectwise_headers(credentials),
                json=connectwise_note_body(text),
            )
            _check(response, ticket=ticket)

    async def halopsa() -> None:
        async with _client(timeout) as client:
            token = await _halo_token(client, credentials)
            response = await client.post(
                f"{credentials.url}/api/Actions",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                json=halopsa_action_body(ticket, text),
            )
            _check(response, ticket=ticket)

    await _call(connectwise if credentials.psa_type is PsaType.CONNECTWISE else halopsa, timeout)


async def check_connection(credentials: PsaCredentials) -> str:
    """Call a cheap read endpoint; the success message, or PsaError."""
    timeout = _timeout()

    async def connectwise() -> str:
        async with _client(timeout) as client:
            response = _check(
                await client.get(
                    f"{credentials.url}{CW_API_PATH}/system/info", headers=connectwise_headers(credentials)
                )
            )
        try:
            version = response.json().get("version")
        except (ValueError, AttributeError):
            version = None
        return "Connected to ConnectWise PSA" + (f" ({version})." if isinstance(version, str) else ".")

    async def halopsa() -> str:
        async with _client(timeout) as client:
            token = await _halo_token(client, credentials)
            _check(
                await client.get(
                    f"{credentials.url}/api/Tickets",
                    params={"count": 1},
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
            )
        return "Connected to HaloPSA."

    return await _call(connectwise if credentials.psa_type is PsaType.CONNECTWISE else halopsa, timeout)


# --- Posting and recording -----------------------------------------------------------


async def _in_thread(engine: Engine | None, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with session_scope(engine) as db:
            return work(db)

    return await asyncio.to_thread(run)


async def _post_and_record(job: PsaJob, engine: Engine | None) -> None:
    error, retry = None, False
    try:
        await post_note(job.credentials, job.ticket, job.text)
    except PsaError as exc:
        error, retry = exc.message, exc.retry
    except Exception as exc:
        logger.exception("PSA note %s could not be attempted", job.record_id)
        error, retry = f"Unexpected error ({type(exc).__name__})", True
    if error:
        logger.warning("PSA note %s (%s) failed: %s", job.record_id, job.kind, error)
    await _in_thread(
        engine,
        lambda db: psa_domain.record_outcome(db, job.record_id, error=error, retry=retry, text=job.text),
    )


async def _run(jobs: list[PsaJob], engine: Engine | None) -> None:
    """Post `jobs`: each handoff's notes in order (escalation first), handoffs at once.

    When an escalation note is done (whatever the outcome), the handoff's pick-up
    note that waited for it is released and posted next.
    """
    by_handoff: dict[uuid.UUID, list[PsaJob]] = defaultdict(list)
    for job in jobs:
        by_handoff[job.handoff_id].append(job)
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one_handoff(handoff_id: uuid.UUID, queue: list[PsaJob]) -> None:
        async with gate:
            while queue:
                job = queue.pop(0)
                try:
                    await _post_and_record(job, engine)
                    if job.kind == KIND_PSA_ESCALATION and not any(j.kind == KIND_PSA_CLAIM for j in queue):
                        queue += await _in_thread(
                            engine,
                            lambda db: psa_domain.take_waiting(db, handoff_id, kinds=(KIND_PSA_CLAIM,)),
                        )
                except Exception:
                    # The record stays "being posted"; the sweep retries it once stale.
                    logger.exception("PSA note %s could not be recorded", job.record_id)

    await asyncio.gather(*(one_handoff(h, q) for h, q in by_handoff.items()))


async def _start(name: str, handoff_id: str | uuid.UUID, engine: Engine | None, prepare) -> None:
    try:
        wanted = parse_handoff_id(handoff_id)
        jobs = await _in_thread(engine, lambda db: prepare(db, wanted))
        await _run(jobs, engine)
    except NotFound:
        logger.warning("%s: malformed handoff id %r", name, handoff_id)
    except Exception:
        logger.exception("%s failed for handoff %s", name, handoff_id)


async def push_escalation_note(handoff_id: str | uuid.UUID, *, engine: Engine | None = None) -> None:
    """Write the escalation's documentation into its PSA ticket. Never raises.

    Call after the handoff committed. Nothing happens for a park, an account without
    a PSA connection, a session without a ticket id, or a handoff already noted. If
    the AI assessment is still pending the note waits for `on_assessment_ready` (or
    the sweep after the AI budget + 30 s); otherwise it is posted now.
    """
    ai_wait = timedelta(seconds=get_settings().escalation_ai_assessment_timeout_seconds)
    await _start(
        "push_escalation_note",
        handoff_id,
        engine,
        lambda db, hid: psa_domain.start_escalation_note(db, hid, ai_wait=ai_wait),
    )


async def on_assessment_ready(handoff_id: str | uuid.UUID, *, engine: Engine | None = None) -> None:
    """The AI assessment of a handoff finished (ready or failed): post its waiting
    escalation note (and a pick-up note waiting behind it). Never raises; a no-op
    when nothing waits, so it is safe to call for every finished assessment."""
    await _start("on_assessment_ready", handoff_id, engine, psa_domain.take_waiting)


async def push_claim_note(
    handoff_id: str | uuid.UUID, claimer_name: str | None = None, *, engine: Engine | None = None
) -> None:
    """Post "Picked up by {claimer_name}" to the escalation's PSA ticket. Never raises.

    Call after a claim committed (only when it was newly claimed). Once per handoff;
    escalations only. Waits while the escalation note itself has not been posted.
    `claimer_name` defaults to the claiming user's display name.
    """
    await _start(
        "push_claim_note",
        handoff_id,
        engine,
        lambda db, hid: psa_domain.start_claim_note(db, hid, claimer_name),
    )


def schedule_escalation_note(handoff_id: str | uuid.UUID, *, engine: Engine | None = None) -> asyncio.Task:
    """Start `push_escalation_note` in the background and return at once (needs a running loop)."""
    return spawn(push_escalation_note(handoff_id, engine=engine), name=f"psa-escalation-{handoff_id}")


def schedule_claim_note(
    handoff_id: str | uuid.UUID, claimer_name: str | None = None, *, engine: Engine | None = None
) -> asyncio.Task:
    """Start `push_claim_note` in the background and return at once (needs a running loop)."""
    return spawn(push_claim_note(handoff_id, claimer_name, engine=engine), name=f"psa-claim-{handoff_id}")


async def retry_due_psa(*, engine: Engine | None = None) -> int:
    """Post every PSA note that is due; returns how many were taken. Never raises.

    Due: failed notes whose retry time has come (at most `deliveries.MAX_ATTEMPTS`
    attempts, spaced by `deliveries.RETRY_BACKOFF`), notes that waited long enough for
    the AI summary, and posts interrupted by a stopped process. Safe on several workers.
    """
    try:
        jobs = await _in_thread(engine, lambda db: psa_domain.take_due(db))
        await _run(jobs, engine)
        return len(jobs)
    except Exception:
        logger.exception("PSA retry sweep failed")
        return 0


async def run_psa_sweeper(
    *, interval_seconds: float = SWEEP_INTERVAL_SECONDS, engine: Engine | None = None
) -> None:
    """Run `retry_due_psa` forever, every `interval_seconds` (an app lifespan task)."""
    while True:
        await retry_due_psa(engine=engine)
        await asyncio.sleep(interval_seconds)


async def test_connection(*, actor: Actor, engine: Engine | None = None) -> str:
    """ "Test connection": call a cheap read endpoint of the saved PSA; a message for the admin.

    Raises PermissionDenied (not an owner/admin), InvalidInput (nothing saved) or
    PsaSecretUnreadable before calling out; otherwise returns "Connected to …" or
    "Could not connect to …: {reason}". Nothing is recorded.
    """
    credentials = await _in_thread(engine, lambda db: psa_domain.require_psa_credentials(db=db, actor=actor))
    try:
        return await check_connection(credentials)
    except PsaError as exc:
        return f"Could not connect to {credentials.psa_type.label}: {exc.message}"


# Not a pytest test, whatever its name (test modules import it).
test_connection.__test__ = False  # type: ignore[attr-defined]
