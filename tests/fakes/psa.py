"""Real HTTP fakes of the two PSA APIs: http.server on 127.0.0.1, each in its own thread.

They follow the vendors, not our code. Where each shape comes from (public sources):

ConnectWise PSA (`FakeConnectWise`)
- ConnectWise PSA Developer Guide (developer.connectwise.com, Products > ConnectWise
  PSA > REST > Developer Guide): Basic `companyId+publicKey:privateKey` and the
  `clientId` header ("Authentication", "ClientIds"); the version pin
  `Accept: application/vnd.connectwise.com+json; version=2025.1` ("Versioning");
  `GET /login/companyinfo/{company}` answering `CompanyName`, `Codebase` ("v2025_1/"),
  `VersionCode`, `VersionNumber`, `CompanyID`, `IsCloud` ("Calling Company Info"); the
  API under `/{Codebase}apis/3.0` ("API Request URL Format"); 201 Created for a create,
  401/403/404 meanings ("HTTP Response Statuses").
- pyconnectwise (HealthITAU/pyconnectwise): `_try_get_codebase_from_api` reads
  `Codebase`; `ServiceTicketsIdNotesEndpoint` GET/POST `/service/tickets/{id}/notes`
  with the ServiceNote model (`text`, `internalAnalysisFlag`, `detailDescriptionFlag`,
  `resolutionFlag`); `SystemInfoEndpoint` `/system/info` (`version`, `isCloud`).
- ConnectWiseManageAPI (christaylorcodes): `Connect-CWM` (same auth, Accept header).
  The version check here is stricter than the real server (which serves the latest
  model without the header): it proves we pin one.

HaloPSA (`FakeHaloPSA`)
- Halo API swagger ("The HaloITSM, HaloPSA and HaloServiceDesk REST API", v2):
  `POST /api/Actions` takes an array of `Actions` (`ticket_id`, `note`, `note_html`,
  `outcome`, `outcome_id`, `hiddenfromuser`, `sendemail`); `GET /api/Actions`
  (`ticket_id`, `count`, `includehtmlnote`); `GET /api/Tickets` (`count`);
  `GET /api/Agent/me` (an `Uname`: `id`, `name`, `isapiagent`); `GET /api/AuthInfo`.
- HaloAPI PowerShell module (homotechsual/HaloAPI): `Connect-HaloAPI` reads `auth_url`
  and `tenant_id` from `/api/authinfo`, posts the client-credentials form to
  `{auth_url}/token?tenant=…` (fallback `{instance}/auth/token`); scope names in
  `Classes/HaloAuth.psm1`; `Get-HaloAction` / `Get-HaloTicket` read `actions` /
  `tickets` out of the list answers.
- n8n HaloPSA node (`GenericFunctions.ts`): token answer `scope`, `token_type`,
  `access_token`, `expires_in`; hosted `{authUrl}/token?tenant=`.
- CIPP (KelvinTegelaar/CIPP-API `New-HaloPSATicket`, `Get-HaloToken`): notes as
  `note_html` with `outcome_id` (7 = the built-in private note) and
  `hiddenfromuser`; Halo refuses an action without a usable outcome with "An Outcome
  must be entered for this Action", and an outcome the API agent may not use with "You
  do not have access to this Action at the moment".

Tests queue failure statuses (`fail_next`), make note posts stall before (`delay_seconds`)
or after the note was stored (`answer_delay_seconds`: the PSA accepted, we time out).
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CW_ACCEPT_RE = re.compile(r"application/vnd\.connectwise\.com\+json;\s*version=(\d{4}\.\d+)")


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
    server: str = "api"  # which of the fake's servers got it ("api" or "auth")


@dataclass
class _Answer:
    status: int
    body: object = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class _Server:
    """One HTTP server on 127.0.0.1 handing every request to `handle(request)`."""

    def __init__(self, name: str, fake: _FakePsa, handle):
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
                    server=name,
                )
                with fake._lock:
                    fake.requests.append(request)
                answer = handle(request)
                raw = json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _FakePsa:
    """Shared state and failure injection; subclasses implement `handle`."""

    def __init__(self, *, tickets: set[int] | None = None):
        self.tickets = set(tickets if tickets is not None else {123})
        self.notes: list[Note] = []
        self.requests: list[Request] = []
        # Statuses to answer the next note posts with, before behaving normally.
        self.fail_next: list[int] = []
        # Note posts stall this long before they are looked at (a PSA that hangs).
        self.delay_seconds = 0.0
        # Note posts are stored, then the answer stalls this long (accepted, answered late).
        self.answer_delay_seconds = 0.0
        self._lock = threading.Lock()
        self._servers = [_Server("api", self, self.handle)]

    @property
    def url(self) -> str:
        return self._servers[0].url

    def handle(self, request: Request) -> _Answer:
        raise NotImplementedError

    def note_posts(self) -> list[Request]:
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

    def _store(self, note: Note) -> int:
        with self._lock:
            self.notes.append(note)
            note_id = len(self.notes)
        if self.answer_delay_seconds:
            time.sleep(self.answer_delay_seconds)
        return note_id

    def __enter__(self):
        for server in self._servers:
            server.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.stop()


class FakeConnectWise(_FakePsa):
    """ConnectWise PSA REST: companyinfo, then Basic auth + `clientId` + a pinned version."""

    def __init__(
        self,
        *,
        company_id: str = "northwind",
        public_key: str = "pubKEY123",
        private_key: str = "privSECRET456",
        client_id: str = "3f1c7d2a-1111-2222-3333-444455556666",
        codebase: str = "v2025_1/",
        tickets: set[int] | None = None,
    ):
        super().__init__(tickets=tickets)
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.codebase = codebase
        # A status (301, 302, 303, 307) to answer note creates with, after storing the
        # note, with Location pointing at it.
        self.redirect_creates: int | None = None
        # A status to answer note creates with, without storing, pointing elsewhere
        # (a site that moved, a login page).
        self.redirect_elsewhere: int | None = None

    @property
    def prefix(self) -> str:
        return f"/{self.codebase}apis/3.0"

    def note_posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/notes")]

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(
            f"{self.company_id}+{self.public_key}:{self.private_key}".encode()
        ).decode()
        return (
            request.headers.get("authorization") == f"Basic {expected}"
            and request.headers.get("clientid") == self.client_id
        )

    def _company_info(self, company: str) -> _Answer:
        if company.lower() != self.company_id.lower():
            return _Answer(404, {"code": "NotFound", "message": "Company not found"})
        return _Answer(
            200,
            {
                "CompanyName": "Northwind MSP",
                "Codebase": self.codebase,
                "VersionCode": "v2025.1",
                "VersionNumber": "v4.6.10431",
                "CompanyID": self.company_id,
                "IsCloud": "True" if self.codebase != "v4_6_release/" else "False",
                "SiteUrl": "127.0.0.1",
            },
        )

    def handle(self, request: Request) -> _Answer:
        if request.method == "GET" and (match := re.fullmatch(r"/login/companyinfo/([^/]+)", request.path)):
            return self._company_info(match.group(1))
        if not request.path.startswith(self.prefix + "/"):
            return _Answer(404, {"code": "NotFound", "message": "No route"})
        if not self._authorised(request):
            return _Answer(401, {"code": "Unauthorized", "message": "Authentication failed."})
        if not CW_ACCEPT_RE.fullmatch(request.headers.get("accept", "").strip()):
            return _Answer(400, {"code": "InvalidVersion", "message": "Pin an API version in Accept."})
        path = request.path[len(self.prefix) :]
        if request.method == "GET" and path == "/system/info":
            return _Answer(200, {"version": "v2025.1.10431", "isCloud": True, "serverTimeZone": "UTC"})
        match = re.fullmatch(r"/service/tickets/(\d+)/notes", path)
        if match is None or request.method not in ("GET", "POST"):
            return _Answer(404, {"code": "NotFound", "message": "No route"})
        ticket = int(match.group(1))
        if request.method == "GET":
            return self._list_notes(request, ticket)
        if (gate := self._note_gate()) is not None:
            return gate
        if self.redirect_elsewhere:
            return _Answer(self.redirect_elsewhere, {}, {"Location": "/v4_6_release/login/login.aspx"})
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
        note_id = self._store(Note(ticket, body["text"], body))
        created = {"id": note_id, "ticketId": ticket, "text": body["text"], "internalAnalysisFlag": True}
        if self.redirect_creates:
            return _Answer(self.redirect_creates, {}, {"Location": f"{request.path}/{note_id}"})
        return _Answer(201, created)

    def _list_notes(self, request: Request, ticket: int) -> _Answer:
        if ticket not in self.tickets:
            return _Answer(404, {"code": "NotFound", "message": f"Ticket {ticket} not found"})
        with self._lock:
            notes = [
                {"id": i + 1, "ticketId": n.ticket, "text": n.text, "internalAnalysisFlag": True}
                for i, n in enumerate(self.notes)
                if n.ticket == ticket
            ]
        if request.query.get("orderBy") == ["id desc"]:
            notes.reverse()
        size = int((request.query.get("pageSize") or ["25"])[0])
        return _Answer(200, notes[: min(size, 1000)])


class FakeHaloPSA(_FakePsa):
    """HaloPSA: `/api/authinfo` names a separate authorisation server, whose `/auth/token`
    issues Bearer tokens (client credentials, scoped) for the instance's `/api`."""

    def __init__(
        self,
        *,
        client_id: str = "halo-client-1",
        client_secret: str = "halo-SECRET-789",
        tenant: str | None = None,
        tickets: set[int] | None = None,
        serve_authinfo: bool = True,
        advertise_tenant: bool = False,
        granted_scopes: frozenset[str] = frozenset({"all"}),
    ):
        super().__init__(tickets=tickets)
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        # authinfo on: the token endpoint is only on the separate auth server (a client
        # that ignores authinfo fails); off: authinfo is 404 and the instance serves
        # /auth/token itself (older self-hosted installs).
        self.serve_authinfo = serve_authinfo
        self.advertise_tenant = advertise_tenant
        self.granted_scopes = set(granted_scopes)
        # Outcomes that exist (id -> name), and those the API agent may not use.
        self.outcomes: dict[int, str] = {7: "Private Note", 21: "Internal Note"}
        self.denied_outcomes: set[int] = set()
        self.agent_name = "Escalation Desk API"
        self.issued: dict[str, set[str]] = {}  # token -> scopes
        self._servers.append(_Server("auth", self, self._handle_auth))

    @property
    def auth_url(self) -> str:
        """The authorisation server as Halo's API details show it."""
        return f"{self._servers[1].url}/auth"

    def note_posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/api/Actions"]

    def token_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/auth/token"]

    def _handle_auth(self, request: Request) -> _Answer:
        if request.method == "POST" and request.path == "/auth/token":
            return self._token(request)
        return _Answer(404, {})

    def _token(self, request: Request) -> _Answer:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _Answer(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        tenant_ok = self.tenant is None or request.query.get("tenant") == [self.tenant]
        if form.get("grant_type") != "client_credentials" or not tenant_ok:
            return _Answer(400, {"error": "invalid_request"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _Answer(401, {"error": "invalid_client"})
        requested = set((form.get("scope") or "").split())
        if not requested or ("all" not in self.granted_scopes and not requested <= self.granted_scopes):
            return _Answer(400, {"error": "invalid_scope"})
        with self._lock:
            token = f"halo-token-{len(self.issued) + 1}"
            self.issued[token] = requested
        return _Answer(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": " ".join(sorted(requested)),
            },
        )

    def _may(self, scopes: set[str], needed: str) -> bool:
        return "all" in scopes or needed in scopes

    def handle(self, request: Request) -> _Answer:
        if request.method == "GET" and request.path.lower() == "/api/authinfo":
            if not self.serve_authinfo:
                return _Answer(404, {})
            info = {"auth_url": self.auth_url}
            if self.advertise_tenant and self.tenant:
                info["tenant_id"] = self.tenant
            return _Answer(200, info)
        if request.method == "POST" and request.path == "/auth/token" and not self.serve_authinfo:
            return self._token(request)
        if not request.path.startswith("/api/"):
            return _Answer(404, {})
        auth = request.headers.get("authorization", "")
        scopes = self.issued.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if scopes is None:
            return _Answer(401, {"message": "Unauthorized"})
        if request.method == "GET" and request.path == "/api/Agent/me":
            return _Answer(200, {"id": 5, "name": self.agent_name, "isapiagent": True})
        if request.method == "GET" and request.path == "/api/Tickets":
            if not self._may(scopes, "read:tickets"):
                return _Answer(403, {"message": "Forbidden"})
            return _Answer(
                200, {"record_count": len(self.tickets), "tickets": [{"id": t} for t in self.tickets]}
            )
        if request.method == "GET" and request.path == "/api/Actions":
            return self._list_actions(request, scopes)
        if request.method != "POST" or request.path != "/api/Actions":
            return _Answer(404, {})
        if not self._may(scopes, "edit:tickets"):
            return _Answer(403, {"message": "Forbidden"})
        if (gate := self._note_gate()) is not None:
            return gate
        body = json.loads(request.body or b"null")
        item = body[0] if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict) else None
        shape_ok = (
            item is not None
            and isinstance(item.get("ticket_id"), int)
            and isinstance(item.get("note_html"), str)
            and item["note_html"].strip()
            and item.get("hiddenfromuser") is True
        )
        if not shape_ok:
            return _Answer(400, {"message": "Action shape"})
        if item["ticket_id"] not in self.tickets:
            return _Answer(404, {"message": f"Ticket {item['ticket_id']} not found"})
        outcome_id = self._outcome_of(item)
        if outcome_id is None:
            return _Answer(400, "An Outcome must be entered for this Action")
        if outcome_id in self.denied_outcomes:
            return _Answer(400, "You do not have access to this Action at the moment")
        note_id = self._store(Note(item["ticket_id"], item["note_html"], body))
        return _Answer(201, {"id": note_id, "ticket_id": item["ticket_id"], "outcome_id": outcome_id})

    def _outcome_of(self, item: dict) -> int | None:
        if isinstance(item.get("outcome_id"), int) and item["outcome_id"] in self.outcomes:
            return item["outcome_id"]
        by_name = {name.lower(): oid for oid, name in self.outcomes.items()}
        name = item.get("outcome")
        return by_name.get(name.strip().lower()) if isinstance(name, str) else None

    def _list_actions(self, request: Request, scopes: set[str]) -> _Answer:
        if not self._may(scopes, "read:tickets"):
            return _Answer(403, {"message": "Forbidden"})
        ticket = int((request.query.get("ticket_id") or ["0"])[0])
        with_html = request.query.get("includehtmlnote") == ["true"]
        with self._lock:
            actions = []
            for i, n in enumerate(self.notes):
                if n.ticket != ticket:
                    continue
                plain = html.unescape(re.sub(r"<br\s*/?>", "\n", n.text))
                action = {"id": i + 1, "ticket_id": n.ticket, "note": plain}
                if with_html:
                    action["note_html"] = n.text
                actions.append(action)
        count = int((request.query.get("count") or ["50"])[0])
        return _Answer(200, {"record_count": len(actions), "actions": actions[-count:]})
