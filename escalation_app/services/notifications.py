"""Escalation notifications: the email to each teammate and the Slack/Teams posts.

Each email and each webhook post is an outbox job written with the escalation
(`domain.effects`); `services.worker` runs them through `run_email_job` and
`run_webhook_job`, which render the message from the committed handoff, send it, and
return or raise for the worker to record (sent; failed with the reason and retried on
the outbox's backoff; skipped). No database transaction is held open while talking to
the network. "Send test" posts at once and records the outcome as a finished job.
"""

from __future__ import annotations

import asyncio
import html
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import aiosmtplib
from sqlalchemy import Engine
from sqlmodel import Session

from escalation_app.domain import outbox
from escalation_app.domain.actors import Actor
from escalation_app.domain.case_events import root_cause_label
from escalation_app.domain.db import session_scope
from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.integrations import WebhookChannel, account_webhooks, get_integrations
from escalation_app.domain.models import Account, CaseEvent, SessionHandoff, User
from escalation_app.domain.validation import choice
from escalation_app.services import email, webhooks
from escalation_app.services.threads import in_job_thread
from escalation_app.settings import get_settings

logger = logging.getLogger(__name__)

# At most this many SMTP connections at once per process; a large team must not look
# like a connection flood to the mail server.
SMTP_CONCURRENCY = 10
REASON_MAX_IN_CHAT = 300
WEBHOOK_GONE = "Webhook no longer configured"
HANDOFF_GONE = "Handoff no longer exists"

T = TypeVar("T")
# One gate per event loop (the server has one; each test has its own).
_smtp_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _in_thread(engine: Engine | None, work: Callable[[Session], T]) -> T:
    """Run `work` in a short database session on a worker thread."""

    def run() -> T:
        with session_scope(engine) as db:
            return work(db)

    return await in_job_thread(run)


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


def _render(
    recipient: User,
    *,
    subject: str,
    lead: str,
    facts: list[tuple[str, str]],
    link: str,
    link_text: str,
    footer: str,
) -> dict:
    """One email (subject, plain text, HTML) in the desk's layout."""
    text = "\n".join(
        [lead, "", *(f"{k}: {v}" for k, v in facts), "", f"{link_text}: {link}", "", "-- ", footer]
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
        f'<p><a href="{e(link, quote=True)}">{e(link_text)}</a></p>'
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
    return _render(
        recipient,
        subject=subject,
        lead=lead,
        facts=facts,
        link=esc.link,
        link_text="Open the handoff",
        footer=footer,
    )


# --- After the pick-up: resolved, handed back, reassigned ----------------------------


def _case_event(db: Session, handoff: SessionHandoff, payload: dict) -> CaseEvent:
    event = db.get(CaseEvent, payload.get("event_id")) if payload.get("event_id") else None
    if event is None or event.account_id != handoff.account_id:
        raise outbox.JobSkipped("Case event no longer exists")
    return event


def _case_email(db: Session, handoff: SessionHandoff, recipient: User, payload: dict) -> dict:
    esc = _describe(db, handoff)
    event = _case_event(db, handoff, payload)
    actor = db.get(User, event.actor_id)
    who = actor.display_name if actor else "A teammate"
    base = get_settings().frontend_url
    footer = f"You get this because you work on this case in Escalation Desk ({esc.account_name})."
    message = payload.get("message")
    if message == "resolved":
        return _render(
            recipient,
            subject=f"Fixed: {esc.summary}",
            lead=f"{who} resolved the session you escalated.",
            facts=[
                ("Problem", esc.summary),
                ("Client", esc.client),
                ("What fixed it", event.note),
                ("Root cause", root_cause_label(event.root_cause)),
            ],
            link=f"{base}/sessions/{event.session_id}/history",
            link_text="See the session's history",
            footer=footer,
        )
    if message == "handed_back":
        return _render(
            recipient,
            subject=f"Handed back to you: {esc.summary}",
            lead=f"{who} handed your session back to you with guidance.",
            facts=[("Problem", esc.summary), ("Client", esc.client), ("Guidance", event.note)],
            link=f"{base}/sessions/{event.session_id}",
            link_text="Open your session",
            footer=footer,
        )
    if message == "reassigned":
        return _render(
            recipient,
            subject=f"Assigned to you: {esc.summary}",
            lead=f"{who} reassigned an escalation to you.",
            facts=[
                ("Problem", esc.summary),
                ("Client", esc.client),
                ("Priority", esc.priority),
                ("Escalated by", esc.escalator),
                ("Note", event.note or "None."),
            ],
            link=esc.link,
            link_text="Open the handoff",
            footer=footer,
        )
    raise outbox.JobRefused(f"Unknown email message {message!r}")


def _notice_email(db: Session, handoff: SessionHandoff, recipient: User, payload: dict) -> dict:
    """A message of the escalation clock (re-escalated, stalled, woke up): its title and lead
    were written with the job; the facts are read from the handoff now."""
    esc = _describe(db, handoff)
    title = str(payload.get("title") or f"Escalation Desk: {esc.summary}")
    link = str(payload.get("link") or f"/handoffs/{handoff.id}")
    return _render(
        recipient,
        subject=title,
        lead=str(payload.get("lead") or title),
        facts=[
            ("Problem", esc.summary),
            ("Client", esc.client),
            ("Priority", esc.priority),
            ("Handed off by", esc.escalator),
        ],
        link=f"{get_settings().frontend_url}{link}",
        link_text="Open it in Escalation Desk",
        footer=f"You get this from the escalation policy of {esc.account_name} in Escalation Desk.",
    )


# Which message an email job sends (its payload's "message"; escalation when absent).
EMAIL_RENDERERS = {
    "escalation": lambda db, handoff, user, payload: _email_for(_describe(db, handoff), user),
    "resolved": _case_email,
    "handed_back": _case_email,
    "reassigned": _case_email,
    "notice": _notice_email,
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


# --- Running the jobs ----------------------------------------------------------------


def _email_content(db: Session, job: outbox.JobView) -> dict:
    handoff = db.get(SessionHandoff, job.handoff_id) if job.handoff_id else None
    if handoff is None:
        raise outbox.JobSkipped(HANDOFF_GONE)
    user = db.get(User, job.payload.get("user_id"))
    if user is None or user.account_id != handoff.account_id:
        raise outbox.JobSkipped("Recipient no longer exists")
    renderer = EMAIL_RENDERERS.get(str(job.payload.get("message") or "escalation"))
    if renderer is None:
        raise outbox.JobRefused(f"Unknown email message {job.payload.get('message')!r}")
    return renderer(db, handoff, user, job.payload)


async def run_email_job(job: outbox.JobView, engine: Engine | None = None) -> str:
    """Send one email (the escalation, or a case message: resolved, handed back, reassigned).

    Skipped without SMTP; a refused recipient is not retried."""
    smtp = email.SmtpConfig.from_settings(get_settings())
    if smtp is None:
        raise outbox.JobSkipped(email.NOT_CONFIGURED)
    content = await _in_thread(engine, lambda db: _email_content(db, job))
    # Python's email package is slow (header parsing, MIME): build it off the event loop,
    # which serves the clicks and live pushes (a team of 50 is 50 of these per escalation).
    message = await in_job_thread(
        email.build_message,
        sender=smtp.sender,
        to_address=content["to"],
        to_name=content.get("to_name", ""),
        subject=content["subject"],
        text=content["text"],
        html=content["html"],
        message_key=f"escalation-desk.job-{job.id}",
    )
    gate = _smtp_gates.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(SMTP_CONCURRENCY))
    async with gate:
        try:
            await email.send_message(smtp, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise outbox.JobRefused(email.describe_smtp_error(exc)) from exc
        except Exception as exc:
            raise RuntimeError(email.describe_smtp_error(exc, timeout=smtp.timeout)) from exc
    return "accepted"


def _webhook_content(db: Session, job: outbox.JobView) -> tuple[WebhookChannel, str, webhooks.ChatMessage]:
    channel = WebhookChannel(job.payload.get("channel") or job.recipient)
    handoff = db.get(SessionHandoff, job.handoff_id) if job.handoff_id else None
    if handoff is None:
        raise outbox.JobSkipped(HANDOFF_GONE)
    # Looked up now, never stored on the job: the URL is a secret and may have changed.
    url = account_webhooks(db=db, account_id=handoff.account_id).get(channel)
    if url is None:
        raise outbox.JobSkipped(WEBHOOK_GONE)
    message = _chat_for(_describe(db, handoff))
    if job.payload.get("title"):
        # A re-escalation (`domain.clock`): "Unclaimed for 30 min: …".
        message = webhooks.ChatMessage(
            title=str(job.payload["title"])[:300], facts=message.facts, link=message.link
        )
    return channel, url, message


async def run_webhook_job(job: outbox.JobView, engine: Engine | None = None) -> str:
    """Post one escalation to the account's Slack or Teams webhook."""
    channel, url, message = await _in_thread(engine, lambda db: _webhook_content(db, job))
    try:
        await webhooks.post(url, webhooks.render(channel, message))
    except webhooks.WebhookError as exc:
        raise RuntimeError(str(exc)) from exc
    return "posted"


def _test_message(db: Session, actor: Actor, channel: WebhookChannel) -> str:
    url = get_integrations(db=db, actor=actor).url_for(channel)  # owners and admins only
    if not url:
        raise InvalidInput(f"Save a {channel.label} webhook URL first.")
    return url


async def send_test_webhook(*, actor: Actor, channel: str, engine: Engine | None = None) -> str:
    """Post a test message to the account's Slack or Teams webhook ("Send test").

    Raises PermissionDenied (not an owner/admin) or InvalidInput (unknown channel, no
    URL saved) before sending; otherwise returns a message for the admin saying
    whether the service accepted the post. Test posts are recorded, never retried.
    """
    wanted = choice(channel, WebhookChannel, "Channel")
    url = await _in_thread(engine, lambda db: _test_message(db, actor, wanted))
    message = webhooks.ChatMessage(
        title="Escalation Desk test message",
        facts=[("Sent by", actor.display_name)],
        link=get_settings().frontend_url,
        link_text="Open Escalation Desk",
    )
    error = None
    try:
        await webhooks.post(url, webhooks.render(wanted, message))
    except webhooks.WebhookError as exc:
        error = str(exc)

    def record(db: Session) -> None:
        outbox.record_finished(
            db,
            kind=outbox.JobKind.WEBHOOK,
            account_id=actor.account_id,
            recipient=wanted.value,
            payload={"channel": wanted.value, "test": True},
            error=error,
        )
        db.commit()

    try:
        await _in_thread(engine, record)
    except Exception:
        logger.exception("could not record the %s test post", wanted.value)
    if error:
        return f"{wanted.label} did not accept the test message: {error}"
    return f"Test message sent to {wanted.label}."
