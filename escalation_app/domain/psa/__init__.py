"""PSA writeback: the account's PSA connection, the note texts, and the outbox
job of every note.

- `connection`: which PSA, its URL, ids and encrypted secret (owners and admins).
- `notes`: the texts of the escalation and pick-up notes, ticket number parsing.
- `delivery`: which notes exist, who posts them, their outcome, the handoff screen's line.

The HTTP side (ConnectWise PSA, HaloPSA) lives in `services/psa.py`; the encryption
keys in `infra/secrets.py`. Everything is re-exported here, so callers write
`from escalation_app.domain import psa` or `from escalation_app.domain.psa import X`.
"""

from escalation_app.domain.psa.connection import (
    CLIENT_ID_MAX,
    COMPANY_ID_MAX,
    PUBLIC_KEY_MAX,
    SECRET_MAX,
    TENANT_MAX,
    URL_MAX,
    PsaCredentials,
    PsaSecretUnreadable,
    PsaSettings,
    PsaType,
    clear_psa_connection,
    decrypt_secret,
    encrypt_secret,
    get_psa_settings,
    load_psa_credentials,
    require_psa_credentials,
    save_psa_connection,
    validate_psa_url,
)
from escalation_app.domain.psa.delivery import (
    AI_WAIT_MARGIN,
    KIND_PSA_CLAIM,
    KIND_PSA_ESCALATION,
    NO_CONNECTION,
    PsaNote,
    enqueue_claim_note,
    enqueue_escalation_note,
    prepare_note,
    psa_status_line,
    release_escalation_note,
)
from escalation_app.domain.psa.notes import (
    NOTE_MAX,
    NOTE_NOTES_MAX,
    NOTE_STEP_TEXT_MAX,
    NOTE_STEPS_MAX,
    NOTE_SUMMARY_MAX,
    claim_note,
    escalation_note,
    ticket_number,
)

__all__ = [
    "AI_WAIT_MARGIN",
    "CLIENT_ID_MAX",
    "COMPANY_ID_MAX",
    "KIND_PSA_CLAIM",
    "KIND_PSA_ESCALATION",
    "NOTE_MAX",
    "NOTE_NOTES_MAX",
    "NOTE_STEPS_MAX",
    "NOTE_STEP_TEXT_MAX",
    "NOTE_SUMMARY_MAX",
    "NO_CONNECTION",
    "PUBLIC_KEY_MAX",
    "SECRET_MAX",
    "TENANT_MAX",
    "URL_MAX",
    "PsaCredentials",
    "PsaNote",
    "PsaSecretUnreadable",
    "PsaSettings",
    "PsaType",
    "claim_note",
    "clear_psa_connection",
    "decrypt_secret",
    "encrypt_secret",
    "enqueue_claim_note",
    "enqueue_escalation_note",
    "escalation_note",
    "get_psa_settings",
    "load_psa_credentials",
    "prepare_note",
    "psa_status_line",
    "release_escalation_note",
    "require_psa_credentials",
    "save_psa_connection",
    "ticket_number",
    "validate_psa_url",
]
