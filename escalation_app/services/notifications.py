"""Escalation notifications after commit: email to the team, Slack/Teams posts, retries.

The flow for one escalation (`notify_escalation`):
1. Load the committed handoff (none → nothing is sent: a rolled-back handoff has no
   row) and write one `queued` delivery record per email recipient and per webhook.
2. Send everything concurrently, each with its own timeout, outside any transaction.
3. Write each outcome onto its record (sent, or failed with the reason and the next
   retry time). `retry_due_deliveries` later re-sends failed records that are due.

Every entry point is best-effort: it logs and records problems and never raises into
the caller, and no database transaction is held open while talking to the network.
Database work runs in a worker thread so it never stalls the event loop that serves
the app's websockets.
"""

from __future__ import annotations

import asyncio
import html
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from escalation_app.domain import deliveries
from escalation_app.domain.actors import Actor
from escalation_app.domain.db import session_scope
from escalation_app.domain.errors import InvalidInput, NotFound
from escalation_app.domain.handoffs import eligible_recipients, parse_handoff_id
from escalation_app.domain.integrations import WebhookChannel, account_webhooks, get_integrations
from escalation_app.domain.models import (
    Account,
    DeliveryChannel,
    DeliveryRecord,
    DeliveryStatus,
    HandoffIntent,
    SessionHandoff,
    User,
)
from escalation_app.domain.validation import choice
from escalation_app.services import email, webhooks
from escalation_app.services.tasks import spawn
from escalation_app.settings import get_settings

logger = logging.getLogger(__name__)

# At most this many SMTP connections at once per dispatch; a large team must not look
# like a connection flood to the mail server.
SMTP_CONCURRENCY = 10
SWEEP_INTERVAL_SECONDS = 15.0
REASON_MAX_IN_CHAT = 300
WEBHOOK_GONE = "Webhook no longer configured"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Job:
    """One delivery to attempt: its record, channel and where it goes."""

    record_id: int
    channel: str
    # An email address, or a webhook URL (looked up now, never stored on the record).
    target: str
    # The record's recipient: "slack"/"teams" for a webhook, the address for an email.
    recipient: str
    payload: dict


@dataclass(frozen=True, slots=True)
class _Outcome:
    record_id: int
    error: str | None = None
    skipped: str | None = None


async def _in_thread(engine: Engine | None, work: Callable[[Session], T]) -> T:
    """Run `work` in a short database session on a worker thread."""

    def run() -> T:
        with session_scope(engine) as db:
            return work(db)

    return await asyncio.to_thread(run)


# --- The escalation message -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Escalation:
    handoff_id: str
    summary: str
    client: str
    priority: str
    reason: str
    escalator: str
    target_id: int | None
    target_name: str | None
    account_name: str
    link: str


def _describe(db: Session, handoff: SessionHandoff) -> _Escalation:
    def name(user_id: int | None) -> str | None:
        user = db.get(User, user_id) if user_id else None
        return user.display_name if user else None

    account = db.get(Account, handoff.account_id)
    snapshot = handoff.snapshot or {}
    return _Escalation(
        handoff_id=str(handoff.id),
        summary=" ".join(str(snapshot.get("problem_summary") or "Support session").split()),
        client=snapshot.get("client_name") or "Not specified",
        priority=str(handoff.priority).capitalize(),
        reason=handoff.engineer_notes.strip() or "No reason provided.",
        escalator=name(handoff.handed_off_by_id) or "A teammate",
        target_id=handoff.target_user_id,
        target_name=name(handoff.target_user_id),
        account_name=account.name if account else "your team",
        link=f"{get_settings().frontend_url}/handoffs/{handoff.id}",
    )


def _email_for(esc: _Escalation, recipient: User) -> dict:
    """Subject, plain text and HTML for one recipient (stored on the delivery record)."""
    targeted_here = esc.target_id is not None and recipient.id == esc.target_id
    subject = f"{'Escalated to you' if targeted_here else 'New escalation'}: {esc.summary}"
    if targeted_here:
        lead = f"{esc.escalator} escalated a session to you."
    elif esc.target_name:
        lead = f"{esc.escalator} escalated a session to {esc.target_name}."
    else:
        lead = f"{esc.escalator} escalated a session to the team."
    facts = [
        ("Problem", esc.summary),
        ("Client", esc.client),
        ("Priority", esc.priority),
        ("Escalated by", esc.escalator),
        ("Reason", esc.reason),
    ]
    footer = f"You get this because you take escalations for {esc.account_name} in Escalation Desk."
    text = "\n".join(
        [lead, "", *(f"{k}: {v}" for k, v in facts), "", f"Open the handoff: {esc.link}", "", "-- ", footer]
    )
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" valign="top" style="padding:2px 12px 2px 0">{e(k)}</th>'
        f'<td style="white-space:pre-wrap">{e(v)}</td></tr>'
        for k, v in facts
    )
    body_html = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>{e(lead)}</p><table>{rows}</table>"
        f'<p><a href="{e(esc.link, quote=True)}">Open the handoff</a></p>'
        f'<p style="color:#666;font-size:12px">{e(footer)}</p></body></html>'
    )
    return {
        "to": recipient.email,
        "to_name": recipient.display_name,
        "user_id": recipient.id,
        "subject": subject,
        "text": text,
        "html": body_html,
    }


def _chat_for(esc: _Escalation) -> webhooks.ChatMessage:
    title = f"Escalated to {esc.target_name}" if esc.target_name else "New escalation"
    reason = esc.reason if len(esc.reason) <= REASON_MAX_IN_CHAT else esc.reason[:REASON_MAX_IN_CHAT] + "…"
    return webhooks.ChatMessage(
        title=f"{title}: {esc.summary}",
        facts=[
            ("Priority", esc.priority),
            ("Client", esc.client),
            ("Escalated by", esc.escalator),
            ("Reason", reason),
        ],
        link=esc.link,
    )


# --- Sending and recording ---------------------------------------------------------


def _job(record: DeliveryRecord, target: str) -> _Job:
    assert record.id is not None
    return _Job(record.id, record.channel, target, record.recipient, dict(record.payload))


async def _send_one(job: _Job, smtp: email.SmtpConfig | None, gate: asyncio.Semaphore) -> _Outcome:
    try:
        if job.channel == DeliveryChannel.EMAIL:
            if smtp is None:
                return _Outcome(job.record_id, skipped=email.NOT_CONFIGURED)
            message = email.build_message(
                sender=smtp.sender,
                to_address=job.target,
                to_name=job.payload.get("to_name", ""),
                subject=job.payload["subject"],
                text=job.payload["text"],
                html=job.payload["html"],
            )
            async with gate:
                try:
                    await email.send_message(smtp, message)
                except Exception as exc:
                    return _Outcome(job.record_id, error=email.describe_smtp_error(exc, timeout=smtp.timeout))
            return _Outcome(job.record_id)
        channel = WebhookChannel(job.recipient)
        body = webhooks.render(channel, webhooks.ChatMessage.from_payload(job.payload))
        await webhooks.post(job.target, body)
        return _Outcome(job.record_id)
    except webhooks.WebhookError as exc:
        return _Outcome(job.record_id, error=str(exc))
    except Exception as exc:
        # A malformed stored payload or address must fail only its own record.
        logger.exception("delivery %s could not be attempted", job.record_id)
        return _Outcome(job.record_id, error=f"{type(exc).__name__}: {exc}")


def _record_outcomes(db: Session, outcomes: list[_Outcome]) -> None:
    for outcome in outcomes:
        if outcome.skipped:
            deliveries.mark_skipped(db, outcome.record_id, outcome.skipped)
        elif outcome.error:
            deliveries.mark_failed(db, outcome.record_id, outcome.error)
        else:
            deliveries.mark_sent(db, outcome.record_id)
    db.commit()


async def _attempt(jobs: list[_Job], engine: Engine | None) -> list[_Outcome]:
    """Send `jobs` concurrently (one failure never blocks another) and record outcomes."""
    smtp = email.SmtpConfig.from_settings(get_settings())
    gate = asyncio.Semaphore(SMTP_CONCURRENCY)
    outcomes = list(await asyncio.gather(*(_send_one(job, smtp, gate) for job in jobs)))
    for outcome in outcomes:
        if outcome.error:
            logger.warning("delivery %s failed: %s", outcome.record_id, outcome.error)
    await _in_thread(engine, lambda db: _record_outcomes(db, outcomes))
    return outcomes


# --- Entry points ------------------------------------------------------------------


def _prepare_escalation(db: Session, handoff_id: uuid.UUID) -> list[_Job]:
    """Write the delivery records of an escalation; the jobs to attempt now."""
    # Locking the handoff row makes a duplicate dispatch wait and then see our records
    # (SQLite's BEGIN IMMEDIATE serialises the same way).
    handoff = db.get(SessionHandoff, handoff_id, with_for_update=True)
    if handoff is None or handoff.intent != HandoffIntent.ESCALATE:
        return []
    if deliveries.has_deliveries(db, handoff_id=handoff.id):
        return []
    esc = _describe(db, handoff)
    smtp_configured = email.SmtpConfig.from_settings(get_settings()) is not None
    pending: list[tuple[DeliveryRecord, str]] = []
    for user in eligible_recipients(
        db, account_id=handoff.account_id, exclude_user_id=handoff.handed_off_by_id
    ):
        record = deliveries.add_delivery(
            db,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            channel=DeliveryChannel.EMAIL,
            recipient=user.email,
            payload=_email_for(esc, user),
            status=DeliveryStatus.QUEUED if smtp_configured else DeliveryStatus.SKIPPED,
            last_error=None if smtp_configured else email.NOT_CONFIGURED,
        )
        if smtp_configured:
            pending.append((record, user.email))
    chat = _chat_for(esc).to_payload()
    for channel, url in account_webhooks(db=db, account_id=handoff.account_id).items():
        record = deliveries.add_delivery(
            db,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            channel=DeliveryChannel.WEBHOOK,
            recipient=channel.value,
            payload=chat,
        )
        pending.append((record, url))
    db.commit()
    return [_job(record, target) for record, target in pending]


async def notify_escalation(handoff_id: str | uuid.UUID, *, engine: Engine | None = None) -> None:
    """Email the team and post to Slack/Teams about a committed escalation. Never raises.

    Call only after the handoff's transaction committed. Parks, unknown ids (including
    a handoff whose transaction rolled back) and already-dispatched handoffs send
    nothing. Every email recipient and webhook gets a delivery record.
    """
    try:
        wanted = parse_handoff_id(handoff_id)
        jobs = await _in_thread(engine, lambda db: _prepare_escalation(db, wanted))
        if jobs:
            await _attempt(jobs, engine)
    except NotFound:
        logger.warning("notify_escalation: malformed handoff id %r", handoff_id)
    except Exception:
        logger.exception("notify_escalation failed for handoff %s", handoff_id)


def schedule_escalation_notifications(
    handoff_id: str | uuid.UUID, *, engine: Engine | None = None
) -> asyncio.Task:
    """Start `notify_escalation` in the background and return at once (needs a running loop)."""
    return spawn(notify_escalation(handoff_id, engine=engine), name=f"notify-escalation-{handoff_id}")


def _claim_due(db: Session) -> list[_Job]:
    """Claim the due failed records (stale `queued` ones first become due failures)."""
    if deliveries.fail_stale_queued(db):
        db.commit()
    jobs = []
    urls: dict[int, dict[WebhookChannel, str]] = {}
    for record in deliveries.due_for_retry(db):
        if not deliveries.claim_for_retry(db, record):
            continue  # another worker's sweep took it
        if record.channel == DeliveryChannel.EMAIL:
            jobs.append(_job(record, record.payload.get("to") or record.recipient))
            continue
        if record.account_id not in urls:
            urls[record.account_id] = account_webhooks(db=db, account_id=record.account_id)
        url = urls[record.account_id].get(record.recipient)
        if url is None:
            deliveries.mark_skipped(db, record.id, WEBHOOK_GONE)
            db.commit()
        else:
            jobs.append(_job(record, url))
    return jobs


async def retry_due_deliveries(*, engine: Engine | None = None) -> int:
    """Re-send failed email and webhook deliveries that are due; returns how many. Never raises.

    A record gets at most `deliveries.MAX_ATTEMPTS` attempts, spaced by
    `deliveries.RETRY_BACKOFF`. Safe to run on several workers at once: each record
    is claimed by exactly one of them.
    """
    try:
        jobs = await _in_thread(engine, _claim_due)
        if jobs:
            await _attempt(jobs, engine)
        return len(jobs)
    except Exception:
        logger.exception("delivery retry sweep failed")
        return 0


async def run_delivery_sweeper(
    *, interval_seconds: float = SWEEP_INTERVAL_SECONDS, engine: Engine | None = None
) -> None:
    """Run `retry_due_deliveries` forever, every `interval_seconds` (an app lifespan task)."""
    while True:
        await retry_due_deliveries(engine=engine)
        await asyncio.sleep(interval_seconds)


def _prepare_test(db: Session, actor: Actor, channel: WebhookChannel) -> _Job:
    url = get_integrations(db=db, actor=actor).url_for(channel)  # owners and admins only
    if not url:
        raise InvalidInput(f"Save a {channel.label} webhook URL first.")
    message = webhooks.ChatMessage(
        title="Escalation Desk test message",
        facts=[("Sent by", actor.display_name)],
        link=get_settings().frontend_url,
        link_text="Open Escalation Desk",
    )
    record = deliveries.add_delivery(
        db,
        account_id=actor.account_id,
        handoff_id=None,
        channel=DeliveryChannel.WEBHOOK,
        recipient=channel.value,
        payload=message.to_payload(),
        kind=deliveries.KIND_TEST,
    )
    db.commit()
    return _job(record, url)


async def send_test_webhook(*, actor: Actor, channel: str, engine: Engine | None = None) -> str:
    """Post a test message to the account's Slack or Teams webhook ("Send test").

    Raises PermissionDenied (not an owner/admin) or InvalidInput (unknown channel, no
    URL saved) before sending; otherwise returns a message for the admin saying
    whether the service accepted the post. Test posts are recorded, never retried.
    """
    wanted = choice(channel, WebhookChannel, "Channel")
    job = await _in_thread(engine, lambda db: _prepare_test(db, actor, wanted))
    outcome = _Outcome(job.record_id)
    try:
        await webhooks.post(
            job.target, webhooks.render(wanted, webhooks.ChatMessage.from_payload(job.payload))
        )
    except webhooks.WebhookError as exc:
        outcome = _Outcome(job.record_id, error=str(exc))

    def record(db: Session) -> None:
        if outcome.error:
            deliveries.mark_failed(db, job.record_id, outcome.error, retry=False)
        else:
            deliveries.mark_sent(db, job.record_id)
        db.commit()

    try:
        await _in_thread(engine, record)
    except Exception:
        logger.exception("could not record test webhook delivery %s", job.record_id)
    if outcome.error:
        return f"{wanted.label} did not accept the test message: {outcome.error}"
    return f"Test message sent to {wanted.label}."
