"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in its own thread.

It records what it accepted, and can be told to refuse a login, refuse a recipient,
stall before answering DATA (and give up, or accept late) or stall before answering
QUIT, so the tests can watch each failure and the recovery.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from escalation_app.settings import get_settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, content_type: str) -> str:
        """The decoded body of the `text/plain` or `text/html` part."""
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None and body.get_content_type() == content_type, content_type
        return body.get_content()


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.sink.refuse_recipients:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.stall_seconds:
            # A server that stalls and then gives up: the message is not kept.
            await asyncio.sleep(self.sink.stall_seconds)
            return "451 4.3.0 Try again later"
        if self.sink.accept_after_seconds:
            # A slow server that does keep the message: its 250 comes late.
            await asyncio.sleep(self.sink.accept_after_seconds)
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.sink.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope):
        if self.sink.quit_stall_seconds:
            # The message is already accepted; only the goodbye is slow.
            await asyncio.sleep(self.sink.quit_stall_seconds)
        return "221 Bye"


class SmtpSink:
    """aiosmtpd on 127.0.0.1:`port`. With `username`, AUTH is required and checked."""

    def __init__(self, port: int | None = None, *, username: str | None = None, password: str | None = None):
        self.port = port or free_port()
        self.username = username
        self.password = password
        self.accept_logins = True
        self.refuse_recipients: set[str] = set()
        self.stall_seconds = 0.0
        self.accept_after_seconds = 0.0
        self.quit_stall_seconds = 0.0
        self.received: list[Received] = []
        self.login_attempts = 0
        kwargs = {}
        if username is not None:
            kwargs = {"auth_require_tls": False, "auth_required": True, "authenticator": self._authenticate}
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.login_attempts += 1
        ok = (
            self.accept_logins
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def by_recipient(self) -> dict[str, Received]:
        """Accepted messages keyed by their single envelope recipient."""
        result = {}
        for item in self.received:
            assert len(item.rcpt_tos) == 1, item.rcpt_tos
            assert item.rcpt_tos[0] not in result, f"duplicate mail to {item.rcpt_tos[0]}"
            result[item.rcpt_tos[0]] = item
        return result


@contextmanager
def app_settings(**values: object) -> Iterator[None]:
    """Set the app's settings through the environment (names upper-cased) for a block.

    The settings are cached; the cache is cleared on the way in and again after the
    previous environment is restored.
    """
    saved = {name.upper(): os.environ.get(name.upper()) for name in values}
    os.environ.update({name.upper(): str(value) for name, value in values.items()})
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        get_settings.cache_clear()
