"""Status, priority and intent badges."""

from __future__ import annotations

import reflex as rx

PRIORITY_COLORS = {"low": "gray", "normal": "blue", "high": "orange", "urgent": "red"}
STATUS_COLORS = {"active": "green", "paused": "amber", "escalated": "violet", "resolved": "gray"}


def priority_badge(priority) -> rx.Component:
    return rx.match(
        priority,
        *[(p, rx.badge(p.capitalize(), color_scheme=c, variant="soft")) for p, c in PRIORITY_COLORS.items()],
        rx.badge(priority),
    )


def status_badge(status, label) -> rx.Component:
    return rx.match(
        status,
        *[(s, rx.badge(label, color_scheme=c, variant="soft")) for s, c in STATUS_COLORS.items()],
        rx.badge(label),
    )


def intent_badge(intent, label) -> rx.Component:
    return rx.cond(
        intent == "escalate",
        rx.badge(label, color_scheme="violet", variant="surface"),
        rx.badge(label, color_scheme="amber", variant="surface"),
    )


def relative_time(iso) -> rx.Component:
    """'4 minutes ago', re-rendered every minute; the exact time on hover."""
    return rx.moment(iso, from_now=True, interval=60_000, title=iso)
