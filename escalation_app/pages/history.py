"""/history and /analytics: the managers' views."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import PRIORITY_COLORS, intent_badge, priority_badge, relative_time
from escalation_app.components.layout import page_heading, shown_when, template
from escalation_app.components.response_analytics import response_section
from escalation_app.pages.lessons import lessons_section
from escalation_app.state.analytics import AnalyticsState as A
from escalation_app.state.history import HistoryState as H

FIELD = {"font_size": "var(--font-size-1)", "font_weight": "500", "color": "var(--gray-11)"}
SELECT_CLASS = "rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface"


def field(label: str, control: rx.Component, name: str) -> rx.Component:
    return rx.vstack(rx.el.label(label, html_for=name, style=FIELD), control, spacing="1", min_width="9rem")


def choice(label: str, name: str, options: list[tuple[str, str]]) -> rx.Component:
    return field(
        label,
        rx.el.select(
            rx.el.option("Any", value=""),
            *[rx.el.option(text, value=value) for value, text in options],
            id=name,
            name=name,
            default_value=H.filters[name],
            class_name=SELECT_CLASS,
        ),
        name,
    )


def person_choice(label: str, name: str) -> rx.Component:
    return field(
        label,
        rx.el.select(
            rx.el.option("Anyone", value=""),
            rx.foreach(H.people, lambda p: rx.el.option(p["name"], value=p["id"])),
            id=name,
            name=name,
            default_value=H.filters[name],
            class_name=SELECT_CLASS,
        ),
        name,
    )


def filter_form() -> rx.Component:
    return rx.form(
        rx.flex(
            field(
                "From", rx.input(type="date", id="from", name="from", default_value=H.filters["from"]), "from"
            ),
            field("To", rx.input(type="date", id="to", name="to", default_value=H.filters["to"]), "to"),
            person_choice("Handed off by", "by"),
            person_choice("Claimed by", "claimer"),
            choice(
                "Intent", "intent", [("escalate", "Escalate"), ("park", "Park"), ("handback", "Hand back")]
            ),
            choice("Priority", "priority", [(p, p.capitalize()) for p in PRIORITY_COLORS]),
            choice(
                "Claimed",
                "claimed",
                [("claimed", "Claimed"), ("unclaimed", "Unclaimed"), ("breached", "Breached target")],
            ),
            field(
                "Search",
                rx.input(id="q", name="q", default_value=H.filters["q"], placeholder="Problem or notes"),
                "q",
            ),
            rx.hstack(
                rx.button("Apply filters", type="submit"),
                rx.button("Clear", type="button", variant="soft", color_scheme="gray", on_click=H.clear),
                align="end",
            ),
            gap="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=H.apply,
        # Re-mount with the loaded filters' values after every navigation.
        key=H.filters.to_string(),
    )


def history_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(relative_time(row["created_at"])),
        rx.table.row_header_cell(rx.link(row["summary"], href=row["href"])),
        rx.table.cell(intent_badge(row["intent"], row["intent"])),
        rx.table.cell(priority_badge(row["priority"])),
        rx.table.cell(row["by"]),
        rx.table.cell(row["claimed_by"]),
        rx.table.cell(row["wait"]),
        rx.table.cell(row["confidence"]),
        rx.table.cell(
            rx.text(row["outcome"]),
            rx.cond(row["root_cause"] != "", rx.text(row["root_cause"], size="1", color_scheme="gray")),
        ),
        rx.table.cell(row["status"]),
    )


@template(route=routes.HISTORY, title="History", on_load=H.load)
def history_page() -> rx.Component:
    return rx.vstack(
        page_heading(
            "Handoff history",
            rx.button(
                rx.icon("download", size=14),
                "Export CSV",
                variant="soft",
                on_click=H.export_csv,
                loading=H.exporting,
            ),
            subtitle="Every park and escalation, newest first.",
        ),
        rx.card(filter_form(), width="100%"),
        rx.card(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(c)
                            for c in (
                                "When",
                                "Problem",
                                "Intent",
                                "Priority",
                                "Handed off by",
                                "Claimed by",
                                "Time to claim",
                                "AI confidence",
                                "Outcome",
                                "Session now",
                            )
                        ]
                    )
                ),
                rx.table.body(rx.foreach(H.rows, history_row)),
                variant="ghost",
                size="1",
            ),
            rx.cond(
                H.loaded & (H.rows.length() == 0),
                rx.text("No handoffs match these filters.", color_scheme="gray", padding="1rem"),
            ),
            width="100%",
            overflow_x="auto",
        ),
        rx.hstack(
            rx.text(
                H.total.to_string()
                + " handoffs · page "
                + H.page.to_string()
                + " of "
                + H.page_count.to_string(),
                size="2",
                color_scheme="gray",
            ),
            rx.spacer(),
            rx.cond(H.previous_href != "", rx.link("← Previous", href=H.previous_href)),
            rx.cond(H.next_href != "", rx.link("Next →", href=H.next_href)),
            width="100%",
            spacing="4",
        ),
        width="100%",
        spacing="4",
    )


def stat_card(label: str, value, note=None) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="1", color_scheme="gray"),
            rx.heading(value, size="7"),
            rx.text(note, size="1", color_scheme="gray") if note is not None else rx.fragment(),
            spacing="1",
        ),
        flex="1",
        min_width="12rem",
    )


def chart_card(title: str, chart: rx.Component) -> rx.Component:
    return rx.card(rx.heading(title, size="3", as_="h2", margin_bottom="0.5rem"), chart, width="100%")


# SVG attributes cannot read CSS variables: Radix step-9 colours as hex.
INDIGO, ORANGE, VIOLET, GREEN = "#3e63dd", "#f76b15", "#6e56cf", "#30a46c"
PRIORITY_FILLS = {"low": "#b9bbc6", "normal": "#0090ff", "high": ORANGE, "urgent": "#e5484d"}


def bars(data, key: str, label_key: str, fill: str = INDIGO) -> rx.Component:
    return rx.recharts.bar_chart(
        rx.recharts.bar(data_key=key, fill=fill, radius=[0, 4, 4, 0]),
        rx.recharts.x_axis(type_="number", allow_decimals=False),
        rx.recharts.y_axis(data_key=label_key, type_="category", width=140, interval=0),
        rx.recharts.graphing_tooltip(),
        data=data,
        layout="vertical",
        height=320,
        width="100%",
    )


@template(route=routes.ANALYTICS, title="Analytics", on_load=A.load)
def analytics_page() -> rx.Component:
    return shown_when(
        A.allowed,
        rx.vstack(
            page_heading("Escalation analytics", subtitle="How escalations flow through your team."),
            rx.flex(
                stat_card("Escalations this week", A.this_week, A.change),
                stat_card("Last week", A.last_week),
                stat_card("Time to claim this week (median)", A.p50, "90th percentile: " + A.p90),
                stat_card("Open unclaimed now", A.open_unclaimed, "Oldest waiting: " + A.oldest),
                stat_card(
                    "Time to resolve after claim (median, 30 days)",
                    A.resolve_p50,
                    A.resolves.to_string() + " resolved · 90th percentile: " + A.resolve_p90,
                ),
                gap="3",
                wrap="wrap",
                width="100%",
            ),
            chart_card(
                "Escalations per day (30 days)",
                rx.recharts.bar_chart(
                    *[
                        rx.recharts.bar(data_key=p, stack_id="priority", fill=fill, name=p.capitalize())
                        for p, fill in PRIORITY_FILLS.items()
                    ],
                    rx.recharts.x_axis(data_key="label"),
                    rx.recharts.y_axis(allow_decimals=False),
                    rx.recharts.graphing_tooltip(),
                    rx.recharts.legend(),
                    data=A.per_day,
                    height=280,
                    width="100%",
                ),
            ),
            chart_card(
                "Time to claim per week, minutes (12 weeks)",
                rx.recharts.line_chart(
                    rx.recharts.line(
                        data_key="p50_minutes", name="Median", stroke=INDIGO, connect_nulls=True
                    ),
                    rx.recharts.line(
                        data_key="p90_minutes",
                        name="90th percentile",
                        stroke=ORANGE,
                        connect_nulls=True,
                    ),
                    rx.recharts.x_axis(data_key="label"),
                    rx.recharts.y_axis(),
                    rx.recharts.graphing_tooltip(),
                    rx.recharts.legend(),
                    data=A.claim_weeks,
                    height=260,
                    width="100%",
                ),
            ),
            response_section(),
            rx.grid(
                chart_card("Escalations per engineer", bars(A.per_engineer, "count", "name")),
                chart_card("Escalations per problem domain", bars(A.per_domain, "count", "domain", VIOLET)),
                chart_card("Top claimers", bars(A.top_claimers, "count", "name", GREEN)),
                columns=rx.breakpoints(initial="1", md="3"),
                spacing="4",
                width="100%",
            ),
            rx.grid(
                chart_card(
                    "Hand-backs and onward escalations per engineer (30 days)",
                    rx.recharts.bar_chart(
                        rx.recharts.bar(data_key="hand_backs", name="Hand-backs", fill=ORANGE, stack_id="c"),
                        rx.recharts.bar(
                            data_key="onward", name="Escalated onward", fill=VIOLET, stack_id="c"
                        ),
                        rx.recharts.x_axis(type_="number", allow_decimals=False),
                        rx.recharts.y_axis(data_key="name", type_="category", width=140, interval=0),
                        rx.recharts.graphing_tooltip(),
                        rx.recharts.legend(),
                        data=A.casework_per_engineer,
                        layout="vertical",
                        height=320,
                        width="100%",
                    ),
                ),
                chart_card(
                    "Resolutions by root cause (30 days)", bars(A.per_root_cause, "count", "label", GREEN)
                ),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="4",
                width="100%",
            ),
            lessons_section(),
            width="100%",
            spacing="4",
        ),
        A.loaded,
        "Only account owners and admins can see analytics.",
    )
