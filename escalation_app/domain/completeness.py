"""The Escalate dialog's completeness check: what a senior needs to act on an escalation.

Four items, each a hint and never a block (Send always works):
- steps logged: at least one step in the session's log;
- what the customer sees: the symptom or error, in the dialog's own field;
- client / ticket: the session names its client or its PSA ticket;
- notes long enough to act on: at least NOTES_MIN_WORDS words and NOTES_MIN_CHARS characters.

`check` is pure (the dialog runs it on what was typed; `handoffs.create_handoff` runs it
again on what was sent and stores how many items were missing on the handoff), and
`pickup_comparison` reads this account's history: how fast complete escalations were
picked up compared with incomplete ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case
from sqlmodel import Session, col, select

from escalation_app.domain.models import HandoffIntent, SessionHandoff
from escalation_app.domain.types import utcnow

NOTES_MIN_WORDS = 8
NOTES_MIN_CHARS = 40
CUSTOMER_SEES_MIN_CHARS = 10
CUSTOMER_SEES_MAX = 1000
# The comparison needs this many picked-up escalations on each side to say anything.
MIN_PER_GROUP = 5
HISTORY_DAYS = 90

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the check: its key, what it asks for, whether it is there, and the hint."""

    key: str
    label: str
    ok: bool
    hint: str


@dataclass(frozen=True, slots=True)
class Completeness:
    items: tuple[Item, ...]

    @property
    def missing(self) -> int:
        return sum(1 for item in self.items if not item.ok)

    @property
    def complete(self) -> bool:
        return self.missing == 0


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def check(
    *, step_count: int, client_name: str | None, psa_ticket_id: str | None, notes: str, customer_sees: str
) -> Completeness:
    """The completeness of an escalation about to be sent (any input is accepted)."""
    notes_text = (notes or "").strip() if isinstance(notes, str) else ""
    sees_text = (customer_sees or "").strip() if isinstance(customer_sees, str) else ""
    steps = step_count if isinstance(step_count, int) and step_count > 0 else 0
    has_client = bool((client_name or "").strip() or (psa_ticket_id or "").strip())
    notes_ok = _words(notes_text) >= NOTES_MIN_WORDS and len(notes_text) >= NOTES_MIN_CHARS
    return Completeness(
        items=(
            Item(
                "steps",
                "Steps logged",
                steps > 0,
                "Log what you tried first: the senior starts where you stopped.",
            ),
            Item(
                "customer_sees",
                "What the customer sees",
                len(sees_text) >= CUSTOMER_SEES_MIN_CHARS,
                "Say what the customer sees: the error message or the symptom.",
            ),
            Item(
                "client_ticket",
                "Client / ticket",
                has_client,
                "The session names no client or PSA ticket.",
            ),
            Item(
                "notes",
                "Notes to act on",
                notes_ok,
                f"Say what you need help with (at least {NOTES_MIN_WORDS} words).",
            ),
        )
    )


@dataclass(frozen=True, slots=True)
class PickupComparison:
    """Median time to pick-up of this account's complete and incomplete escalations."""

    complete_seconds: float
    incomplete_seconds: float
    complete_count: int
    incomplete_count: int


def pickup_comparison(
    *, db: Session, account_id: int, now: datetime | None = None, days: int = HISTORY_DAYS
) -> PickupComparison | None:
    """How fast complete escalations were picked up vs incomplete ones, over `days`.

    Counts escalations created in the window that were sent with the check (the
    completeness stored) and picked up; None unless each side has MIN_PER_GROUP.
    """
    from escalation_app.domain.analytics import _claim_seconds, _dialect, _percentiles

    now = now or utcnow()
    created = col(SessionHandoff.created_at)
    base = (
        select(
            case((col(SessionHandoff.completeness_missing) == 0, 1), else_=0).label("bucket"),
            _claim_seconds(_dialect(db)).label("secs"),
        )
        .where(
            SessionHandoff.account_id == account_id,
            SessionHandoff.intent == HandoffIntent.ESCALATE.value,
            col(SessionHandoff.completeness_missing).is_not(None),
            col(SessionHandoff.claimed_at).is_not(None),
            created >= now - timedelta(days=days),
            created <= now,
        )
        .subquery("pickups")
    )
    stats = _percentiles(db, base, (0.5,))
    complete_n, (complete_p50,) = stats.get(1, (0, [None]))
    incomplete_n, (incomplete_p50,) = stats.get(0, (0, [None]))
    if complete_n < MIN_PER_GROUP or incomplete_n < MIN_PER_GROUP:
        return None
    return PickupComparison(
        complete_seconds=round(complete_p50, 1),
        incomplete_seconds=round(incomplete_p50, 1),
        complete_count=complete_n,
        incomplete_count=incomplete_n,
    )
