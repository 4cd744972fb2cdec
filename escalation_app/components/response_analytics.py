"""The escalation clock's part of /analytics: attainment, re-escalations, time to claim vs target."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.state.analytics import AnalyticsState as A

GREEN, RED = "#30a46c", "#e5484d"


def response_section() -> rx.Component:
    return rx.grid(
        rx.card(
            rx.heading("Response targets per week (12 weeks)", size="3", as_="h2", margin_bottom="0.5rem"),
            rx.recharts.composed_chart(
                rx.recharts.bar(data_key="met", name="Met", stack_id="t", fill=GREEN),
                rx.recharts.bar(data_key="breached", name="Breached", stack_id="t", fill=RED),
                rx.recharts.line(data_key="re_escalations", name="Re-escalations", stroke="#6e56cf"),
                rx.recharts.x_axis(data_key="label"),
                rx.recharts.y_axis(allow_decimals=False),
                rx.recharts.graphing_tooltip(),
                rx.recharts.legend(),
                data=A.response_weeks,
                height=260,
                width="100%",
            ),
            width="100%",
        ),
        rx.card(
            rx.heading("Time to claim vs target (12 weeks)", size="3", as_="h2", margin_bottom="0.5rem"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Priority"),
                        rx.table.column_header_cell("Target"),
                        rx.table.column_header_cell("Median to claim"),
                        rx.table.column_header_cell("Attainment"),
                        rx.table.column_header_cell("Escalations"),
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        A.response_priorities,
                        lambda row: rx.table.row(
                            rx.table.row_header_cell(row["priority"]),
                            rx.table.cell(row["target"]),
                            rx.table.cell(row["claim_p50"]),
                            rx.table.cell(row["attainment"]),
                            rx.table.cell(row["decided"]),
                        ),
                    )
                ),
                width="100%",
                aria_label="Time to claim vs target",
            ),
            rx.link(
                A.breached_open.to_string()
                + " waiting past their target now · every breached escalation in History",
                href=routes.HISTORY + "?claimed=breached",
                size="2",
                margin_top="0.5rem",
            ),
            width="100%",
        ),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="4",
        width="100%",
    )
