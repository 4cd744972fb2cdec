"""The handoff screen's "Similar past cases" panel (`domain.similar_cases`)."""

from __future__ import annotations

import reflex as rx


def _case(case) -> rx.Component:
    return rx.el.li(
        rx.vstack(
            rx.link(
                rx.text.strong(case["reference"]),
                " ",
                case["summary"],
                href=case["href"],
                size="2",
                weight="medium",
            ),
            rx.cond(case["meta"] != "", rx.text(case["meta"], size="1", color_scheme="gray")),
            rx.text("Fixed by ", rx.text.strong(case["fixed_by"]), " in ", case["took"], size="2"),
            rx.text("What fixed it: ", case["fix"], size="2"),
            spacing="1",
        ),
        style={"padding": "0.5rem 0", "border_top": "1px solid var(--gray-a4)"},
    )


def similar_cases_panel(cases) -> rx.Component:
    """Up to three resolved cases like this one: who fixed each, how, and how long it took."""
    return rx.el.section(
        rx.card(
            rx.heading("Similar past cases", size="3", as_="h2", margin_bottom="0.25rem"),
            rx.cond(
                cases.length() > 0,
                rx.el.ul(
                    rx.foreach(cases, _case), style={"list_style": "none", "padding": "0", "margin": "0"}
                ),
                rx.text("No resolved case like this one yet.", size="2", color_scheme="gray"),
            ),
            width="100%",
        ),
        aria_label="Similar past cases",
    )
