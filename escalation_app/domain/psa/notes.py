"""The texts PSA notes carry, and the ticket number a session's ticket field names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from escalation_app.domain.errors import InvalidInput
from escalation_app.domain.models import SessionHandoff, SessionStep, SupportSession

NOTE_MAX = 8000
NOTE_STEPS_MAX = 30
NOTE_STEP_TEXT_MAX = 300
NOTE_NOTES_MAX = 2000
NOTE_SUMMARY_MAX = 1500


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


CASE_NOTE_TEXT_MAX = 1500


def case_note(kind: str, *, name: str = "", text: str = "", root_cause: str = "") -> str:
    """The note of a transition after the pick-up (`delivery.CASE_NOTES`). Plain text, bounded."""
    who = " ".join(str(name or "").split()) or "a teammate"
    said = _cut(text, CASE_NOTE_TEXT_MAX, one_line=False)
    if kind == "resolved":
        cause = f" (root cause: {root_cause})" if root_cause else ""
        return f"Resolved: {said or 'no details given'}{cause}"
    if kind == "handback":
        return f"Handed back to {who}" + (f". Guidance: {said}" if said else "")
    if kind == "reassigned":
        return f"Reassigned to {who}" + (f". Note: {said}" if said else "")
    if kind == "released":
        return f"Released to the queue by {who}" + (f". Reason: {said}" if said else "")
    raise ValueError(f"unknown case note {kind!r}")


def ticket_number(raw: str | None) -> int:
    """The numeric PSA ticket id of a session's ticket field ("123" or "#123")."""
    value = (raw or "").strip().removeprefix("#").strip()
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= 2**31 - 1:
        raise InvalidInput(f"PSA ticket id “{_cut(raw, 64)}” is not a ticket number")
    return int(value)


def _ticket_label(raw: str | None) -> str:
    return "#" + (raw or "").strip().removeprefix("#").strip()
