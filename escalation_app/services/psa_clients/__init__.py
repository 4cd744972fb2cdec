"""The PSA vendor clients: one module per PSA, one small interface for the delivery code.

- `post_note(credentials, ticket, text, *, marker)`: post an internal note. `marker` is
  a short id the caller keeps per note job (stable across retries): the note carries
  it, and a note already carrying it is not posted again (our timeout after the PSA
  accepted, a redirect after it created the note).
- `check_connection(credentials) -> str`: Test connection's success message.

Both raise `PsaError` (message for the record and the screen, `retry` or not). The
request shapes and the public sources they were checked against are in
`connectwise.py` and `halopsa.py`.
"""

from __future__ import annotations

from escalation_app.domain.psa import PsaCredentials, PsaType
from escalation_app.services.psa_clients import connectwise, halopsa
from escalation_app.services.psa_clients.common import PsaError, check_marker, failure, http_client

__all__ = ["PsaError", "check_connection", "failure", "http_client", "post_note"]


async def post_note(
    credentials: PsaCredentials, ticket: int, text: str, *, marker: str | None = None, look_first: bool = True
) -> None:
    """Post an internal note to `ticket`; PsaError (with `retry`) on failure.

    Without a marker nothing is looked up and the note text is posted as given.
    `look_first=False` skips the look for an earlier copy before posting: for a first
    attempt, which no earlier attempt can have posted (a redirect is still checked).
    """
    vendor = connectwise if credentials.psa_type is PsaType.CONNECTWISE else halopsa
    await vendor.post_note(credentials, ticket, text, marker=check_marker(marker), look_first=look_first)


async def check_connection(credentials: PsaCredentials) -> str:
    """Call cheap read endpoints of the PSA; the success message, or PsaError."""
    vendor = connectwise if credentials.psa_type is PsaType.CONNECTWISE else halopsa
    return await vendor.check_connection(credentials)
