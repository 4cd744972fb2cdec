"""The one place that sends mail: builds a message and hands it to SMTP (aiosmtplib).

Callers get an exception on failure and turn it into a delivery record with
`describe_smtp_error`; nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from escalation_app.settings import Settings

NOT_CONFIGURED = "SMTP not configured"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to send mail, from the SMTP_* settings."""

    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    starttls: bool
    # Each SMTP step (connect, greeting, login, MAIL, RCPT).
    timeout: float
    # The server's final answer after the message body: servers may take a while to
    # accept (RFC 5321 allows minutes), and giving up early sends the message twice.
    data_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The configured server, or None when SMTP_HOST is unset (email is skipped)."""
        host = (settings.smtp_host or "").strip()
        if not host:
            return None
        return cls(
            host=host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
            data_timeout=max(settings.smtp_data_timeout_seconds, settings.smtp_timeout_seconds),
        )


def build_message(
    *,
    sender: str,
    to_address: str,
    to_name: str,
    subject: str,
    text: str,
    html: str,
    message_key: str | None = None,
) -> EmailMessage:
    """A plain-text message with an HTML alternative.

    `message_key` makes the Message-ID stable (one per outbox job), so the rare resend
    after a crash between "accepted" and "recorded" is the same message to mail
    clients, which show it once.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(display_name=to_name, addr_spec=to_address)
    # Header values cannot hold line breaks; a summary with one must not break the mail.
    message["Subject"] = " ".join(subject.split())
    message["Date"] = formatdate(usegmt=True)
    # An explicit domain: make_msgid() would otherwise look up this host's FQDN (DNS).
    sender_domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = (
        f"<{message_key}@{sender_domain}>" if message_key else make_msgid(domain=sender_domain)
    )
    # Tells mail servers and clients not to send out-of-office replies to a robot.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


# Whatever the settings say, a send gives up well inside the email job's lease (60 s),
# so a slow server cannot make a second worker send the same message.
SEND_CAP_SECONDS = 50.0
QUIT_SECONDS = 2.0


async def send_message(config: SmtpConfig, message: EmailMessage) -> None:
    """Send one message over its own connection. Returns once the server accepted it.

    Accepted means the server's 250 after the message body: what happens after that
    (QUIT, closing the connection) cannot un-send it, so a server that is slow to say
    goodbye costs at most `QUIT_SECONDS` and never makes the send count as failed.
    Raises on any failure before that (refused connection, rejected login or
    recipient, timeout).
    """
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        local_hostname=_local_hostname(),
        port=config.port,
        username=config.username,
        password=config.password if config.username else None,
        # Port 465 is implicit TLS; elsewhere STARTTLS only when asked for, so a plain
        # local sink works and a misconfigured one fails loudly, not silently.
        use_tls=config.port == 465,
        start_tls=config.starttls and config.port != 465,
        timeout=config.timeout,
    )
    try:
        async with asyncio.timeout(min(SEND_CAP_SECONDS, 4 * config.timeout + config.data_timeout)):
            await smtp.connect()
            await smtp.send_message(message, timeout=config.data_timeout)
    except BaseException:
        smtp.close()
        raise
    try:
        async with asyncio.timeout(QUIT_SECONDS):
            await smtp.quit()
    except Exception:
        # Already accepted: a QUIT that stalls or fails changes nothing.
        smtp.close()


@functools.cache
def _local_hostname() -> str:
    """The name we greet SMTP servers with (EHLO), looked up once per process.

    aiosmtplib otherwise calls `socket.getfqdn()` (a blocking DNS lookup, on a thread)
    for every connection, i.e. for every email.
    """
    return socket.getfqdn()


def describe_smtp_error(exc: BaseException, *, timeout: float | None = None) -> str:
    """A short, readable reason for a failed send, for the delivery record."""
    if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError):
        return f"Timed out after {timeout:g} s" if timeout else "Timed out"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"Authentication rejected: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "Recipient refused: " + "; ".join(f"{e.code} {e.message}" for e in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        # aiosmtplib's text says "Connect call failed"; the cause says why.
        if isinstance(exc.__cause__, ConnectionRefusedError):
            return f"Connection refused: {exc}"
        return f"Connection failed: {exc}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"Server said {exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
