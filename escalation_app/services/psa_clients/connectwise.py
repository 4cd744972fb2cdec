"""ConnectWise PSA (Manage) REST: internal notes on service tickets.

Checked against, per request:
- Auth: Basic `companyId+publicKey:privateKey` plus the `clientId` header — ConnectWise
  PSA Developer Guide, "Authentication" and "ClientIds"; pyconnectwise
  `ConnectWiseManageAPIClient._get_auth_string/_get_headers`; ConnectWiseManageAPI
  `Connect-CWM` (API key branch).
- Version pin: `Accept: application/vnd.connectwise.com+json; version=2025.1` —
  Developer Guide, "Versioning / Formatting Version Header"; `Connect-CWM` sets the same
  header when given -Version.
- Codebase: `GET https://{site}/login/companyinfo/{companyId}` answers `Codebase`
  ("v2025_1/" in the cloud, "v4_6_release/" on premises) and `IsCloud`; the API lives at
  `https://{site}/{Codebase}apis/3.0` — Developer Guide, "Calling Company Info / API
  Request URL Format"; pyconnectwise `_try_get_codebase_from_api` and `_get_url`.
- Cloud sites are called on their `api-` host (na.myconnectwise.net ->
  api-na.myconnectwise.net) — Developer Guide, "Authentication" and "Cloud vs Premise".
- `POST /service/tickets/{id}/notes` with `text`, `internalAnalysisFlag`,
  `detailDescriptionFlag`, `resolutionFlag` (the ServiceNote model); `GET` on the same
  path lists a ticket's notes (`orderBy`, `pageSize`, max 1,000) — pyconnectwise
  `ServiceTicketsIdNotesEndpoint`; Developer Guide, "Formatting Each Method / Get".
- `GET /system/info` for Test connection — pyconnectwise `SystemInfoEndpoint`;
  `Connect-CWM` validates a connection the same way (`Get-CWMSystemInfo`).
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

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
    timeout,
)

# The API model version we are written against; a newer model on their side cannot
# reach us until this is changed (and the notes re-tested).
API_VERSION = "2025.1"
ACCEPT = f"application/vnd.connectwise.com+json; version={API_VERSION}"
ON_PREMISES_CODEBASE = "v4_6_release/"
# Cloud sites whose API is served on the "api-" host of the same name.
CLOUD_DOMAINS = ("myconnectwise.net", "connectwisedev.com")
# A ticket's notes read when looking for a marker (the newest first).
NOTES_LOOKUP_SIZE = 100
# How long a company's codebase is reused before it is looked up again.
CODEBASE_TTL_SECONDS = 3600.0
_CODEBASE_RE = re.compile(r"v[0-9A-Za-z_]+/")

_codebases: dict[tuple[str, str], tuple[float, CompanyInfo]] = {}


@dataclass(frozen=True, slots=True)
class CompanyInfo:
    codebase: str  # "v2025_1/" (cloud) or "v4_6_release/" (on premises)
    is_cloud: bool


def headers(credentials: PsaCredentials) -> dict[str, str]:
    """Basic `companyId+publicKey:privateKey`, the `clientId` header and the pinned version."""
    user = f"{credentials.company_id}+{credentials.public_key}:{credentials.secret}"
    return {
        "Authorization": "Basic " + base64.b64encode(user.encode()).decode("ascii"),
        "clientId": credentials.client_id,
        "Accept": ACCEPT,
    }


def note_body(text: str) -> dict:
    """A ConnectWise service ticket note, internal analysis only (not shown to the contact)."""
    return {
        "text": text,
        "internalAnalysisFlag": True,
        "detailDescriptionFlag": False,
        "resolutionFlag": False,
    }


def api_base(site_url: str, info: CompanyInfo) -> str:
    """The REST base for a site: `{site}/{codebase}apis/3.0`, on the `api-` host for a
    cloud site (na.myconnectwise.net -> api-na.myconnectwise.net)."""
    parts = urlsplit(site_url)
    host = parts.hostname or ""
    cloud = info.is_cloud or info.codebase != ON_PREMISES_CODEBASE
    if (
        cloud
        and any(host == d or host.endswith("." + d) for d in CLOUD_DOMAINS)
        and not host.startswith("api-")
    ):
        netloc = "api-" + parts.netloc
    else:
        netloc = parts.netloc
    return urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/{info.codebase}apis/3.0", "", ""))


def clear_cache() -> None:
    """Forget looked-up codebases (tests, or after the site moved)."""
    _codebases.clear()


async def company_info(client: httpx.AsyncClient, credentials: PsaCredentials) -> CompanyInfo:
    """The company's codebase from `/login/companyinfo/{company}` (cached for an hour)."""
    key = (credentials.url, credentials.company_id.lower())
    cached = _codebases.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    response = await client.get(
        f"{credentials.url}/login/companyinfo/{quote(credentials.company_id, safe='')}",
        headers={"Accept": "application/json", "clientId": credentials.client_id},
    )
    if response.status_code == 404:
        raise PsaError(
            f"ConnectWise PSA does not know the company ID “{credentials.company_id}”: "
            "use the company you enter at the login screen",
            retry=False,
        )
    check(response)
    found = json_of(response)
    codebase = found.get("Codebase") if isinstance(found, dict) else None
    if not isinstance(codebase, str) or not _CODEBASE_RE.fullmatch(codebase.strip()):
        raise PsaError(
            f"ConnectWise PSA did not name the codebase of company “{credentials.company_id}”: "
            "check the company ID and the site URL",
            retry=False,
        )
    is_cloud = str(found.get("IsCloud", "")).strip().lower() == "true"
    info = CompanyInfo(codebase=codebase.strip(), is_cloud=is_cloud)
    _codebases[key] = (time.monotonic() + CODEBASE_TTL_SECONDS, info)
    return info


async def _has_note(client: httpx.AsyncClient, notes_url: str, credentials, ticket: int, marker: str) -> bool:
    response = check(
        await client.get(
            notes_url,
            params={"orderBy": "id desc", "pageSize": NOTES_LOOKUP_SIZE},
            headers=headers(credentials),
        ),
        ticket=ticket,
    )
    notes = json_of(response)
    return isinstance(notes, list) and any(
        isinstance(n, dict) and carries_marker(n.get("text"), marker) for n in notes
    )


def _created_here(response: httpx.Response, notes_path: str) -> bool:
    """A redirect that points at the created note (`…/notes/{id}`)."""
    location = urlsplit(response.headers.get("location", "")).path
    return re.fullmatch(re.escape(notes_path) + r"/\d+", location) is not None


async def post_note(
    credentials: PsaCredentials, ticket: int, text: str, *, marker: str | None, look_first: bool = True
) -> None:
    """Post an internal note to `ticket`; raises PsaError (with `retry`) on failure.

    With a `marker`, a note already carrying it counts as posted (nothing is sent), and
    a redirect answering the post is a success once that note is found.
    """
    limit = timeout()

    async def work() -> None:
        async with http_client(limit) as client:
            base = api_base(credentials.url, await company_info(client, credentials))
            notes_url = f"{base}/service/tickets/{ticket}/notes"
            if marker and look_first and await _has_note(client, notes_url, credentials, ticket, marker):
                return
            body = note_body(f"{text}\n\n{marker_line(marker)}" if marker else text)
            response = await client.post(notes_url, headers=headers(credentials), json=body)
            if 300 <= response.status_code < 400:
                if _created_here(response, urlsplit(notes_url).path):
                    return
                if marker and await _has_note(client, notes_url, credentials, ticket, marker):
                    return
            check(response, ticket=ticket)

    await call(work, limit)


async def check_connection(credentials: PsaCredentials) -> str:
    """Look up the codebase and read `/system/info`; the success message, or PsaError."""
    limit = timeout()

    async def work() -> str:
        async with http_client(limit) as client:
            info = await company_info(client, credentials)
            response = check(
                await client.get(
                    f"{api_base(credentials.url, info)}/system/info", headers=headers(credentials)
                )
            )
        found = json_of(response)
        version = found.get("version") if isinstance(found, dict) else None
        where = f"codebase {info.codebase.rstrip('/')}, API version {API_VERSION}"
        return "Connected to ConnectWise PSA" + (
            f" {version} ({where})." if isinstance(version, str) else f" ({where})."
        )

    return await call(work, limit)
