"""Small input checks shared by the domain functions."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from escalation_app.domain.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)


def choice(value: str | None, enum: type[E], label: str, default: E | None = None) -> E:
    """Parse `value` as one of `enum`'s values or raise InvalidInput naming them."""
    if (value is None or value == "") and default is not None:
        return default
    try:
        return enum(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidInput(f"{label} must be one of: {allowed}.") from None


def text(value: str | None, label: str, *, max_length: int, required: bool = False) -> str:
    """Strip `value` and check it is present (when required) and not too long."""
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise InvalidInput(f"{label} is required.")
    if len(cleaned) > max_length:
        raise InvalidInput(f"{label} must be at most {max_length:,} characters.")
    return cleaned
