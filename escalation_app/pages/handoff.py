"""/handoffs/[handoff_id]: the handoff context screen."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import intent_badge, priority_badge, relative_time
from escalation_app.components.casework import (
    form_dialog,
    people_select,
    priority_field,
    select_field,
    text_field,
    verdict_field,
)
from escalation_app.components.layout import shown_when, template
from escalation_app.components.live import live_refresher, who_is_viewing
from escalation_app.components.similar_cases import similar_cases_panel
from escalation_app.pages.sessions import add_step_form, steps_log
from escalation_app.state.handoff import HandoffState

H = HandoffState


def fact(label: str, value) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color_scheme="gray"), rx.box(value), spacing="1")


def claim_panel() -> rx.Component:
    return rx.card(
        rx.cond(
            H.is_claimed,
            rx.hstack(
                rx.icon("user-check", size=18),
                rx.text("Claimed by ", rx.text.strong(H.claimed_by), " ", relative_time(H.claimed_at)),
                align="center",
                role="status",
            ),
            rx.hstack(
                rx.text("Waiting for a senior", weight="medium"),
                rx.spacer(),
                rx.cond(H.can_pick_up, rx.button("Pick up", on_click=H.pick_up, size="3")),
                align="center",
                width="100%",
            ),
        ),
        width="100%",
    )


def _dialog(name: str, trigger: rx.Component, title, description: str, fields, submit: str, on_submit):
    return form_dialog(
        trigger=trigger,
        title=title,
        description=description,
        fields=fields,
        submit_label=submit,
        on_submit=on_submit,
        is_open=H.open_dialog == name,
        on_open_change=lambda is_open: H.toggle_dialog(name, is_open),
        busy=H.working,
    )


def resolve_dialog() -> rx.Component:
    return _dialog(
        "resolve",
        rx.button(rx.icon("circle-check", size=16), "Resolve", color_scheme="green"),
        "Resolve with the fix",
        "The engineer who escalated hears how it was fixed.",
        [
            text_field("What fixed it", "fix", max_length=2000, rows="4", required=True),
            select_field(
                "Root cause", "root_cause", H.root_causes, first=("", "Choose a root cause…"), required=True
            ),
            rx.cond(H.grade_cause != "", verdict_field(H.grade_cause, H.grade_confidence)),
        ],
        "Resolve",
        H.resolve,
    )


def hand_back_dialog() -> rx.Component:
    return _dialog(
        "handback",
        rx.button(rx.icon("undo-2", size=16), "Hand back to " + H.owner_name, variant="soft"),
        "Hand back to " + H.owner_name,
        "The session goes back to its owner with your guidance at the top of their screen.",
        [text_field("Guidance", "guidance", max_length=5000, rows="5", required=True)],
        "Hand back",
        H.hand_back,
    )


def onward_dialog() -> rx.Component:
    return _dialog(
        "onward",
        rx.button(rx.icon("arrow-up-right", size=16), "Escalate onward", variant="soft"),
        "Escalate onward",
        "A new escalation with everything tried so far, yours included.",
        [
            text_field("Notes", "notes", max_length=5000, rows="4", placeholder="Why do you need help?"),
            priority_field(),
            people_select("Send to", "target_user_id", H.teammates, first=("", "The whole team")),
        ],
        "Send escalation",
        H.escalate_onward,
    )


def release_dialog() -> rx.Component:
    return _dialog(
        "release",
        rx.button(rx.icon("log-out", size=16), "Release to queue", variant="soft", color_scheme="gray"),
        "Release to queue",
        "It goes back in every queue, unclaimed, for someone else to pick up.",
        [text_field("Reason", "reason", max_length=2000, rows="3", required=True)],
        "Release",
        H.release,
    )


def reassign_dialog() -> rx.Component:
    return _dialog(
        "reassign",
        rx.button(rx.icon("users", size=16), "Reassign", variant="outline"),
        "Reassign",
        "Give this case to another teammate; they are told.",
        [
            people_select("Reassign to", "to_user_id", H.reassign_choices, first=("", "Choose a teammate…")),
            text_field("Note", "note", max_length=2000, rows="2"),
        ],
        "Reassign",
        H.reassign,
    )


def working_panel() -> rx.Component:
    """The claimer's working view: the case's actions (Add step sits with the steps)."""
    return rx.cond(
        H.is_assignee | H.can_reassign,
        rx.card(
            rx.vstack(
                rx.cond(
                    H.is_assignee,
                    rx.text("You are working on this for ", rx.text.strong(H.owner_name), ".", size="2"),
                    rx.text(rx.text.strong(H.assignee_name), " is working on this.", size="2"),
                ),
                rx.hstack(
                    rx.cond(
                        H.is_assignee,
                        rx.fragment(resolve_dialog(), hand_back_dialog(), onward_dialog(), release_dialog()),
                    ),
                    rx.cond(H.can_reassign, reassign_dialog()),
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="3",
                width="100%",
            ),
            width="100%",
            aria_label="Work on this case",
        ),
    )


def outcome_panel() -> rx.Component:
    return rx.cond(
        H.outcome != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("flag")),
            rx.vstack(
                rx.text(H.outcome_text, weight="bold"),
                rx.cond(H.resolution != "", rx.text("What fixed it: ", H.resolution, white_space="pre-wrap")),
                rx.cond(H.root_cause != "", rx.text("Root cause: ", H.root_cause)),
                rx.link("Session history", href=H.session_history_href, size="2"),
                spacing="1",
            ),
            color_scheme=rx.cond(H.outcome == "resolved", "green", "gray"),
            width="100%",
            role="status",
            aria_label="How it ended",
        ),
    )


def suggested_step(step) -> rx.Component:
    # The checkbox's own label (Reflex wraps box and text in one <label>): a second label
    # around it would leave the box without an accessible name.
    return rx.checkbox(
        step["text"],
        checked=step["checked"] == "yes",
        on_change=lambda checked: H.toggle_step(step["index"], checked),
        disabled=~H.can_work,
        size="2",
        style={"padding": "0.25rem 0", "cursor": "pointer", "align_items": "start"},
    )


def ai_panel() -> rx.Component:
    ready = rx.vstack(
        rx.hstack(
            rx.cond(
                H.ai_offline,
                rx.badge(H.offline_label, color_scheme="gray", size="2"),
                rx.badge("Confidence: " + H.ai_confidence, color_scheme="iris", size="2"),
            ),
            rx.spacer(),
            rx.cond(
                H.ai_generated_at != "",
                rx.text(H.ai_model, " · ", relative_time(H.ai_generated_at), size="1", color_scheme="gray"),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            H.claimed_by_me & (H.ai_start_here != ""),
            rx.callout.root(
                rx.callout.icon(rx.icon("flag")),
                rx.vstack(
                    rx.text("Start here", weight="bold"), rx.callout.text(H.ai_start_here), spacing="1"
                ),
                width="100%",
            ),
        ),
        rx.text(H.ai_summary),
        rx.cond(
            H.ai_known.length() > 0,
            rx.vstack(
                rx.heading("What we know", size="2", as_="h3"),
                rx.el.ul(rx.foreach(H.ai_known, lambda k: rx.el.li(k)), style={"padding_left": "1.25rem"}),
                spacing="1",
            ),
        ),
        rx.cond(
            H.ai_cause != "",
            rx.vstack(rx.heading("Likely cause", size="2", as_="h3"), rx.text(H.ai_cause), spacing="1"),
        ),
        rx.cond(
            H.ai_steps.length() > 0,
            rx.vstack(
                rx.heading("Suggested steps", size="2", as_="h3"),
                rx.foreach(H.ai_steps, suggested_step),
                spacing="1",
            ),
        ),
        spacing="3",
        width="100%",
    )
    return rx.el.section(
        rx.card(
            rx.heading("AI assessment", size="3", as_="h2", margin_bottom="0.75rem"),
            rx.match(
                H.ai_status,
                ("ready", ready),
                (
                    "failed",
                    rx.callout(
                        "AI assessment unavailable: " + H.ai_error,
                        icon="triangle-alert",
                        color_scheme="amber",
                    ),
                ),
                (
                    "not_needed",
                    rx.text(
                        rx.cond(
                            H.intent == "handback",
                            "A hand-back gets no AI assessment.",
                            "Parked sessions get no AI assessment.",
                        ),
                        color_scheme="gray",
                        size="2",
                    ),
                ),
                rx.vstack(
                    rx.hstack(
                        rx.text("Assessment still computing…", color_scheme="gray"),
                        rx.text(
                            rx.moment(diff=H.created_at, unit="seconds", interval=1000),
                            "s",
                            size="1",
                            color_scheme="gray",
                            aria_label="Seconds elapsed",
                        ),
                        justify="between",
                        width="100%",
                    ),
                    rx.skeleton(rx.box(height="1rem", width="100%")),
                    rx.skeleton(rx.box(height="1rem", width="80%")),
                    width="100%",
                ),
            ),
            width="100%",
        ),
        aria_label="AI assessment",
    )


def delivery_panel() -> rx.Component:
    row = lambda r: rx.table.row(  # noqa: E731
        rx.table.cell(r["channel"]),
        rx.table.cell(r["recipient"]),
        rx.table.cell(r["status"]),
        rx.table.cell(r["attempts"]),
        rx.table.cell(rx.text(r["error"], size="1", color_scheme="red")),
        rx.table.cell(
            rx.cond(
                r["can_retry"] != "",
                rx.button(
                    "Retry",
                    size="1",
                    variant="soft",
                    on_click=H.retry_delivery(r["id"]),
                    aria_label=f"Retry delivery to {r['recipient']}",
                ),
            )
        ),
    )
    return rx.cond(
        H.delivery_text != "",
        rx.el.details(
            rx.el.summary(rx.text(H.delivery_text, size="2", as_="span"), style={"cursor": "pointer"}),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(c)
                            for c in ("Channel", "To", "Status", "Attempts", "Last error", "Action")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(H.deliveries, row)),
                size="1",
            ),
            aria_label="Notification deliveries",
        ),
    )


def handoff_body() -> rx.Component:
    return rx.vstack(
        live_refresher(H.refresh, H.live_tick),
        rx.hstack(
            priority_badge(H.priority),
            intent_badge(
                H.intent,
                rx.cond(
                    H.intent == "escalate",
                    "Escalated",
                    rx.cond(H.intent == "handback", "Handed back", "Parked"),
                ),
            ),
            rx.cond(H.ticket != "", rx.badge("PSA ticket #" + H.ticket, variant="outline")),
            spacing="2",
        ),
        rx.heading(H.summary, size="7", as_="h1"),
        rx.hstack(
            fact("Client", rx.text(H.client)),
            fact("Domain", rx.text(H.domain)),
            fact("Escalated by", rx.text(H.handed_off_by)),
            fact("When", relative_time(H.created_at)),
            rx.cond(H.target_name != "", fact("Sent to", rx.text(H.target_name))),
            spacing="6",
            wrap="wrap",
        ),
        claim_panel(),
        who_is_viewing(H.viewers, H.user_id),
        outcome_panel(),
        working_panel(),
        rx.cond(
            H.psa_line != "",
            rx.text(
                rx.icon("ticket", size=14, display="inline"),
                " ",
                H.psa_line,
                size="2",
                aria_label="PSA ticket note",
            ),
        ),
        delivery_panel(),
        rx.grid(
            rx.vstack(
                rx.card(
                    rx.heading("Engineer's notes", size="3", as_="h2", margin_bottom="0.5rem"),
                    rx.cond(
                        H.notes != "",
                        rx.text(H.notes, white_space="pre-wrap"),
                        rx.text("No notes.", color_scheme="gray"),
                    ),
                    rx.cond(
                        H.customer_sees != "",
                        rx.vstack(
                            rx.text("What the customer sees", weight="medium", size="2"),
                            rx.text(H.customer_sees, white_space="pre-wrap", size="2"),
                            spacing="1",
                            margin_top="0.75rem",
                        ),
                    ),
                    width="100%",
                ),
                rx.card(
                    rx.heading("Steps tried", size="3", as_="h2", margin_bottom="0.5rem"),
                    steps_log(H.steps),
                    rx.cond(H.is_assignee, rx.box(add_step_form(H.add_step), margin_top="1rem")),
                    width="100%",
                ),
                rx.card(
                    rx.heading("Snapshot at handoff", size="3", as_="h2", margin_bottom="0.5rem"),
                    rx.hstack(
                        fact("Status then", rx.text(H.snapshot_status)),
                        fact("Confidence", rx.text(H.snapshot_confidence)),
                        fact("Steps logged", rx.text(H.snapshot_step_count)),
                        spacing="6",
                    ),
                    rx.link(
                        "Session handoff history", href=H.session_history_href, size="2", margin_top="0.5rem"
                    ),
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            rx.vstack(ai_panel(), similar_cases_panel(H.similar_cases), spacing="4", width="100%"),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


@template(route=routes.HANDOFF, title="Handoff", on_load=HandoffState.load)
def handoff_page() -> rx.Component:
    return shown_when(
        H.found,
        handoff_body(),
        H.loaded,
        "Handoff not found.",
    )


__all__ = ["handoff_page", "routes"]
