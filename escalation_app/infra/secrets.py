"""Encryption at rest for secrets the app stores (today: the PSA connection's secret).

The key comes from `PSA_ENCRYPTION_KEY` (one Fernet key, or "new,old" while rotating).
Without it, on the SQLite laptop default a key is generated once into `.psa-key` in the
project (git-ignored); with PostgreSQL (a real deployment, maybe several servers)
encrypting is refused until the key is configured, so no server ever encrypts with a
key the others do not have.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from escalation_app.settings import PROJECT_ROOT, get_settings

# Where the generated development key lives (module-level so tests can move it).
PSA_KEY_FILE: Path = PROJECT_ROOT / ".psa-key"


class KeyNotUsable(Exception):
    """No usable key is configured on this server; the message says what to set."""


class Undecryptable(Exception):
    """The token was not encrypted with any of this server's keys (or is damaged)."""


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
            raise KeyNotUsable(
                "PSA_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)."
            ) from None
    if settings.is_sqlite:
        return MultiFernet([Fernet(_dev_key())])
    raise KeyNotUsable(
        "PSA_ENCRYPTION_KEY is not configured: set it on every server before saving a PSA connection."
    )


def encrypt(plaintext: str) -> str:
    """Encrypt `plaintext` for storage; KeyNotUsable when no key is configured."""
    return _cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a stored token; KeyNotUsable (no key) or Undecryptable (wrong key, damaged)."""
    cipher = _cipher()
    try:
        return cipher.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError, UnicodeError):
        raise Undecryptable from None
