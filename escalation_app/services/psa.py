"""PSA writeback: the one module that talks to ConnectWise PSA and HaloPSA.

Each note is an outbox job (`domain.psa.delivery`): the escalation note with the
handoff documentation and the AI summary (it waits for the assessment, which releases
it), and "Picked up by {name}" after a claim. `run_psa_job` posts one; the outbox
records the outcome. 5xx, 429, timeouts and network errors are retried on the
outbox's backoff; a missing ticket (404), rejected credentials (401), a refusal (403)
and other 4xx answers fail at once and are not retried.

Database work runs in worker threads; no transaction is open while a PSA is being
called. Secrets are never logged or written to a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from escalation_app.domain import outbox
from escalation_app.domain import psa as psa_domain
from escalation_app.domain.actors import Actor
from escalation_app.domain.db import session_scope
from escalation_app.services.psa_clients import PsaError, check_connection, post_note
from escalation_app.services.threads import in_job_thread

logger = logging.getLogger(__name__)

# The handoff screen's line lives with the records it reads; re-exported for callers here.
psa_status_line = psa_domain.psa_status_line

T = TypeVar("T")


# --- The outbox job ------------------------------------------------------------------


async def _in_thread(engine: Engine | None, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with session_scope(engine) as db:
            return work(db)

    return await in_job_thread(run)


async def run_psa_job(job: outbox.JobView, engine: Engine | None = None) -> str:
    """Post one note (escalation or pick-up) to its PSA ticket.

    Raises `outbox.JobRefused` for what retrying cannot fix (ticket not found,
    credentials rejected), any other error to be retried on the outbox's backoff.
    """
    note = await _in_thread(engine, lambda db: psa_domain.prepare_note(db, job))
    try:
        # The marker makes a retry find a note an earlier attempt posted (the PSA
        # answered after our timeout); a first attempt has nothing to look for.
        await post_note(
            note.credentials, note.ticket, note.text, marker=f"job-{job.id}", look_first=job.attempts > 1
        )
    except PsaError as exc:
        if not exc.retry:
            raise outbox.JobRefused(exc.message) from exc
        raise RuntimeError(exc.message) from exc
    return f"ticket {note.ticket}"


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
