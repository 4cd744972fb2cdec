"""Snooze ("Wake me") on a parked session: the park dialog's fields and the session's panel."""

from __future__ import annotations

import reflex as rx

from escalation_app.components.badges import relative_time
from escalation_app.components.casework import LABEL_STYLE, SELECT_CLASS

WAKE_CHOICES = (
    ("none", "Don't wake me"),
    ("1h", "In 1 hour"),
    ("tomorrow", "Tomorrow 9:00 (the account's time zone)"),
    ("at", "At a date and time…"),
)


def wake_fields(prefix: str = "") -> list[rx.Component]:
    """The "Wake me" choice and the date-and-time it uses when "At a date and time…" is chosen."""
    wake_id, at_id = f"{prefix}wake", f"{prefix}wake_at"
    return [
        rx.vstack(
            rx.el.label("Wake me", html_for=wake_id, style=LABEL_STYLE),
            rx.el.select(
                *[rx.el.option(label, value=value) for value, label in WAKE_CHOICES],
                id=wake_id,
                name="wake",
                default_value="none",
                class_name=SELECT_CLASS,
                style={"width": "100%"},
            ),
            spacing="1",
            width="100%",
        ),
        rx.vstack(
            rx.el.label(
                "Wake-up date and time (for “At a date and time…”)", html_for=at_id, style=LABEL_STYLE
            ),
            rx.input(id=at_id, name="wake_at", type="datetime-local", width="100%"),
            spacing="1",
            width="100%",
        ),
    ]


def snooze_panel(state) -> rx.Component:
    """On a parked session: when it wakes (or woke), with Un-snooze and a new wake-up."""
    return rx.cond(
        state.parked & state.is_owner,
        rx.callout.root(
            rx.callout.icon(rx.icon("alarm-clock")),
            rx.vstack(
                rx.cond(
                    state.wake_at != "",
                    rx.hstack(
                        rx.text("Snoozed: wakes ", rx.text.strong(state.wake_label), size="2", id="wakes-at"),
                        rx.button(
                            "Un-snooze", size="1", variant="soft", on_click=state.unsnooze, loading=state.busy
                        ),
                        align="center",
                        spacing="3",
                    ),
                    rx.text("Parked without a wake-up.", size="2"),
                ),
                rx.cond(
                    state.woke_at != "",
                    rx.text(
                        "Woke up at ",
                        state.woke_label,
                        " · ",
                        relative_time(state.woke_at),
                        size="2",
                        id="woke-up",
                    ),
                ),
                rx.form(
                    rx.hstack(
                        *wake_fields("snooze_"),
                        rx.button("Set wake-up", type="submit", size="2", variant="soft", loading=state.busy),
                        align="end",
                        spacing="2",
                        width="100%",
                    ),
                    on_submit=state.snooze,
                ),
                spacing="2",
                width="100%",
            ),
            color_scheme="amber",
            width="100%",
            aria_label="Snooze",
        ),
    )
