"""PSA writeback: the account's PSA connection, its encrypted secret, the note texts,
and the delivery record of every note.

One connection per account, ConnectWise PSA or HaloPSA, kept on the account's
`AccountIntegration` row. Only owners and admins read or change it. The secret (the
ConnectWise API member's private key, the HaloPSA client secret) is encrypted with
Fernet before it is stored and is never handed back: `get_psa_settings` says only
whether one is saved. Saving with a blank secret keeps the saved one, as long as the
PSA type and URL stay the same (otherwise a changed URL could carry the old secret to
another server).

The encryption key comes from `PSA_ENCRYPTION_KEY` (one Fernet key, or "new,old"
while rotating). Without it, on the SQLite laptop default a key is generated once into
`.psa-key` in the project (git-ignored); with PostgreSQL (a real deployment, maybe
several servers) saving a secret is refused until the key is configured, so no server
ever encrypts with a key the others do not have.

Every note is a `DeliveryRecord` (channel "psa", kind "psa_escalation" or "psa_claim").
The HTTP side lives in `services/psa.py`; this module decides, in short transactions,
which notes exist and who may post them:

- queued, `next_attempt_at` set: waiting (for the AI summary, or for the escalation
  note to go first) until that time; `take_waiting` / `take_due` take it.
- queued, `next_attempt_at` empty: being posted by the worker that took it.
- failed, `next_attempt_at` set: a retry is due then; empty: given up.
- sent / skipped.

Taking a note is one conditional UPDATE, so with several workers exactly one posts
it, and there is at most one escalation note and one pick-up note per handoff.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import update
from sqlmodel import Session, col, select

from escalation_app.domain import deliveries
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import DomainError, InvalidInput, NotFound
from escalation_app.domain.handoffs import parse_handoff_id
from escalation_app.domain.integrations import (
    editor_name,
    integration_row,
    require_manager,
    update_integration_row,
)
from escalation_app.domain.models import (
    AccountIntegration,
    AIStatus,
    DeliveryChannel,
    DeliveryRecord,
    DeliveryStatus,
    HandoffIntent,
    SessionHandoff,
    SessionStep,
    SupportSession,
    User,
)
from escalation_app.domain.types import utcnow
from escalation_app.settings import PROJECT_ROOT, get_settings

# Where the generated development key lives (module-level so tests can move it).
PSA_KEY_FILE: Path = PROJECT_ROOT / ".psa-key"

URL_MAX = 500
CLIENT_ID_MAX = 128
COMPANY_ID_MAX = 64
PUBLIC_KEY_MAX = 128
TENANT_MAX = 120
SECRET_MAX = 512

KIND_PSA_ESCALATION = "psa_escalation"
KIND_PSA_CLAIM = "psa_claim"
# The escalation note is posted before the pick-up note of the same handoff.
_KIND_ORDER = {KIND_PSA_ESCALATION: 0, KIND_PSA_CLAIM: 1}

# How long past the AI time budget an escalation note waits for the summary before
# it is posted without one (when `on_assessment_ready` never comes).
AI_WAIT_MARGIN = timedelta(seconds=30)
# A pick-up note waits this long at most for an escalation note that is being posted.
CLAIM_WAIT = timedelta(minutes=2)
# A note "being posted" for this long was interrupted (the process stopped).
STALE_SENDING_AFTER = timedelta(minutes=5)

NOTE_MAX = 8000
NOTE_STEPS_MAX = 30
NOTE_STEP_TEXT_MAX = 300
NOTE_NOTES_MAX = 2000
NOTE_SUMMARY_MAX = 1500

NO_CONNECTION = "PSA connection no longer configured"
INTERRUPTED = "Interrupted before it finished; will retry."

_TOKEN_RE = re.compile(r"[^\s\x00-\x1f\x7f]+")
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CW_API_SUFFIX = "/v4_6_release/apis/3.0"


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
# Encryption at rest
# ---------------------------------------------------------------------------


def _dev_key() -> bytes:
    """The laptop key from `PSA_KEY_FILE`, generated (0600) on first use.

    Published with a hard link from a complete temporary file, so concurrent first
    uses agree on one key and nobody reads a half-written file.
    """
    path = PSA_KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    temp = path.with_name(f".psa-key.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
        # If another process published its key first, use that one.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path.read_bytes().strip()


def _cipher() -> MultiFernet:
    settings = get_settings()
    configured = [k.strip() for k in (settings.psa_encryption_key or "").split(",") if k.strip()]
    if configured:
        try:
            return MultiFernet([Fernet(k) for k in configured])
        except (ValueError, TypeError):
            raise InvalidInput(
                "PSA_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)."
            ) from None
    if settings.is_sqlite:
        return MultiFernet([Fernet(_dev_key())])
    raise InvalidInput(
        "PSA_ENCRYPTION_KEY is not configured: set it on every server before saving a PSA connection."
    )


def encrypt_secret(plaintext: str) -> str:
    """Encrypt a PSA secret for storage (raises InvalidInput when no key is configured)."""
    return _cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    """Decrypt a stored PSA secret; PsaSecretUnreadable when this server cannot."""
    try:
        return _cipher().decrypt(token.encode("ascii")).decode()
    except InvalidInput as exc:
        raise PsaSecretUnreadable(exc.message) from None
    except (InvalidToken, ValueError, UnicodeError):
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

    ConnectWise: the API site only (a pasted `/v4_6_release/apis/3.0` is dropped).
    HaloPSA: the instance URL (a pasted `/api` or `/auth` is dropped); a path prefix is
    kept for on-premises installs under a virtual directory.
    """
    kind = PsaType(psa_type)
    label = f"The {kind.label} URL"
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
        raise InvalidInput(f"{label} needs a host name, like {_example(kind)}.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidInput(f"{label} must not contain ? or #.")
    path = parts.path.rstrip("/")
    if kind is PsaType.CONNECTWISE:
        if path.lower().endswith(_CW_API_SUFFIX):
            path = path[: -len(_CW_API_SUFFIX)]
        if path:
            raise InvalidInput(f"{label} must be the site only, like {_example(kind)}.")
    else:
        for suffix in ("/api", "/auth"):
            if path.lower().endswith(suffix):
                path = path[: -len(suffix)]
                break
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return f"https://{netloc}{path}"


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


_EMPTY = PsaSettings("", "", "", "", "", "", "", False, "", None, None)


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
) -> PsaSettings:
    """Validate and store the account's PSA connection (owners and admins only).

    `secret` is the ConnectWise private key or the HaloPSA client secret; blank keeps
    the saved one when the type and URL are unchanged. ConnectWise needs `company_id`
    and `public_key`; HaloPSA takes an optional `tenant`. Fields of the other type are
    ignored and cleared. Everything is checked (and the secret encrypted) before
    anything changes, so an error saves nothing.
    """
    require_manager(actor)
    kind = _psa_type(psa_type)
    clean_url = validate_psa_url(url, kind)
    clean_client = _token(client_id, "Client ID", CLIENT_ID_MAX, required=True)
    clean_company = clean_public = clean_tenant = None
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
    secret_label = kind.secret_label.capitalize()
    new_secret = _token(secret, secret_label, SECRET_MAX, required=False)

    existing = integration_row(db, actor.account_id)
    keep_token = None
    if new_secret is None:
        same_target = (
            existing is not None
            and existing.psa_type == kind.value
            and existing.psa_url == clean_url
            and bool(existing.psa_secret_encrypted)
        )
        if not same_target:
            if existing is not None and existing.psa_type and existing.psa_secret_encrypted:
                raise InvalidInput(
                    f"Enter the {kind.secret_label} again: a saved secret is kept only while "
                    "the PSA type and URL stay the same."
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
    )


def require_psa_credentials(*, db: Session, actor: Actor) -> PsaCredentials:
    """The saved connection for "Test connection" (owners and admins only)."""
    require_manager(actor)
    credentials = load_psa_credentials(db, actor.account_id)
    if credentials is None:
        raise InvalidInput("Save a PSA connection first.")
    return credentials


# ---------------------------------------------------------------------------
# Note texts
# ---------------------------------------------------------------------------


def _cut(value: object, limit: int, *, one_line: bool = True) -> str:
    """`value` as text of at most `limit` characters; `one_line` collapses whitespace."""
    text = str(value or "")
    text = " ".join(text.split()) if one_line else text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _step_fields(step: SessionStep | Mapping) -> tuple[int | None, str, str, bool]:
    if isinstance(step, Mapping):
        return (
            step.get("position"),
            step.get("tried") or "",
            step.get("result") or "",
            bool(step.get("skipped")),
        )
    return step.position, step.tried, step.result, step.skipped


def escalation_note(
    handoff: SessionHandoff,
    session: SupportSession | None,
    steps: Sequence[SessionStep | Mapping],
    ai_summary: str | None,
    *,
    escalated_by: str | None = None,
    link: str | None = None,
) -> str:
    """The internal note of an escalation: problem, steps tried with results, notes,
    priority and the AI summary prose (when there is one). Plain text, bounded.

    `steps` are SessionStep rows or the handoff snapshot's step dicts.
    """
    snapshot = handoff.snapshot if isinstance(handoff.snapshot, dict) else {}
    problem = snapshot.get("problem_summary") or (session.problem_summary if session else "") or "—"
    client = snapshot.get("client_name") or (session.client_name if session else "")
    by = f" by {escalated_by}" if escalated_by else ""
    head = [
        f"Escalated in Escalation Desk{by}. Priority: {str(handoff.priority).capitalize()}.",
        f"Problem: {_cut(problem, NOTE_STEP_TEXT_MAX)}",
    ]
    if client:
        head.append(f"Client: {_cut(client, NOTE_STEP_TEXT_MAX)}")
    notes = _cut(handoff.engineer_notes, NOTE_NOTES_MAX, one_line=False)
    summary = _cut(ai_summary, NOTE_SUMMARY_MAX, one_line=False)
    tail = ["", *(["Engineer notes:", notes] if notes else ["Engineer notes: none."]), ""]
    tail += ["AI summary:", summary] if summary else ["AI summary: not available."]
    if link:
        tail += ["", f"Handoff: {link}"]

    # The steps get the room the rest leaves (NOTE_MAX in all); later ones are counted.
    room = NOTE_MAX - len("\n".join([*head, "", *tail])) - 80
    body = [f"Steps tried ({len(steps)}):"] if steps else ["Steps tried: none recorded."]
    shown = 0
    for index, step in enumerate(steps[:NOTE_STEPS_MAX]):
        position, tried, result, skipped = _step_fields(step)
        marker = " (skipped)" if skipped else ""
        outcome = _cut(result, NOTE_STEP_TEXT_MAX) or "no result recorded"
        line = f"{position or index + 1}. {_cut(tried, NOTE_STEP_TEXT_MAX)}{marker} → {outcome}"
        if len(line) + 1 > room:
            break
        body.append(line)
        room -= len(line) + 1
        shown += 1
    if shown < len(steps):
        body.append(f"({len(steps) - shown} more steps not shown)")
    return "\n".join([*head, "", *body, *tail])


def claim_note(claimer_name: str) -> str:
    """The note posted when a senior picks the escalation up."""
    return f"Picked up by {' '.join(str(claimer_name or '').split()) or 'a teammate'}"


def ticket_number(raw: str | None) -> int:
    """The numeric PSA ticket id of a session's ticket field ("123" or "#123")."""
    value = (raw or "").strip().removeprefix("#").strip()
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= 2**31 - 1:
        raise InvalidInput(f"PSA ticket id “{_cut(raw, 64)}” is not a ticket number")
    return int(value)


def _ticket_label(raw: str | None) -> str:
    return "#" + (raw or "").strip().removeprefix("#").strip()


# ---------------------------------------------------------------------------
# Note delivery records
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PsaJob:
    """One note to post now, taken by this worker."""

    record_id: int
    handoff_id: uuid.UUID
    kind: str
    ticket: int
    text: str
    credentials: PsaCredentials


def _ticket_of(db: Session, handoff: SessionHandoff) -> str | None:
    snapshot = handoff.snapshot if isinstance(handoff.snapshot, dict) else {}
    ticket = snapshot.get("psa_ticket_id")
    if not ticket:
        support_session = db.get(SupportSession, handoff.session_id)
        ticket = support_session.psa_ticket_id if support_session else None
    ticket = str(ticket or "").strip()
    return ticket or None


def _record(db: Session, handoff_id: uuid.UUID, kind: str) -> DeliveryRecord | None:
    return db.exec(
        select(DeliveryRecord).where(
            DeliveryRecord.handoff_id == handoff_id,
            DeliveryRecord.channel == DeliveryChannel.PSA,
            DeliveryRecord.kind == kind,
        )
    ).first()


def _name(db: Session, user_id: int | None) -> str | None:
    user = db.get(User, user_id) if user_id else None
    return user.display_name if user else None


def _note_text(db: Session, record: DeliveryRecord, handoff: SessionHandoff) -> str:
    if record.kind == KIND_PSA_CLAIM:
        name = record.payload.get("claimer_name") or _name(db, handoff.claimed_by_id)
        return claim_note(name or "")
    snapshot = handoff.snapshot if isinstance(handoff.snapshot, dict) else {}
    steps = snapshot.get("steps")
    if not isinstance(steps, list):
        steps = list(
            db.exec(
                select(SessionStep)
                .where(SessionStep.session_id == handoff.session_id)
                .order_by(col(SessionStep.position))
            ).all()
        )
    ai_summary = handoff.ai_assessment if handoff.ai_status == AIStatus.READY else None
    return escalation_note(
        handoff,
        db.get(SupportSession, handoff.session_id),
        steps,
        ai_summary,
        escalated_by=_name(db, handoff.handed_off_by_id),
        link=f"{get_settings().frontend_url}/handoffs/{handoff.id}",
    )


def _jobs(db: Session, records: list[DeliveryRecord]) -> list[PsaJob]:
    """Jobs for records this worker has taken; the ones that cannot be posted are
    marked skipped or failed (not committed)."""
    jobs = []
    credentials: dict[int, PsaCredentials | PsaSecretUnreadable | None] = {}
    for record in sorted(records, key=lambda r: (str(r.handoff_id), _KIND_ORDER.get(r.kind, 9), r.id)):
        assert record.id is not None and record.handoff_id is not None
        if record.account_id not in credentials:
            try:
                credentials[record.account_id] = load_psa_credentials(db, record.account_id)
            except PsaSecretUnreadable as exc:
                credentials[record.account_id] = exc
        found = credentials[record.account_id]
        if found is None:
            deliveries.mark_skipped(db, record.id, NO_CONNECTION)
            continue
        if isinstance(found, PsaSecretUnreadable):
            deliveries.mark_failed(db, record.id, found.message, retry=False)
            continue
        handoff = db.get(SessionHandoff, record.handoff_id)
        if handoff is None:
            deliveries.mark_skipped(db, record.id, "Handoff no longer exists")
            continue
        try:
            ticket = ticket_number(record.payload.get("ticket_id"))
        except InvalidInput as exc:
            deliveries.mark_failed(db, record.id, exc.message, retry=False)
            continue
        jobs.append(
            PsaJob(record.id, record.handoff_id, record.kind, ticket, _note_text(db, record, handoff), found)
        )
    return jobs


def _add_note_record(
    db: Session, handoff: SessionHandoff, row: AccountIntegration, ticket: str, kind: str, **extra: object
) -> DeliveryRecord:
    record = deliveries.add_delivery(
        db,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        channel=DeliveryChannel.PSA,
        recipient=f"{row.psa_type}:{ticket}",
        payload={"ticket_id": ticket, "psa_type": row.psa_type, **extra},
        kind=kind,
    )
    return record


def _connected_ticket(db: Session, handoff: SessionHandoff) -> tuple[AccountIntegration, str] | None:
    if handoff.intent != HandoffIntent.ESCALATE:
        return None
    row = integration_row(db, handoff.account_id)
    if row is None or not row.psa_type:
        return None
    ticket = _ticket_of(db, handoff)
    return (row, ticket) if ticket else None


def start_escalation_note(db: Session, handoff_id: str | uuid.UUID, *, ai_wait: timedelta) -> list[PsaJob]:
    """Create the escalation note's record (once per handoff) and commit.

    Nothing for a park, an account without a PSA connection or a session without a
    ticket id. While the AI assessment is pending the note waits (until `ai_wait`
    after the handoff was created, plus a margin) and an empty list is returned;
    otherwise the note is taken by the caller, who posts the returned job.
    """
    # The lock serialises this with the assessment's own write (PostgreSQL) so either
    # we see it finished, or `take_waiting` after it sees our waiting record.
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id), with_for_update=True)
    target = _connected_ticket(db, handoff) if handoff is not None else None
    if handoff is None or target is None or _record(db, handoff.id, KIND_PSA_ESCALATION) is not None:
        db.commit()
        return []
    row, ticket = target
    record = _add_note_record(db, handoff, row, ticket, KIND_PSA_ESCALATION)
    if handoff.ai_status == AIStatus.PENDING:
        record.next_attempt_at = max(handoff.created_at + ai_wait + AI_WAIT_MARGIN, utcnow())
        db.commit()
        return []
    db.flush()
    jobs = _jobs(db, [record])
    db.commit()
    return jobs


def start_claim_note(db: Session, handoff_id: str | uuid.UUID, claimer_name: str | None) -> list[PsaJob]:
    """Create the pick-up note's record (once per handoff) and commit.

    It waits while the escalation note has not been posted yet (so the ticket reads
    in order); `take_waiting` releases it when that note is done.
    """
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id), with_for_update=True)
    target = _connected_ticket(db, handoff) if handoff is not None else None
    if (
        handoff is None
        or target is None
        or handoff.claimed_by_id is None
        or _record(db, handoff.id, KIND_PSA_CLAIM) is not None
    ):
        db.commit()
        return []
    row, ticket = target
    name = " ".join(str(claimer_name or "").split()) or _name(db, handoff.claimed_by_id) or ""
    record = _add_note_record(db, handoff, row, ticket, KIND_PSA_CLAIM, claimer_name=name[:120])
    first = _record(db, handoff.id, KIND_PSA_ESCALATION)
    if first is not None and first.status == DeliveryStatus.QUEUED:
        record.next_attempt_at = first.next_attempt_at or utcnow() + CLAIM_WAIT
        db.commit()
        return []
    db.flush()
    jobs = _jobs(db, [record])
    db.commit()
    return jobs


def _take(db: Session, record: DeliveryRecord) -> bool:
    """Move a waiting or due record to "being posted"; False when another worker did."""
    won = db.exec(
        update(DeliveryRecord)
        .where(
            col(DeliveryRecord.id) == record.id,
            DeliveryRecord.status == record.status,
            DeliveryRecord.attempts == record.attempts,
            col(DeliveryRecord.next_attempt_at).is_not(None),
        )
        .values(status=DeliveryStatus.QUEUED, next_attempt_at=None, updated_at=utcnow())
        .returning(col(DeliveryRecord.id))
    ).first()
    return won is not None


def take_waiting(
    db: Session,
    handoff_id: str | uuid.UUID,
    *,
    kinds: tuple[str, ...] = (KIND_PSA_ESCALATION, KIND_PSA_CLAIM),
) -> list[PsaJob]:
    """Take a handoff's waiting notes of `kinds` (escalation first) and commit."""
    hid = parse_handoff_id(handoff_id)
    db.get(SessionHandoff, hid, with_for_update=True)
    waiting = db.exec(
        select(DeliveryRecord).where(
            DeliveryRecord.handoff_id == hid,
            DeliveryRecord.channel == DeliveryChannel.PSA,
            col(DeliveryRecord.kind).in_(list(kinds)),
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            col(DeliveryRecord.next_attempt_at).is_not(None),
        )
    ).all()
    taken = [record for record in waiting if _take(db, record)]
    jobs = _jobs(db, taken)
    db.commit()
    return jobs


def take_due(db: Session, *, now: datetime | None = None, limit: int = 100) -> list[PsaJob]:
    """Take every note whose time has come and commit: interrupted posts become due
    failures, waiting notes past their wait, and failed notes whose retry is due."""
    now = now or utcnow()
    stale = db.exec(
        select(DeliveryRecord.id).where(
            DeliveryRecord.channel == DeliveryChannel.PSA,
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            col(DeliveryRecord.next_attempt_at).is_(None),
            col(DeliveryRecord.updated_at) <= now - STALE_SENDING_AFTER,
        )
    ).all()
    for record_id in stale:
        db.exec(
            update(DeliveryRecord)
            .where(
                col(DeliveryRecord.id) == record_id,
                DeliveryRecord.status == DeliveryStatus.QUEUED,
                col(DeliveryRecord.next_attempt_at).is_(None),
            )
            .values(
                status=DeliveryStatus.FAILED,
                attempts=DeliveryRecord.attempts + 1,
                last_error=INTERRUPTED,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    waiting = db.exec(
        select(DeliveryRecord)
        .where(
            DeliveryRecord.channel == DeliveryChannel.PSA,
            DeliveryRecord.status == DeliveryStatus.QUEUED,
            col(DeliveryRecord.next_attempt_at).is_not(None),
            col(DeliveryRecord.next_attempt_at) <= now,
        )
        .order_by(col(DeliveryRecord.next_attempt_at), col(DeliveryRecord.id))
        .limit(limit)
    ).all()
    due = deliveries.due_for_retry(db, now=now, channels=(DeliveryChannel.PSA,), limit=limit)
    taken = [record for record in [*waiting, *due] if _take(db, record)]
    jobs = _jobs(db, taken)
    db.commit()
    return jobs


def record_outcome(
    db: Session, record_id: int, *, error: str | None = None, retry: bool = True, text: str | None = None
) -> None:
    """Write the outcome of one post onto its record and commit.

    A failure with `retry` gets the next retry time while attempts are left
    (`deliveries.MAX_ATTEMPTS`, `deliveries.RETRY_BACKOFF`). The posted text is kept
    on the record's payload.
    """
    record = db.get(DeliveryRecord, record_id, populate_existing=True)
    if record is None:
        return
    now = utcnow()
    record.attempts += 1
    if text is not None:
        record.payload = {**(record.payload or {}), "text": text}
    if error is None:
        record.status = DeliveryStatus.SENT
        record.last_error = None
        record.next_attempt_at = None
        record.sent_at = now
    else:
        record.status = DeliveryStatus.FAILED
        record.last_error = error[: deliveries.ERROR_MAX]
        record.next_attempt_at = deliveries.next_attempt_after(record.attempts, now) if retry else None
    record.updated_at = now
    db.add(record)
    db.commit()


# ---------------------------------------------------------------------------
# The handoff screen's line
# ---------------------------------------------------------------------------


def _retrying(record: DeliveryRecord) -> bool:
    return record.next_attempt_at is not None and record.attempts < deliveries.MAX_ATTEMPTS


def _escalation_part(record: DeliveryRecord) -> str:
    ticket = _ticket_label(record.payload.get("ticket_id"))
    if record.status == DeliveryStatus.SENT:
        return f"Posted to PSA ticket {ticket} ✓"
    if record.status == DeliveryStatus.QUEUED:
        if record.next_attempt_at is not None:
            return f"PSA note for ticket {ticket} waits for the AI summary"
        return f"Posting to PSA ticket {ticket}…"
    if record.status == DeliveryStatus.SKIPPED:
        return f"PSA note skipped: {record.last_error or 'not sent'}"
    return f"PSA note failed: {record.last_error or 'unknown error'}" + (
        " (will retry)" if _retrying(record) else ""
    )


def _claim_part(record: DeliveryRecord) -> str:
    if record.status == DeliveryStatus.SENT:
        return "pick-up note ✓"
    if record.status == DeliveryStatus.QUEUED:
        return "pick-up note pending"
    if record.status == DeliveryStatus.SKIPPED:
        return f"pick-up note skipped: {record.last_error or 'not sent'}"
    return f"pick-up note failed: {record.last_error or 'unknown error'}" + (
        " (will retry)" if _retrying(record) else ""
    )


def psa_status_line(*, db: Session, actor: Actor, handoff_id: str | uuid.UUID) -> str:
    """The handoff screen's PSA line, e.g. "Posted to PSA ticket #123 ✓ · pick-up note ✓",
    "PSA note failed: PSA ticket #123 not found", or "" when no note was made.

    Any member of the handoff's account may read it; another account's handoff is
    NotFound.
    """
    handoff = db.get(SessionHandoff, parse_handoff_id(handoff_id))
    if handoff is None or handoff.account_id != actor.account_id:
        raise NotFound("Handoff not found.")
    records = db.exec(
        select(DeliveryRecord).where(
            DeliveryRecord.handoff_id == handoff.id,
            DeliveryRecord.account_id == actor.account_id,
            DeliveryRecord.channel == DeliveryChannel.PSA,
        )
    ).all()
    by_kind = {r.kind: r for r in records}
    escalation, claim = by_kind.get(KIND_PSA_ESCALATION), by_kind.get(KIND_PSA_CLAIM)
    if escalation is None and claim is None:
        return ""
    if escalation is None:
        assert claim is not None
        part = _claim_part(claim)
        return f"PSA ticket {_ticket_label(claim.payload.get('ticket_id'))}: {part}"
    parts = [_escalation_part(escalation)]
    if claim is not None:
        parts.append(_claim_part(claim))
    return " · ".join(parts)
