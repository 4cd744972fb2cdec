"""A local fake of Anthropic's Messages API, for the real SDK to reach through `base_url`.

A real HTTP server on 127.0.0.1 (a free port) in a daemon thread. Each test scripts
the replies, in order, and reads back what the SDK sent:

    fake.script(fake_api.overloaded(), fake_api.tool_use({...}))
    ...
    fake.requests[0].headers["x-api-key"], fake.requests[0].body["tool_choice"]
    fake.prompts[0]  # the user message the model was given

A request with nothing scripted gets a 500 and is recorded, so the test fails
visibly instead of hanging. `fake.log` is an ordered record of what happened
("request", "answered", plus anything the test adds) for ordering assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "claude-sonnet-5-5"
# A held reply gives up after this long, so a broken test fails instead of hanging.
GATE_TIMEOUT = 15.0


@dataclass
class Reply:
    """One scripted answer: status, body, and an optional delay or gate before sending."""

    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    delay: float = 0.0
    # When set, the reply is held until the test sets this event.
    gate: threading.Event | None = None


def message(content: list[dict], *, model: str = DEFAULT_MODEL, stop_reason: str = "end_turn") -> dict:
    """A Messages API response body."""
    return {
        "id": "msg_fake_0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 321, "output_tokens": 123},
    }


def tool_use(tool_input: Any, *, name: str = "record_assessment", model: str = DEFAULT_MODEL) -> Reply:
    """The model calls the tool with `tool_input`."""
    block = {"type": "tool_use", "id": "toolu_fake_0001", "name": name, "input": tool_input}
    return Reply(body=message([block], model=model, stop_reason="tool_use"))


def grade(verdict: str, reason: str, *, model: str = DEFAULT_MODEL) -> Reply:
    """The grading call's answer: the model calls `record_grade` (services.ai_review)."""
    return tool_use({"verdict": verdict, "reason": reason}, name="record_grade", model=model)


def questions(items: list[str], *, model: str = "claude-haiku-test", delay: float = 0.0) -> Reply:
    """The "What will the senior ask?" answer (`record_questions`), optionally `delay`ed."""
    reply = tool_use({"questions": items}, name="record_questions", model=model)
    reply.delay = delay
    return reply


def text(answer: str, *, model: str = DEFAULT_MODEL) -> Reply:
    """The model answers in a text block (plain JSON, fenced JSON, or anything else)."""
    return Reply(body=message([{"type": "text", "text": answer}], model=model))


def error(status: int, msg: str, kind: str = "api_error") -> Reply:
    """An API error in Anthropic's error envelope."""
    return Reply(status=status, body={"type": "error", "error": {"type": kind, "message": msg}})


def overloaded() -> Reply:
    """529, as Anthropic answers when it is overloaded."""
    return error(529, "Overloaded", "overloaded_error")


def raw(body: bytes, *, status: int = 200, content_type: str = "application/json") -> Reply:
    """A body sent byte for byte (e.g. a JSON document cut off halfway)."""
    return Reply(status=status, body=body, content_type=content_type)


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def prompt(self) -> str:
        """The text of the request's user messages (what the model was asked), "" if none."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        texts = []
        for message in messages or []:
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [
                    b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
                ]
        return "\n".join(texts)


@dataclass
class FakeAnthropic:
    """The fake server's state; start it with `running_fake()`."""

    replies: deque[Reply] = field(default_factory=deque)
    # Replies kept for requests forcing one tool (`script_tool`), ahead of `replies`.
    tool_replies: dict[str, deque[Reply]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    base_url: str = ""
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _closing: threading.Event = field(default_factory=threading.Event)

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order, one per request."""
        with self._lock:
            self.replies.extend(replies)

    def script_tool(self, tool_name: str, *replies: Reply) -> None:
        """Queue replies only for requests whose tool_choice names `tool_name` (so another
        call of the app, e.g. an assessment running meanwhile, cannot take them)."""
        with self._lock:
            self.tool_replies.setdefault(tool_name, deque()).extend(replies)

    def requests_for(self, tool_name: str) -> list[Recorded]:
        """The requests that forced `tool_name`."""
        with self._lock:
            return [r for r in self.requests if _tool_of(r.body) == tool_name]

    def note(self, event: str) -> None:
        """Append `event` to the ordered log (tests add their own milestones)."""
        with self._lock:
            self.log.append(event)
            self._lock.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` requests have arrived (False on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    @property
    def prompts(self) -> list[str]:
        """The user prompt of each request received, in order."""
        with self._lock:
            return [r.prompt for r in self.requests]

    @property
    def unused(self) -> int:
        """Scripted replies nobody asked for."""
        with self._lock:
            return len(self.replies)

    def _take(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            self.log.append("request")
            self._lock.notify_all()
            routed = self.tool_replies.get(_tool_of(recorded.body) or "")
            if routed:
                return routed.popleft()
            if self.replies:
                return self.replies.popleft()
        return error(500, "fake Anthropic: no reply scripted for this request")

    def _hold(self, reply: Reply) -> None:
        if reply.gate is not None:
            # Wake early if the server is shutting down.
            deadline = time.monotonic() + GATE_TIMEOUT
            while not reply.gate.wait(0.05) and not self._closing.is_set():
                if time.monotonic() > deadline:
                    break
        if reply.delay:
            self._closing.wait(reply.delay)


def _tool_of(body: Any) -> str | None:
    choice = body.get("tool_choice") if isinstance(body, dict) else None
    return choice.get("name") if isinstance(choice, dict) else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        payload = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(payload)
        except ValueError:
            body = payload.decode("utf-8", "replace")
        recorded = Recorded(
            method="POST",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        reply = fake._take(recorded) if self.path.split("?")[0] == "/v1/messages" else error(404, "no route")
        fake._hold(reply)
        fake.note("answered")
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", "req_fake_0001")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout) before the slow reply was sent.
            fake.note("client-gone")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAnthropic


@contextmanager
def running_fake() -> Iterator[FakeAnthropic]:
    """Serve a fresh fake on 127.0.0.1 for the duration of the block."""
    fake = FakeAnthropic()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host}:{port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake._closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
