"""The account's PSA connection: which PSA, its URL and ids, and its encrypted secret.

One connection per account, ConnectWise PSA or HaloPSA, kept on the account's
`AccountIntegration` row. Only owners and admins read or change it. The secret (the
ConnectWise API member's private key, the HaloPSA client secret) is encrypted before
it is stored (`infra.secrets`) and is never handed back: `get_psa_settings` says only
whether one is saved. Saving with a blank secret keeps the saved one, as long as the
PSA type and URL stay the same (otherwise a changed URL could carry the old secret to
another server).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from sqlmodel import Session

from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import DomainError, InvalidInput
from escalation_app.domain.integrations import (
    editor_name,
    integration_row,
    require_manager,
    update_integration_row,
)
from escalation_app.domain.models import AccountIntegration
from escalation_app.domain.types import utcnow
from escalation_app.infra import secrets

URL_MAX = 500
CLIENT_ID_MAX = 128
COMPANY_ID_MAX = 64
PUBLIC_KEY_MAX = 128
TENANT_MAX = 120
SECRET_MAX = 512
OUTCOME_MAX = 64
OUTCOME_ID_MAX = 2**31 - 1

_TOKEN_RE = re.compile(r"[^\s\x00-\x1f\x7f]+")
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A pasted API path: "/v4_6_release/apis/3.0" (on-premises) or "/v2025_1/apis/3.0" (cloud).
_CW_API_SUFFIX = re.compile(r"/v[0-9a-z_]+/apis/3\.0$", re.IGNORECASE)


class PsaType(StrEnum):
    CONNECTWISE = "connectwise"
    HALOPSA = "halopsa"

    @property
    def label(self) -> str:
        """The product name admins know."""
        return "ConnectWise PSA" if self is PsaType.CONNECTWISE else "HaloPSA"

    @property
    def secret_label(self) -> str:
        """What the secret is called in that PSA."""
        return "private key" if self is PsaType.CONNECTWISE else "client secret"


class PsaSecretUnreadable(DomainError):
    """The stored secret cannot be decrypted (key missing, wrong or rotated away)."""


# ---------------------------------------------------------------------------
# Encryption at rest (the keys live in `infra.secrets`)
# ---------------------------------------------------------------------------


def encrypt_secret(plaintext: str) -> str:
    """Encrypt a PSA secret for storage (raises InvalidInput when no key is configured)."""
    try:
        return secrets.encrypt(plaintext)
    except secrets.KeyNotUsable as exc:
        raise InvalidInput(str(exc)) from None


def decrypt_secret(token: str) -> str:
    """Decrypt a stored PSA secret; PsaSecretUnreadable when this server cannot."""
    try:
        return secrets.decrypt(token)
    except secrets.KeyNotUsable as exc:
        raise PsaSecretUnreadable(str(exc)) from None
    except secrets.Undecryptable:
        raise PsaSecretUnreadable(
            "The saved PSA secret cannot be decrypted with this server's PSA_ENCRYPTION_KEY; "
            "re-enter it under Integrations."
        ) from None


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _psa_type(value: str | None) -> PsaType:
    try:
        return PsaType(str(value or "").strip().lower())
    except ValueError:
        raise InvalidInput("Choose ConnectWise PSA or HaloPSA.") from None


def validate_psa_url(value: str | None, psa_type: PsaType | str) -> str:
    """Check and normalise a PSA URL: https, a real host name, no credentials or query.

    ConnectWise: the site only (a pasted `/v4_6_release/apis/3.0` or `/v2025_1/apis/3.0`
    is dropped); the login site (na.myconnectwise.net) and the API site
    (api-na.myconnectwise.net) both work.
    HaloPSA: the instance URL (a pasted `/api` or `/auth` is dropped); a path prefix is
    kept for on-premises installs under a virtual directory.
    """
    kind = PsaType(psa_type)
    netloc, path = _https_url(value, f"The {kind.label} URL", _example(kind))
    if kind is PsaType.CONNECTWISE:
        path = _CW_API_SUFFIX.sub("", path)
        if path:
            raise InvalidInput(f"The {kind.label} URL must be the site only, like {_example(kind)}.")
    else:
        for suffix in ("/api", "/auth"):
            if path.lower().endswith(suffix):
                path = path[: -len(suffix)]
                break
    return f"https://{netloc}{path}"


def validate_auth_url(value: str | None) -> str | None:
    """Check HaloPSA's optional "Authorisation server URL" (Configuration > Integrations >
    Halo API, API details), e.g. https://auth.haloservicedesk.com or
    https://yourmsp.halopsa.com/auth. Blank: None (discovered from the instance). A
    pasted `/token` is dropped: the token endpoint is `{this URL}/token`."""
    if not (value or "").strip():
        return None
    netloc, path = _https_url(value, "The authorisation server URL", "https://yourmsp.halopsa.com/auth")
    if path.lower().endswith("/token"):
        path = path[: -len("/token")]
    return f"https://{netloc}{path}"


def validate_outcome(value: str | None) -> str | None:
    """Check the HaloPSA outcome a note is posted with: an outcome ID ("7") or its name
    ("Private Note"), as Halo lists them under Configuration > Tickets > Actions. Blank:
    None (the default, Halo's built-in private note)."""
    cleaned = " ".join((value or "").split())
    if not cleaned:
        return None
    if len(cleaned) > OUTCOME_MAX:
        raise InvalidInput(f"The note outcome must be at most {OUTCOME_MAX} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise InvalidInput("The note outcome must be an outcome ID or name.")
    if cleaned.isdigit() and not 0 < int(cleaned) <= OUTCOME_ID_MAX:
        raise InvalidInput("The note outcome ID must be a positive number.")
    return str(int(cleaned)) if cleaned.isdigit() else cleaned


def _https_url(value: str | None, label: str, example: str) -> tuple[str, str]:
    """An https URL's normalised host[:port] and path (no trailing slash), or InvalidInput."""
    url = (value or "").strip()
    if not url:
        raise InvalidInput(f"{label} is required.")
    if len(url) > URL_MAX:
        raise InvalidInput(f"{label} must be at most {URL_MAX:,} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidInput(f"{label} must not contain spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"{label} is not a valid URL.") from None
    if parts.scheme.lower() != "https":
        raise InvalidInput(f"{label} must start with https://.")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{label} must not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    # "127.1", "0x7f.1" and "10.1" are addresses in the notations inet_aton accepts; a
    # real top-level domain is never numeric. (Every request checks the address it
    # really connects to as well: services/outbound.py.)
    numeric_tld = re.fullmatch(r"(0x[0-9a-f]*|[0-9]+)", host.rsplit(".", 1)[-1]) is not None
    if not host or "." not in host or is_ip or numeric_tld or not re.fullmatch(r"[a-z0-9.-]+", host):
        raise InvalidInput(f"{label} needs a host name, like {example}.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidInput(f"{label} must not contain ? or #.")
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return netloc, parts.path.rstrip("/")


def _example(kind: PsaType) -> str:
    return (
        "https://api-na.myconnectwise.net" if kind is PsaType.CONNECTWISE else "https://yourmsp.halopsa.com"
    )


def _token(value: str | None, label: str, max_length: int, *, required: bool) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise InvalidInput(f"{label} is required.")
        return None
    if len(cleaned) > max_length:
        raise InvalidInput(f"{label} must be at most {max_length:,} characters.")
    if not _TOKEN_RE.fullmatch(cleaned):
        raise InvalidInput(f"{label} must not contain spaces.")
    return cleaned


def _no_colon(value: str, label: str) -> str:
    # Company id and public key form the Basic-auth user name, where ":" ends it.
    if ":" in value:
        raise InvalidInput(f"{label} must not contain “:”.")
    return value


# ---------------------------------------------------------------------------
# Reading and saving the connection
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PsaSettings:
    """What the admin integrations page shows. Never the secret, only whether one is saved."""

    psa_type: str  # "connectwise", "halopsa", or "" when not connected
    label: str  # "ConnectWise PSA", "HaloPSA" or ""
    url: str
    client_id: str
    company_id: str  # ConnectWise
    public_key: str  # ConnectWise
    tenant: str  # HaloPSA, optional
    outcome: str  # HaloPSA, optional: outcome ID or name ("" = DEFAULT_OUTCOME)
    auth_url: str  # HaloPSA, optional: authorisation server override ("" = discovered)
    has_secret: bool
    secret_label: str  # "private key" / "client secret" / ""
    updated_at: datetime | None
    updated_by_name: str | None

    @property
    def configured(self) -> bool:
        """Whether a PSA connection is saved."""
        return bool(self.psa_type)


@dataclass(frozen=True, slots=True)
class PsaCredentials:
    """A connection with its decrypted secret: for `services.psa` only, never the browser."""

    psa_type: PsaType
    url: str
    client_id: str
    company_id: str
    public_key: str
    tenant: str
    secret: str = field(repr=False)
    outcome: str = ""  # HaloPSA: outcome ID or name; "" = DEFAULT_OUTCOME
    auth_url: str = ""  # HaloPSA: authorisation server override; "" = discovered


_EMPTY = PsaSettings("", "", "", "", "", "", "", "", "", False, "", None, None)


def _public(db: Session, row: AccountIntegration | None) -> PsaSettings:
    if row is None or not row.psa_type:
        return _EMPTY
    try:
        kind = PsaType(row.psa_type)
    except ValueError:
        return _EMPTY
    return PsaSettings(
        psa_type=kind.value,
        label=kind.label,
        url=row.psa_url or "",
        client_id=row.psa_client_id or "",
        company_id=row.psa_company_id or "",
        public_key=row.psa_public_key or "",
        tenant=row.psa_tenant or "",
        outcome=row.psa_outcome or "",
        auth_url=row.psa_auth_url or "",
        has_secret=bool(row.psa_secret_encrypted),
        secret_label=kind.secret_label,
        updated_at=row.updated_at,
        updated_by_name=editor_name(db, row),
    )


def get_psa_settings(*, db: Session, actor: Actor) -> PsaSettings:
    """The actor's account PSA connection without its secret (owners and admins only)."""
    require_manager(actor)
    return _public(db, integration_row(db, actor.account_id))


def save_psa_connection(
    *,
    db: Session,
    actor: Actor,
    psa_type: str,
    url: str,
    client_id: str,
    secret: str | None = None,
    company_id: str | None = None,
    public_key: str | None = None,
    tenant: str | None = None,
    outcome: str | None = None,
    auth_url: str | None = None,
) -> PsaSettings:
    """Validate and store the account's PSA connection (owners and admins only).

    `secret` is the ConnectWise private key or the HaloPSA client secret; blank keeps
    the saved one when the type, URL and authorisation server are unchanged (the
    secret goes to the authorisation server). ConnectWise needs `company_id` and
    `public_key`; HaloPSA takes an optional `tenant`, note `outcome` (ID or name) and
    `auth_url` (authorisation server override). Fields of the other type are ignored
    and cleared. Everything is checked (and the secret encrypted) before
    anything changes, so an error saves nothing.
    """
    require_manager(actor)
    kind = _psa_type(psa_type)
    clean_url = validate_psa_url(url, kind)
    clean_client = _token(client_id, "Client ID", CLIENT_ID_MAX, required=True)
    clean_company = clean_public = clean_tenant = clean_outcome = clean_auth_url = None
    if kind is PsaType.CONNECTWISE:
        clean_company = _no_colon(
            _token(company_id, "Company ID", COMPANY_ID_MAX, required=True) or "", "Company ID"
        )
        clean_public = _no_colon(
            _token(public_key, "Public key", PUBLIC_KEY_MAX, required=True) or "", "Public key"
        )
    else:
        clean_tenant = _token(tenant, "Tenant", TENANT_MAX, required=False)
        if clean_tenant and not _TENANT_RE.fullmatch(clean_tenant):
            raise InvalidInput("Tenant may contain only letters, digits, dots, dashes and underscores.")
        clean_outcome = validate_outcome(outcome)
        clean_auth_url = validate_auth_url(auth_url)
    secret_label = kind.secret_label.capitalize()
    new_secret = _token(secret, secret_label, SECRET_MAX, required=False)

    existing = integration_row(db, actor.account_id)
    keep_token = None
    if new_secret is None:
        same_target = (
            existing is not None
            and existing.psa_type == kind.value
            and existing.psa_url == clean_url
            and (existing.psa_auth_url or None) == clean_auth_url
            and bool(existing.psa_secret_encrypted)
        )
        if not same_target:
            if existing is not None and existing.psa_type and existing.psa_secret_encrypted:
                raise InvalidInput(
                    f"Enter the {kind.secret_label} again: a saved secret is kept only while "
                    "the PSA type, URL and authorisation server stay the same."
                )
            raise InvalidInput(f"{secret_label} is required.")
        keep_token = existing.psa_secret_encrypted  # type: ignore[union-attr]
    token = encrypt_secret(new_secret) if new_secret is not None else keep_token

    row = update_integration_row(
        db,
        actor,
        psa_type=kind.value,
        psa_url=clean_url,
        psa_client_id=clean_client,
        psa_company_id=clean_company,
        psa_public_key=clean_public,
        psa_tenant=clean_tenant,
        psa_outcome=clean_outcome,
        psa_auth_url=clean_auth_url,
        psa_secret_encrypted=token,
    )
    return _public(db, row)


def clear_psa_connection(*, db: Session, actor: Actor) -> PsaSettings:
    """Remove the account's PSA connection and its secret (owners and admins only).

    Notes not yet posted are then skipped ("PSA connection no longer configured").
    """
    require_manager(actor)
    row = integration_row(db, actor.account_id)
    if row is not None and row.psa_type:
        row.psa_type = None
        row.psa_url = None
        row.psa_client_id = None
        row.psa_company_id = None
        row.psa_public_key = None
        row.psa_tenant = None
        row.psa_outcome = None
        row.psa_auth_url = None
        row.psa_secret_encrypted = None
        row.updated_at = utcnow()
        row.updated_by_id = actor.id
        db.add(row)
        db.commit()
    return _EMPTY


def load_psa_credentials(db: Session, account_id: int) -> PsaCredentials | None:
    """The account's connection with the decrypted secret, or None when there is none.

    For `services.psa` only (no actor: system use). Raises PsaSecretUnreadable when
    the secret cannot be decrypted on this server.
    """
    row = integration_row(db, account_id)
    if row is None or not row.psa_type or not row.psa_url or not row.psa_secret_encrypted:
        return None
    try:
        kind = PsaType(row.psa_type)
    except ValueError:
        return None
    return PsaCredentials(
        psa_type=kind,
        url=row.psa_url,
        client_id=row.psa_client_id or "",
        company_id=row.psa_company_id or "",
        public_key=row.psa_public_key or "",
        tenant=row.psa_tenant or "",
        secret=decrypt_secret(row.psa_secret_encrypted),
        outcome=row.psa_outcome or "",
        auth_url=row.psa_auth_url or "",
    )


def require_psa_credentials(*, db: Session, actor: Actor) -> PsaCredentials:
    """The saved connection for "Test connection" (owners and admins only)."""
    require_manager(actor)
    credentials = load_psa_credentials(db, actor.account_id)
    if credentials is None:
        raise InvalidInput("Save a PSA connection first.")
    return credentials
