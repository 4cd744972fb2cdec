"""Status, priority and intent badges.

All in high contrast: Radix's soft amber and orange badges (the "High" priority, a
paused session) fall below WCAG's 4.5:1 for their small text.
"""

from __future__ import annotations

import reflex as rx

PRIORITY_COLORS = {"low": "gray", "normal": "blue", "high": "orange", "urgent": "red"}
STATUS_COLORS = {"active": "green", "paused": "amber", "escalated": "violet", "resolved": "gray"}


def priority_badge(priority) -> rx.Component:
    return rx.match(
        priority,
        *[
            (p, rx.badge(p.capitalize(), color_scheme=c, variant="soft", high_contrast=True))
            for p, c in PRIORITY_COLORS.items()
        ],
        rx.badge(priority),
    )


def status_badge(status, label) -> rx.Component:
    return rx.match(
        status,
        *[
            (s, rx.badge(label, color_scheme=c, variant="soft", high_contrast=True))
            for s, c in STATUS_COLORS.items()
        ],
        rx.badge(label),
    )


def intent_badge(intent, label) -> rx.Component:
    return rx.cond(
        intent == "escalate",
        rx.badge(label, color_scheme="violet", variant="surface", high_contrast=True),
        rx.badge(label, color_scheme="amber", variant="surface", high_contrast=True),
    )


def relative_time(iso) -> rx.Component:
    """'4 minutes ago', re-rendered every minute; the exact time on hover."""
    return rx.moment(iso, from_now=True, interval=60_000, title=iso)
