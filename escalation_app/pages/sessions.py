"""/sessions, /sessions/[session_id] and /sessions/[session_id]/history."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import intent_badge, priority_badge, relative_time, status_badge
from escalation_app.components.casework import select_field, verdict_field
from escalation_app.components.layout import page_heading, shown_when, template
from escalation_app.components.snooze import snooze_panel, wake_fields
from escalation_app.pages.login import labelled_input
from escalation_app.state.sessions import STEP_CHUNKS, SessionDetailState, SessionHistoryState, SessionsState


def labelled_textarea(label: str, name: str, **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=name, style={"font_size": "var(--font-size-2)", "font_weight": "500"}),
        rx.text_area(id=name, name=name, width="100%", **props),
        spacing="1",
        width="100%",
    )


def new_session_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("plus", size=16), "New session", size="2")),
        rx.dialog.content(
            rx.dialog.title("New session"),
            rx.dialog.description("What is the customer's problem?", size="2", color_scheme="gray"),
            rx.form(
                rx.vstack(
                    labelled_input("Problem summary", "problem_summary", required=True, max_length=200),
                    labelled_input(
                        "Domain", "problem_domain", placeholder="e.g. Network / VPN", max_length=80
                    ),
                    labelled_input("Client", "client_name", max_length=120),
                    labelled_input("PSA ticket", "psa_ticket_id", max_length=64),
                    rx.hstack(
                        rx.dialog.close(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                        ),
                        rx.button("Create session", type="submit", loading=SessionsState.creating),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    margin_top="1rem",
                ),
                on_submit=SessionsState.create,
                reset_on_submit=False,
            ),
        ),
        open=SessionsState.new_open,
        on_open_change=SessionsState.set_new_open,
    )


def session_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.link(row["summary"], href=row["href"], weight="medium")),
        rx.table.cell(row["client"]),
        rx.table.cell(status_badge(row["status"], row["status_label"])),
        rx.table.cell(row["steps"]),
        rx.table.cell(relative_time(row["updated_at"])),
    )


@template(route=routes.SESSIONS, title="Sessions", on_load=SessionsState.load)
def sessions_page() -> rx.Component:
    return rx.vstack(
        page_heading("My sessions", new_session_dialog(), subtitle="Support sessions you are working on."),
        rx.cond(
            SessionsState.rows.length() > 0,
            rx.card(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Problem"),
                            rx.table.column_header_cell("Client"),
                            rx.table.column_header_cell("Status"),
                            rx.table.column_header_cell("Steps"),
                            rx.table.column_header_cell("Last activity"),
                        )
                    ),
                    rx.table.body(rx.foreach(SessionsState.rows, session_row)),
                    variant="ghost",
                    width="100%",
                ),
                width="100%",
                overflow_x="auto",
            ),
            rx.cond(
                SessionsState.loaded,
                rx.callout("No sessions yet. Start one with New session.", icon="info", width="100%"),
            ),
        ),
        width="100%",
    )


def step_item(step) -> rx.Component:
    return rx.el.li(
        rx.hstack(
            rx.badge(step["position"], variant="outline", radius="full"),
            rx.vstack(
                rx.text(step["tried"], weight="medium"),
                rx.text(step["result"], color_scheme="gray", size="2"),
                spacing="1",
            ),
            rx.cond(step["skipped"] == "yes", rx.badge("Skipped", color_scheme="gray")),
            align="start",
            spacing="3",
        ),
        style={"padding": "0.75rem 0", "border_bottom": "1px solid var(--gray-a4)", "list_style": "none"},
    )


def steps_log(*chunks, count=None) -> rx.Component:
    """The step log: one list var, or the session screen's chunks (with their `count`)."""
    count = chunks[0].length() if count is None else count
    return rx.cond(
        count > 0,
        rx.el.ol(
            *[rx.foreach(chunk, step_item) for chunk in chunks],
            style={"padding": "0", "margin": "0"},
            aria_label="Steps tried",
        ),
        rx.text("Nothing tried yet.", color_scheme="gray", size="2"),
    )


def priority_select() -> rx.Component:
    return rx.vstack(
        rx.el.label(
            "Priority", html_for="priority", style={"font_size": "var(--font-size-2)", "font_weight": "500"}
        ),
        rx.el.select(
            rx.el.option("Low", value="low"),
            rx.el.option("Normal", value="normal"),
            rx.el.option("High", value="high"),
            rx.el.option("Urgent", value="urgent"),
            id="priority",
            name="priority",
            default_value="normal",
            class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
            style={"width": "100%"},
        ),
        spacing="1",
        width="100%",
    )


def target_select() -> rx.Component:
    return rx.vstack(
        rx.el.label(
            "Send to",
            html_for="target_user_id",
            style={"font_size": "var(--font-size-2)", "font_weight": "500"},
        ),
        rx.el.select(
            rx.el.option("The whole team", value=""),
            rx.foreach(SessionDetailState.teammates, lambda m: rx.el.option(m["name"], value=m["id"])),
            id="target_user_id",
            name="target_user_id",
            default_value="",
            class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
            style={"width": "100%"},
        ),
        spacing="1",
        width="100%",
    )


def form_dialog(
    *,
    trigger: rx.Component,
    title: str,
    description: str,
    fields: list[rx.Component],
    submit_label: str,
    on_submit,
    is_open,
    on_open_change,
) -> rx.Component:
    """A dialog holding a form with Cancel and a submit button that shows progress."""
    S = SessionDetailState
    return rx.dialog.root(
        rx.dialog.trigger(trigger),
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(description, size="2", color_scheme="gray"),
            rx.form(
                rx.vstack(
                    *fields,
                    rx.hstack(
                        rx.dialog.close(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                        ),
                        rx.button(submit_label, type="submit", loading=S.busy),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    margin_top="1rem",
                ),
                on_submit=on_submit,
            ),
        ),
        open=is_open,
        on_open_change=on_open_change,
    )


# The check follows the typing after a pause this long: one round trip per pause, never
# one per keystroke (the text areas stay uncontrolled, so typing never waits for it).
TYPING_PAUSE_MS = 350


def completeness_item(item) -> rx.Component:
    return rx.el.li(
        rx.hstack(
            rx.cond(
                item["ok"] == "yes",
                rx.icon("circle-check", size=14, color="var(--green-11)"),
                rx.icon("circle-dashed", size=14, color="var(--amber-11)"),
            ),
            rx.vstack(
                rx.text(item["label"], size="1", weight="medium"),
                rx.cond(item["ok"] != "yes", rx.text(item["hint"], size="1", color_scheme="gray")),
                spacing="0",
            ),
            spacing="2",
            align="start",
        ),
        data_ok=item["ok"],
        style={"list_style": "none", "padding": "0.15rem 0"},
    )


def completeness_check() -> rx.Component:
    """Hints while typing (never a block: Send always works), and this account's history."""
    S = SessionDetailState
    return rx.box(
        rx.text(
            rx.cond(
                S.completeness_missing == 0,
                "Ready: a senior can act on this.",
                "Before you send (optional): " + S.completeness_missing.to_string() + " to add",
            ),
            size="1",
            weight="medium",
        ),
        rx.el.ul(rx.foreach(S.completeness, completeness_item), style={"padding": "0", "margin": "0"}),
        rx.cond(S.pickup_text != "", rx.text(S.pickup_text, size="1", color_scheme="iris")),
        aria_label="Completeness check",
        role="status",
        width="100%",
        style={"border": "1px solid var(--gray-a5)", "border_radius": "var(--radius-2)", "padding": "0.5rem"},
    )


def senior_questions() -> rx.Component:
    """The "What will the senior ask?" hint: only with an API key; nothing shows when it gives nothing."""
    S = SessionDetailState
    return rx.cond(
        S.ai_hints,
        rx.vstack(
            rx.button(
                rx.icon("message-circle-question", size=14),
                "What will the senior ask?",
                type="button",
                variant="ghost",
                size="1",
                loading=S.asking_senior,
                on_click=S.ask_senior,
            ),
            rx.cond(
                S.senior_questions.length() > 0,
                rx.el.ul(
                    rx.foreach(S.senior_questions, lambda q: rx.el.li(rx.text(q, size="1"))),
                    aria_label="What the senior will ask",
                    style={"margin": "0", "padding_left": "1.25rem"},
                ),
            ),
            spacing="1",
            width="100%",
        ),
    )


def escalate_dialog() -> rx.Component:
    S = SessionDetailState
    return form_dialog(
        trigger=rx.button(
            rx.icon("arrow-up-right", size=16),
            "Escalate",
            disabled=S.escalate_blocked_reason != "",
            title=S.escalate_blocked_reason,
        ),
        title="Escalate to your team",
        description="A senior picks it up with everything you tried so far.",
        fields=[
            labelled_textarea(
                "Notes",
                "notes",
                placeholder="Why do you need help?",
                max_length=5000,
                rows="4",
                on_change=S.notes_typed.debounce(TYPING_PAUSE_MS),
            ),
            labelled_textarea(
                "What the customer sees",
                "customer_sees",
                placeholder="The error message or symptom, in their words",
                max_length=1000,
                rows="2",
                on_change=S.sees_typed.debounce(TYPING_PAUSE_MS),
            ),
            priority_select(),
            target_select(),
            completeness_check(),
            senior_questions(),
        ],
        submit_label="Send escalation",
        on_submit=S.escalate,
        is_open=S.escalate_open,
        on_open_change=S.set_escalate_open,
    )


def park_dialog() -> rx.Component:
    S = SessionDetailState
    return form_dialog(
        trigger=rx.button(
            rx.icon("pause", size=16),
            "Park",
            variant="soft",
            disabled=S.park_blocked_reason != "",
            title=S.park_blocked_reason,
        ),
        title="Park this session",
        description="Pause it, e.g. while you wait for the customer.",
        fields=[
            labelled_textarea(
                "Notes", "notes", placeholder="What are you waiting for?", max_length=5000, rows="3"
            ),
            *wake_fields(),
        ],
        submit_label="Park session",
        on_submit=S.park,
        is_open=S.park_open,
        on_open_change=S.set_park_open,
    )


def add_step_form(on_submit=None) -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Log a step", size="3", as_="h2"),
            labelled_input("What I tried", "tried", required=True, max_length=2000),
            labelled_input("Result", "result", max_length=2000),
            rx.button("Add step", type="submit", variant="soft"),
            spacing="3",
            width="100%",
        ),
        on_submit=on_submit or SessionDetailState.add_step,
        reset_on_submit=True,
    )


def resolve_dialog() -> rx.Component:
    S = SessionDetailState
    return form_dialog(
        trigger=rx.button(
            "Resolve",
            variant="outline",
            color_scheme="green",
            # Radix's green outline text is below 4.5:1 on white.
            high_contrast=True,
            disabled=S.status == "resolved",
            title=rx.cond(S.status == "resolved", "Already resolved.", ""),
        ),
        title="Resolve with the fix",
        description="What fixed it goes into the session's history.",
        fields=[
            labelled_textarea("What fixed it", "fix", max_length=2000, rows="4", required=True),
            select_field(
                "Root cause", "root_cause", S.root_causes, first=("", "Choose a root cause…"), required=True
            ),
            rx.cond(S.grade_cause != "", verdict_field(S.grade_cause, S.grade_confidence)),
        ],
        submit_label="Resolve",
        on_submit=S.resolve,
        is_open=S.resolve_open,
        on_open_change=S.set_resolve_open,
    )


def guidance_callout() -> rx.Component:
    s = SessionDetailState
    return rx.cond(
        s.guidance != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("message-square-reply")),
            rx.vstack(
                rx.text(
                    rx.text.strong(s.guidance_by), " handed this back to you ", relative_time(s.guidance_at)
                ),
                rx.callout.text(s.guidance, white_space="pre-wrap"),
                spacing="1",
            ),
            color_scheme="iris",
            width="100%",
            aria_label="Guidance",
            role="note",
        ),
    )


def working_note() -> rx.Component:
    s = SessionDetailState
    return rx.fragment(
        rx.cond(
            s.is_owner & (s.assignee_name != ""),
            rx.callout(
                rx.text(rx.text.strong(s.assignee_name), " picked this up and is working on it."),
                icon="user-check",
                width="100%",
            ),
        ),
        rx.cond(
            ~s.is_owner,
            rx.callout(
                rx.text("You are working on this for ", rx.text.strong(s.owner_name), "."),
                icon="user-check",
                width="100%",
            ),
        ),
        rx.cond(
            s.resolution != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("circle-check")),
                rx.vstack(
                    rx.text("What fixed it", weight="bold"),
                    rx.callout.text(s.resolution, white_space="pre-wrap"),
                    rx.text("Root cause: ", s.root_cause, size="2"),
                    spacing="1",
                ),
                color_scheme="green",
                width="100%",
                aria_label="Resolution",
            ),
        ),
    )


def session_detail_body() -> rx.Component:
    s = SessionDetailState
    return rx.vstack(
        guidance_callout(),
        page_heading(
            s.summary,
            rx.hstack(
                resolve_dialog(),
                park_dialog(),
                escalate_dialog(),
                spacing="2",
                wrap="wrap",
            ),
        ),
        rx.hstack(
            rx.text("Status", size="2", color_scheme="gray"),
            rx.box(status_badge(s.status, s.status_label), aria_label="Status", role="status"),
            rx.text("Client", size="2", color_scheme="gray"),
            rx.text(s.client, size="2"),
            rx.text("Domain", size="2", color_scheme="gray"),
            rx.text(s.domain, size="2"),
            rx.cond(s.ticket != "", rx.text("PSA ticket #" + s.ticket, size="2")),
            rx.link(
                "Handoff history",
                href=routes.SESSIONS + "/" + s.session_pk.to_string() + "/history",
                size="2",
            ),
            spacing="3",
            align="center",
            wrap="wrap",
        ),
        working_note(),
        snooze_panel(s),
        rx.grid(
            rx.card(
                rx.heading("Steps tried", size="3", as_="h2", margin_bottom="0.5rem"),
                steps_log(*[getattr(s, f"steps_{i}") for i in range(STEP_CHUNKS)], count=s.step_count),
            ),
            rx.card(
                rx.cond(
                    s.can_add_step, add_step_form(), rx.text("This session is resolved.", color_scheme="gray")
                )
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


@template(route=routes.SESSION_DETAIL, title="Session", on_load=SessionDetailState.load)
def session_detail_page() -> rx.Component:
    return shown_when(
        SessionDetailState.found,
        session_detail_body(),
        SessionDetailState.loaded,
        "Session not found.",
    )


def history_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(relative_time(row["created_at"]), href=row["href"])),
        rx.table.cell(intent_badge(row["intent"], row["intent_label"])),
        rx.table.cell(priority_badge(row["priority"])),
        rx.table.cell(row["by"]),
        rx.table.cell(row["claimed_by"]),
        rx.table.cell(rx.cond(row["claimed_at"] != "", relative_time(row["claimed_at"]), rx.text("—"))),
        rx.table.cell(row["outcome"]),
        rx.table.cell(rx.text(row["notes"], size="2", trim="both")),
    )


def timeline_item(entry) -> rx.Component:
    return rx.el.li(
        rx.vstack(
            rx.hstack(
                rx.text(entry["text"], weight="medium", size="2"),
                rx.text(relative_time(entry["created_at"]), size="1", color_scheme="gray"),
                spacing="2",
                align="baseline",
                wrap="wrap",
            ),
            rx.cond(
                entry["note"] != "",
                rx.text(entry["note"], size="2", color_scheme="gray", white_space="pre-wrap"),
            ),
            spacing="1",
        ),
        data_kind=entry["kind"],
        style={"padding": "0.5rem 0", "border_bottom": "1px solid var(--gray-a4)", "list_style": "none"},
    )


def case_story() -> rx.Component:
    h = SessionHistoryState
    return rx.cond(
        h.timeline.length() > 0,
        rx.card(
            rx.vstack(
                rx.heading("Who held it", size="3", as_="h2"),
                rx.text(h.chain, aria_label="Chain", size="3", weight="medium"),
                rx.cond(
                    h.resolution != "",
                    rx.callout.root(
                        rx.callout.icon(rx.icon("circle-check")),
                        rx.vstack(
                            rx.text("What fixed it", weight="bold"),
                            rx.callout.text(h.resolution, white_space="pre-wrap"),
                            rx.text("Root cause: ", h.root_cause, size="2"),
                            spacing="1",
                        ),
                        color_scheme="green",
                        width="100%",
                        aria_label="Resolution",
                    ),
                ),
                rx.el.ol(
                    rx.foreach(h.timeline, timeline_item),
                    style={"padding": "0", "margin": "0"},
                    aria_label="Timeline",
                ),
                spacing="3",
                width="100%",
            ),
            width="100%",
        ),
    )


@template(route=routes.SESSION_HISTORY, title="Handoff history", on_load=SessionHistoryState.load)
def session_history_page() -> rx.Component:
    h = SessionHistoryState
    return shown_when(
        h.found,
        rx.vstack(
            page_heading(
                "Handoff history", rx.link("Back to session", href=h.session_href), subtitle=h.summary
            ),
            case_story(),
            rx.cond(
                h.rows.length() > 0,
                rx.card(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(c)
                                    for c in (
                                        "When",
                                        "Intent",
                                        "Priority",
                                        "Handed off by",
                                        "Claimed by",
                                        "Claimed",
                                        "Outcome",
                                        "Notes",
                                    )
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(h.rows, history_row)),
                        variant="ghost",
                    ),
                    width="100%",
                    overflow_x="auto",
                ),
                rx.callout("This session has not been handed off yet.", icon="info"),
            ),
            width="100%",
        ),
        h.loaded,
        "Session not found.",
    )
