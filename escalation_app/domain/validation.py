"""Small input checks shared by the domain functions.

Every text a person can store goes through `text` (or `single_line` / `email`): it is
bounded, and NUL and other control characters are refused with a clear message
(PostgreSQL cannot store NUL at all, and the others only ever come from crafted input).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email

from escalation_app.domain.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)

EMAIL_MAX = 254
# C0 controls but tab and newline, DEL, C1 controls, and the Unicode line/paragraph
# separators. Carriage returns are refused too: browsers send newlines as "\n".
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAK = re.compile(r"[\r\n]")


def choice(value: str | None, enum: type[E], label: str, default: E | None = None) -> E:
    """Parse `value` as one of `enum`'s values or raise InvalidInput naming them."""
    if (value is None or value == "") and default is not None:
        return default
    try:
        return enum(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidInput(f"{label} must be one of: {allowed}.") from None


def check_characters(value: str, label: str, *, multiline: bool = True) -> str:
    """Refuse control characters (and line breaks when not `multiline`); returns `value`."""
    if not multiline and _LINE_BREAK.search(value):
        raise InvalidInput(f"{label} must be a single line.")
    if _CONTROL.search(value):
        raise InvalidInput(f"{label} contains a control character; remove it and try again.")
    return value


def text(
    value: str | None, label: str, *, max_length: int, required: bool = False, multiline: bool = True
) -> str:
    """Strip `value` and check it is present (when required), not too long, and free of control characters."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{label} must be text.")
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise InvalidInput(f"{label} is required.")
    if len(cleaned) > max_length:
        raise InvalidInput(f"{label} must be at most {max_length:,} characters.")
    return check_characters(cleaned, label, multiline=multiline)


def single_line(value: str | None, label: str, *, max_length: int, required: bool = False) -> str:
    """`text` for names, titles and identifiers: no line breaks either."""
    return text(value, label, max_length=max_length, required=required, multiline=False)


def email(value: str | None, label: str = "Email") -> str:
    """A syntactically valid email address (at most 254 characters), lower-cased.

    Checked by `email-validator` without DNS look-ups; the length is checked first so a
    huge input costs nothing.
    """
    if value is not None and not isinstance(value, str):
        raise InvalidInput("Enter a valid email address.")
    cleaned = (value or "").strip()
    if len(cleaned) > EMAIL_MAX:
        raise InvalidInput(f"{label} must be at most {EMAIL_MAX} characters.")
    check_characters(cleaned, label, multiline=False)
    try:
        checked = validate_email(cleaned, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        raise InvalidInput("Enter a valid email address.") from None
    return checked.normalized.lower()
