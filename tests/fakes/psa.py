"""Real HTTP fakes of the two PSA APIs: http.server on 127.0.0.1, each in its own thread.

`FakeConnectWise` and `FakeHaloPSA` check what a real PSA would check (the auth
headers, the token request's form fields, the body shape) and answer like one: 401
for bad credentials, 404 for an unknown ticket, 400 for a malformed body. Tests can
queue failure statuses (`fail_next`) or make note posts stall (`delay_seconds`).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CW_PREFIX = "/v4_6_release/apis/3.0"


@dataclass(frozen=True)
class Note:
    """One internal note the fake PSA accepted."""

    ticket: int
    text: str
    body: object


@dataclass(frozen=True)
class Request:
    """One request the fake got (whatever it answered)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Answer:
    status: int
    body: object = field(default_factory=dict)


class _FakePsa:
    """The server plumbing; subclasses implement `handle`."""

    def __init__(self, *, tickets: set[int] | None = None):
        self.tickets = set(tickets if tickets is not None else {123})
        self.notes: list[Note] = []
        self.requests: list[Request] = []
        # Statuses to answer the next note posts with, before behaving normally.
        self.fail_next: list[int] = []
        # Note posts stall this long before answering (a PSA that hangs).
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=method,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.requests.append(request)
                answer = fake.handle(request)
                raw = json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, format, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, request: Request) -> _Answer:
        raise NotImplementedError

    def _note_gate(self) -> _Answer | None:
        """Stall and/or answer a queued failure for a note post."""
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        with self._lock:
            status = self.fail_next.pop(0) if self.fail_next else None
        if status is not None:
            return _Answer(status, {"message": "Internal error" if status >= 500 else "Refused"})
        return None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FakeConnectWise(_FakePsa):
    """ConnectWise PSA REST: Basic `company+public:private` plus the `clientId` header."""

    def __init__(
        self,
        *,
        company_id: str = "northwind",
        public_key: str = "pubKEY123",
        private_key: str = "privSECRET456",
        client_id: str = "3f1c7d2a-1111-2222-3333-444455556666",
        tickets: set[int] | None = None,
    ):
        super().__init__(tickets=tickets)
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(
            f"{self.company_id}+{self.public_key}:{self.private_key}".encode()
        ).decode()
        return (
            request.headers.get("authorization") == f"Basic {expected}"
            and request.headers.get("clientid") == self.client_id
        )

    def handle(self, request: Request) -> _Answer:
        if not request.path.startswith(CW_PREFIX + "/"):
            return _Answer(404, {"code": "NotFound", "message": "No route"})
        if not self._authorised(request):
            return _Answer(401, {"code": "Unauthorized", "message": "Authentication failed."})
        path = request.path[len(CW_PREFIX) :]
        if request.method == "GET" and path == "/system/info":
            return _Answer(200, {"version": "v2025.1.10431", "isCloud": True, "serverTimeZone": "UTC"})
        match = re.fullmatch(r"/service/tickets/(\d+)/notes", path)
        if request.method != "POST" or match is None:
            return _Answer(404, {"code": "NotFound", "message": "No route"})
        if (gate := self._note_gate()) is not None:
            return gate
        ticket = int(match.group(1))
        if ticket not in self.tickets:
            return _Answer(404, {"code": "NotFound", "message": f"Ticket {ticket} not found"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _Answer(400, {"code": "InvalidObject", "message": "JSON expected"})
        body = json.loads(request.body or b"null")
        shape_ok = (
            isinstance(body, dict)
            and isinstance(body.get("text"), str)
            and body["text"].strip()
            and body.get("internalAnalysisFlag") is True
            and body.get("detailDescriptionFlag") is False
            and body.get("resolutionFlag") is False
        )
        if not shape_ok:
            return _Answer(400, {"code": "InvalidObject", "message": "Note shape"})
        with self._lock:
            self.notes.append(Note(ticket, body["text"], body))
            note_id = len(self.notes)
        return _Answer(
            201, {"id": note_id, "ticketId": ticket, "text": body["text"], "internalAnalysisFlag": True}
        )


class FakeHaloPSA(_FakePsa):
    """HaloPSA: OAuth client credentials at /auth/token, then Bearer calls to /api."""

    def __init__(
        self,
        *,
        client_id: str = "halo-client-1",
        client_secret: str = "halo-SECRET-789",
        tenant: str | None = None,
        tickets: set[int] | None = None,
    ):
        super().__init__(tickets=tickets)
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.issued: set[str] = set()

    def _token(self, request: Request) -> _Answer:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _Answer(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        tenant_ok = self.tenant is None or request.query.get("tenant") == [self.tenant]
        if form.get("grant_type") != "client_credentials" or form.get("scope") != "all" or not tenant_ok:
            return _Answer(400, {"error": "invalid_request"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _Answer(401, {"error": "invalid_client"})
        with self._lock:
            token = f"halo-token-{len(self.issued) + 1}"
            self.issued.add(token)
        return _Answer(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": "all"}
        )

    def handle(self, request: Request) -> _Answer:
        if request.method == "POST" and request.path == "/auth/token":
            return self._token(request)
        if not request.path.startswith("/api/"):
            return _Answer(404, {})
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.issued:
            return _Answer(401, {"message": "Unauthorized"})
        if request.method == "GET" and request.path == "/api/Tickets":
            return _Answer(200, {"record_count": len(self.tickets), "tickets": []})
        if request.method != "POST" or request.path != "/api/Actions":
            return _Answer(404, {})
        if (gate := self._note_gate()) is not None:
            return gate
        body = json.loads(request.body or b"null")
        item = body[0] if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict) else None
        shape_ok = (
            item is not None
            and isinstance(item.get("ticket_id"), int)
            and isinstance(item.get("note"), str)
            and item["note"].strip()
            and item.get("outcome") == "Private Note"
            and item.get("hiddenfromuser") is True
        )
        if not shape_ok:
            return _Answer(400, {"message": "Action shape"})
        if item["ticket_id"] not in self.tickets:
            return _Answer(404, {"message": f"Ticket {item['ticket_id']} not found"})
        with self._lock:
            self.notes.append(Note(item["ticket_id"], item["note"], body))
        return _Answer(201, {"id": len(self.notes), "ticket_id": item["ticket_id"], "note": item["note"]})
