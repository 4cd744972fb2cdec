"""HaloPSA: private notes (actions) on tickets, with OAuth client credentials.

Checked against, per request:
- Token endpoint discovery: `GET {instance}/api/authinfo` answers `auth_url` (and, on
  hosted instances, `tenant_id`); the token endpoint is `{auth_url}/token`, with
  `?tenant=` when there is a tenant; without authinfo, `{instance}/auth/token` — HaloAPI
  PowerShell module `Connect-HaloAPI`. An "Authorisation server URL" as Halo shows it
  under Configuration > Integrations > Halo API (n8n HaloPSA credentials, CIPP
  `Get-HaloToken`: `{AuthURL}/token?tenant=`) overrides the discovery.
- Token request: form-encoded `grant_type=client_credentials`, `client_id`,
  `client_secret`, `scope` (space-separated) — HaloAPI `Connect-HaloAPI`, n8n
  `getAccessTokens`; scope names (`read:tickets`, `edit:tickets`, …) — HaloAPI
  `Classes/HaloAuth.psm1`. The answer carries `access_token` and the granted `scope`.
- `POST /api/Actions` with a one-element array: `ticket_id`, `note_html`, `outcome_id`
  or `outcome`, `hiddenfromuser`, `sendemail` — Halo API swagger (`Actions` schema);
  CIPP `New-HaloPSATicket` adds notes the same way (note_html only, no plain `note`;
  outcome_id 7, Halo's built-in private note, when none is configured), and names
  the refusal "An Outcome must be entered for this Action".
- `GET /api/Actions?ticket_id=…&count=…&includehtmlnote=true` answers `{"actions": […]}`
  — Halo API swagger (`GET /Actions` parameters); HaloAPI `Get-HaloAction`.
- Test connection: `GET /api/Tickets?count=1` (`{"record_count", "tickets"}`) and
  `GET /api/Agent/me` (the `Uname` agent the application acts as: `name`) — Halo API
  swagger; HaloAPI `Get-HaloTicket`, `Get-HaloAgent -Me`.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import httpx

from escalation_app.domain.psa import PsaCredentials
from escalation_app.services.psa_clients.common import (
    PsaError,
    call,
    carries_marker,
    check,
    http_client,
    json_of,
    marker_line,
    snippet,
    timeout,
)

# Only what the integration uses: post actions on tickets, read tickets (Test
# connection, the marker lookup). The Halo application must grant both (or "all").
SCOPES = ("read:tickets", "edit:tickets")
# Halo's built-in private note outcome (CIPP's default); names differ per instance.
DEFAULT_OUTCOME = "7"
# A ticket's actions read when looking for a marker.
ACTIONS_LOOKUP_COUNT = 100
OUTCOME_MISSING = "an outcome must be entered for this action"
OUTCOME_NO_ACCESS = "you do not have access to this action at the moment"


def outcome_fields(setting: str) -> dict:
    """The action's outcome: `outcome_id` for an ID ("7"), `outcome` for a name."""
    value = (setting or "").strip() or DEFAULT_OUTCOME
    return {"outcome_id": int(value)} if value.isdigit() else {"outcome": value}


def note_html(text: str, marker: str | None) -> str:
    """The note as HTML: the text escaped (it is the engineer's), its lines kept."""
    body = html.escape(text).replace("\n", "<br>")
    return f"{body}<br><br>{html.escape(marker_line(marker))}" if marker else body


def action_body(ticket: int, text: str, *, outcome: str, marker: str | None) -> list[dict]:
    """A private note action on a ticket (POST /api/Actions takes a list); hidden from
    the end user and not emailed."""
    return [
        {
            "ticket_id": ticket,
            "note_html": note_html(text, marker),
            **outcome_fields(outcome),
            "hiddenfromuser": True,
            "sendemail": False,
        }
    ]


def token_form(credentials: PsaCredentials) -> dict[str, str]:
    """The OAuth client-credentials token request (form-encoded), narrow scopes."""
    return {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.secret,
        "scope": " ".join(SCOPES),
    }


def _auth_server_ok(auth_url: str, instance_url: str) -> bool:
    """An authorisation server the secret may go to: https (http only when the instance
    itself is plain http, a local test server)."""
    try:
        parts = urlsplit(auth_url)
    except ValueError:
        return False
    allowed = {"https", urlsplit(instance_url).scheme}
    return parts.scheme in allowed and bool(parts.hostname) and not parts.username and not parts.query


async def token_endpoint(client: httpx.AsyncClient, credentials: PsaCredentials) -> tuple[str, str]:
    """The token URL and tenant: the configured authorisation server, else what
    `/api/authinfo` names, else `{instance}/auth`."""
    if credentials.auth_url:
        return f"{credentials.auth_url.rstrip('/')}/token", credentials.tenant
    response = await client.get(f"{credentials.url}/api/authinfo", headers={"Accept": "application/json"})
    found = json_of(response) if response.status_code == 200 else None
    auth_url = found.get("auth_url") if isinstance(found, dict) else None
    if isinstance(auth_url, str) and auth_url.strip():
        if not _auth_server_ok(auth_url.strip(), credentials.url):
            raise PsaError(
                "HaloPSA named an authorisation server that is not https; "
                "set the Authorisation server URL under Integrations",
                retry=False,
            )
        tenant = credentials.tenant or str(found.get("tenant_id") or "").strip()
        return f"{auth_url.strip().rstrip('/')}/token", tenant
    if response.status_code >= 500:
        check(response)  # the instance is having trouble: retry later
    return f"{credentials.url}/auth/token", credentials.tenant


async def get_token(client: httpx.AsyncClient, credentials: PsaCredentials) -> tuple[str, str]:
    """An access token and the scope Halo granted."""
    url, tenant = await token_endpoint(client, credentials)
    response = await client.post(
        url,
        params={"tenant": tenant} if tenant else None,
        data=token_form(credentials),
        headers={"Accept": "application/json"},
    )
    if response.status_code in (400, 401):
        said = response.text.lower()
        if "invalid_client" in said:
            raise PsaError("PSA rejected the credentials (invalid client id or secret)", retry=False)
        if "invalid_scope" in said:
            raise PsaError(
                "The Halo application does not grant the permissions the notes need "
                f"({', '.join(SCOPES)}): add them to the application in Halo",
                retry=False,
            )
    check(response)
    found = json_of(response)
    token = found.get("access_token") if isinstance(found, dict) else None
    if not isinstance(token, str) or not token:
        raise PsaError("HaloPSA answered the token request without an access token", retry=False)
    scope = found.get("scope") if isinstance(found, dict) else None
    return token, scope if isinstance(scope, str) else ""


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def outcome_refusal(response: httpx.Response, outcome: str) -> PsaError | None:
    """Halo's two outcome refusals as setup errors (not retried), else None."""
    said = snippet(response).lower()
    shown = (outcome or "").strip() or f"{DEFAULT_OUTCOME} (Halo's built-in private note)"
    if OUTCOME_MISSING in said:
        return PsaError(
            f"HaloPSA did not accept the note outcome “{shown}” (“An Outcome must be entered for "
            "this Action”): set an outcome ID or name that exists in Halo under Integrations",
            retry=False,
        )
    if OUTCOME_NO_ACCESS in said:
        return PsaError(
            f"HaloPSA refused the note outcome “{shown}” for the API agent (“You do not have access "
            "to this Action at the moment”): give the agent access to it in Halo, or choose "
            "another outcome under Integrations",
            retry=False,
        )
    return None


async def _has_action(client: httpx.AsyncClient, credentials, token: str, ticket: int, marker: str) -> bool:
    response = check(
        await client.get(
            f"{credentials.url}/api/Actions",
            params={"ticket_id": ticket, "count": ACTIONS_LOOKUP_COUNT, "includehtmlnote": "true"},
            headers=_bearer(token),
        ),
        ticket=ticket,
    )
    found = json_of(response)
    actions = found.get("actions") if isinstance(found, dict) else None
    return isinstance(actions, list) and any(
        isinstance(a, dict)
        and (carries_marker(a.get("note_html"), marker) or carries_marker(a.get("note"), marker))
        for a in actions
    )


async def post_note(
    credentials: PsaCredentials, ticket: int, text: str, *, marker: str | None, look_first: bool = True
) -> None:
    """Post a private note to `ticket`; raises PsaError (with `retry`) on failure.

    With a `marker`, an action already carrying it counts as posted (nothing is sent),
    and a redirect answering the post is a success once that action is found.
    """
    limit = timeout()

    async def work() -> None:
        async with http_client(limit) as client:
            token, _scope = await get_token(client, credentials)
            if marker and look_first and await _has_action(client, credentials, token, ticket, marker):
                return
            response = await client.post(
                f"{credentials.url}/api/Actions",
                headers=_bearer(token),
                json=action_body(ticket, text, outcome=credentials.outcome, marker=marker),
            )
            redirected = 300 <= response.status_code < 400
            if redirected and marker and await _has_action(client, credentials, token, ticket, marker):
                return
            if not 200 <= response.status_code < 300 and (
                refusal := outcome_refusal(response, credentials.outcome)
            ):
                raise refusal
            check(response, ticket=ticket)

    await call(work, limit)


async def check_connection(credentials: PsaCredentials) -> str:
    """Get a token, read a ticket list and the API agent; a message naming the agent and
    the permissions Halo granted, or PsaError."""
    limit = timeout()

    async def work() -> str:
        async with http_client(limit) as client:
            token, scope = await get_token(client, credentials)
            check(
                await client.get(
                    f"{credentials.url}/api/Tickets", params={"count": 1}, headers=_bearer(token)
                )
            )
            me = await client.get(f"{credentials.url}/api/Agent/me", headers=_bearer(token))
        found = json_of(me) if me.status_code == 200 else None
        name = found.get("name") if isinstance(found, dict) else None
        granted = scope.split()
        missing = [s for s in SCOPES if s not in granted and "all" not in granted]
        agent = f"as agent “{' '.join(str(name).split())[:120]}”" if name else "(agent not readable)"
        message = (
            f"Connected to HaloPSA {agent}; ticket list read; "
            f"permissions granted: {' '.join(granted) if granted else 'not stated'}."
        )
        if scope and missing:
            message += f" Missing: {' '.join(missing)} (notes will be refused)."
        return message

    return await call(work, limit)
