"""The learning part of /analytics: calibration, accuracy over time, per-engineer
patterns and recurring problems per client (`domain.patterns`)."""

from __future__ import annotations

import reflex as rx

from escalation_app.state.analytics import AnalyticsState as A

INDIGO, ORANGE = "#3e63dd", "#f76b15"


def _card(title: str, *children, note: str | None = None, label: str | None = None) -> rx.Component:
    return rx.card(
        rx.heading(title, size="3", as_="h2", margin_bottom="0.25rem"),
        rx.text(note, size="1", color_scheme="gray", margin_bottom="0.5rem") if note else rx.fragment(),
        *children,
        width="100%",
        overflow_x="auto",
        role="region",
        aria_label=label or title,
    )


def _table(headers: list[str], rows, cells, *, label: str) -> rx.Component:
    # Radix puts a Table.Root's props on its scroll wrapper, so the name goes on a group.
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(rows, lambda row: rx.table.row(*cells(row)))),
            variant="ghost",
            size="1",
        ),
        role="group",
        aria_label=label,
        width="100%",
    )


def _calibration(rows, label: str) -> rx.Component:
    return _table(
        ["Confidence", "Graded", "Right", "Partly", "Wrong", "Accuracy"],
        rows,
        lambda r: [
            rx.table.row_header_cell(r["confidence"]),
            rx.table.cell(r["graded"]),
            rx.table.cell(r["right"]),
            rx.table.cell(r["partly"]),
            rx.table.cell(r["wrong"]),
            rx.table.cell(r["accuracy"]),
        ],
        label=label,
    )


def calibration_card() -> rx.Component:
    return _card(
        "Was the AI's likely cause right? (90 days)",
        rx.grid(
            rx.vstack(
                rx.text("Resolvers' answers", weight="medium", size="2"),
                _calibration(A.calibration_human, "Calibration by the resolvers"),
                width="100%",
            ),
            rx.vstack(
                rx.text("Claude's grading against the fix", weight="medium", size="2"),
                _calibration(A.calibration_ai, "Calibration by AI grading"),
                width="100%",
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        note=(
            "By the assessment's own confidence: does high mean right more often than low? "
            "Accuracy counts partly as half; skipped questions are not counted."
        ),
        label="Calibration",
    )


def accuracy_card() -> rx.Component:
    return _card(
        "Assessment accuracy per week (12 weeks)",
        rx.recharts.line_chart(
            rx.recharts.line(data_key="human_accuracy", name="Resolvers", stroke=INDIGO, connect_nulls=True),
            rx.recharts.line(data_key="ai_accuracy", name="AI grading", stroke=ORANGE, connect_nulls=True),
            rx.recharts.x_axis(data_key="label"),
            rx.recharts.y_axis(domain=[0, 100], unit="%"),
            rx.recharts.graphing_tooltip(),
            rx.recharts.legend(),
            data=A.accuracy_weeks,
            height=240,
            width="100%",
        ),
    )


def engineers_card() -> rx.Component:
    return _card(
        "Escalation patterns per engineer (30 days)",
        _table(
            ["Engineer", "Escalations", "Quick fixes", "Top root causes", "Handed back to them"],
            A.engineer_patterns,
            lambda r: [
                rx.table.row_header_cell(r["name"]),
                rx.table.cell(r["escalations"]),
                rx.table.cell(r["quick"]),
                rx.table.cell(r["causes"]),
                rx.table.cell(r["hand_backs"]),
            ],
            label="Patterns per engineer",
        ),
        note="Quick fixes: resolved within 10 minutes of pick-up — a coaching signal.",
    )


def _problem(row) -> rx.Component:
    return rx.el.li(
        rx.vstack(
            rx.hstack(
                rx.text(row["client"], weight="bold", size="2"),
                rx.text(row["label"], size="2"),
                rx.badge(row["count"] + " cases", color_scheme="orange"),
                spacing="2",
                wrap="wrap",
                align="center",
            ),
            rx.hstack(
                rx.foreach(
                    A.recurring_cases,
                    lambda c: rx.cond(
                        c["key"] == row["key"], rx.link(c["summary"], href=c["href"], size="1")
                    ),
                ),
                spacing="3",
                wrap="wrap",
            ),
            spacing="1",
        ),
        style={"padding": "0.5rem 0", "border_bottom": "1px solid var(--gray-a4)", "list_style": "none"},
    )


def recurring_card() -> rx.Component:
    return _card(
        "Recurring problems per client (30 days)",
        rx.cond(
            A.recurring.length() > 0,
            rx.el.ul(rx.foreach(A.recurring, _problem), style={"padding": "0", "margin": "0"}),
            rx.text("No client had the same problem three times.", size="2", color_scheme="gray"),
        ),
        note="Three or more escalated cases of one client with the same root cause or a similar summary.",
        label="Recurring problems",
    )


def lessons_section() -> rx.Component:
    return rx.vstack(
        rx.heading("What the desk learned", size="5", as_="h2", margin_top="1rem"),
        calibration_card(),
        accuracy_card(),
        engineers_card(),
        recurring_card(),
        spacing="4",
        width="100%",
    )
