"""/escalations: the team queue."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import intent_badge, priority_badge, relative_time
from escalation_app.components.clock import response_clock
from escalation_app.components.layout import page_heading, template
from escalation_app.components.live import who_is_viewing
from escalation_app.state.queue import QueueState


def queue_card(card) -> rx.Component:
    best = QueueState.best_next_id == card["id"]
    return rx.el.article(
        rx.card(
            rx.vstack(
                rx.cond(
                    best,
                    rx.badge(
                        rx.icon("sparkles", size=12),
                        "Best next for you",
                        color_scheme="grass",
                        variant="solid",
                    ),
                ),
                rx.hstack(
                    priority_badge(card["priority"]),
                    intent_badge(card["intent"], card["intent_label"]),
                    rx.cond(
                        card["level_label"] != "",
                        rx.badge(
                            card["level_label"], color_scheme="red", variant="surface", high_contrast=True
                        ),
                    ),
                    rx.cond(
                        card["woke_at"] != "",
                        rx.badge("Woke up", color_scheme="amber", variant="surface", high_contrast=True),
                    ),
                    rx.spacer(),
                    response_clock(due_at=card["due_at"], start_at=card["created_at"]),
                    rx.text(relative_time(card["created_at"]), size="1", color_scheme="gray"),
                    align="center",
                    width="100%",
                ),
                rx.link(
                    rx.heading(card["summary"], size="4", as_="h2"), href=card["href"], underline="hover"
                ),
                rx.cond(card["notes"] != "", rx.text(card["notes"], size="2", color_scheme="gray")),
                who_is_viewing(QueueState.viewing, QueueState.user_id, card["id"]),
                rx.hstack(
                    rx.text("Handed off by ", rx.text.strong(card["by"]), size="2"),
                    rx.cond(
                        card["client"] != "", rx.text("· " + card["client"], size="2", color_scheme="gray")
                    ),
                    rx.spacer(),
                    rx.cond(
                        QueueState.can_work
                        & (card["by_id"] != QueueState.user_id)
                        & (card["owner_id"] != QueueState.user_id),
                        rx.button(
                            "Pick up",
                            on_click=QueueState.pick_up(card["id"]),
                            loading=QueueState.claiming_id == card["id"],
                        ),
                    ),
                    align="center",
                    width="100%",
                    wrap="wrap",
                ),
                spacing="2",
                width="100%",
            ),
            width="100%",
            style=rx.cond(best, {"outline": "2px solid var(--grass-9)", "outline_offset": "2px"}, {}),
        ),
        key=card["id"],
        class_name=rx.cond(best, "queue-card best-next", "queue-card"),
        style={"width": "100%"},
        aria_label=card["summary"],
        data_handoff_id=card["id"],
    )


def empty_state() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("coffee", size=36, color="var(--gray-9)"),
            rx.heading("All clear", size="4"),
            rx.text(
                "No one is waiting for help right now. New escalations appear here live.", color_scheme="gray"
            ),
            align="center",
            spacing="2",
        ),
        padding="4rem 1rem",
        width="100%",
    )


@template(route=routes.ESCALATIONS, title="Escalations", on_load=QueueState.load)
def escalations_page() -> rx.Component:
    return rx.vstack(
        page_heading(
            "Escalations",
            rx.cond(
                QueueState.can_work,
                rx.button(
                    rx.icon("bell-ring", size=14),
                    "Desktop notifications",
                    variant="ghost",
                    size="1",
                    on_click=rx.call_script("window.Notification && Notification.requestPermission()"),
                    title="Get a desktop notification for each new escalation while this tab is in the background",
                ),
            ),
            subtitle="Parked and escalated sessions waiting for a senior. New ones appear here live.",
        ),
        rx.cond(
            QueueState.cards.length() > 0,
            rx.vstack(rx.foreach(QueueState.cards, queue_card), spacing="3", width="100%", id="queue"),
            rx.cond(QueueState.loaded, empty_state(), rx.spinner()),
        ),
        width="100%",
    )
