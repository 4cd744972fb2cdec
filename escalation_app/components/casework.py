"""Pieces of the after-the-pick-up forms: a dialog holding a form, selects, text areas."""

from __future__ import annotations

import reflex as rx

SELECT_CLASS = "rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface"
LABEL_STYLE = {"font_size": "var(--font-size-2)", "font_weight": "500"}


def text_field(label: str, name: str, *, max_length: int, rows: str = "3", **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=name, style=LABEL_STYLE),
        rx.text_area(id=name, name=name, width="100%", max_length=max_length, rows=rows, **props),
        spacing="1",
        width="100%",
    )


def select_field(
    label: str, name: str, options, *, first: tuple[str, str] | None = None, **props
) -> rx.Component:
    """A native select of `options` (a list var of {"value"/"id", "label"/"name"})."""
    return rx.vstack(
        rx.el.label(label, html_for=name, style=LABEL_STYLE),
        rx.el.select(
            *([rx.el.option(first[1], value=first[0])] if first else []),
            rx.foreach(options, lambda o: rx.el.option(o["label"], value=o["value"])),
            id=name,
            name=name,
            class_name=SELECT_CLASS,
            style={"width": "100%"},
            **props,
        ),
        spacing="1",
        width="100%",
    )


def people_select(label: str, name: str, people, *, first: tuple[str, str] | None = None) -> rx.Component:
    """A native select of teammates (a list var of {"id", "name"})."""
    return rx.vstack(
        rx.el.label(label, html_for=name, style=LABEL_STYLE),
        rx.el.select(
            *([rx.el.option(first[1], value=first[0])] if first else []),
            rx.foreach(people, lambda m: rx.el.option(m["name"], value=m["id"])),
            id=name,
            name=name,
            default_value=first[0] if first else "",
            class_name=SELECT_CLASS,
            style={"width": "100%"},
        ),
        spacing="1",
        width="100%",
    )


def priority_field() -> rx.Component:
    return rx.vstack(
        rx.el.label("Priority", html_for="priority", style=LABEL_STYLE),
        rx.el.select(
            *[rx.el.option(p.capitalize(), value=p) for p in ("low", "normal", "high", "urgent")],
            id="priority",
            name="priority",
            default_value="normal",
            class_name=SELECT_CLASS,
            style={"width": "100%"},
        ),
        spacing="1",
        width="100%",
    )


def form_dialog(
    *,
    trigger: rx.Component,
    title,
    description: str,
    fields: list[rx.Component],
    submit_label: str,
    on_submit,
    is_open,
    on_open_change,
    busy,
) -> rx.Component:
    """A dialog holding a form with Cancel and a submit button that shows progress."""
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
                        rx.button(submit_label, type="submit", loading=busy),
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


VERDICT_CHOICES = (("yes", "Yes"), ("partly", "Partly"), ("no", "No"), ("", "Skip"))


def verdict_field(likely_cause, confidence) -> rx.Component:
    """Ask "Was the AI's likely cause right?" (native radios named `ai_verdict`; Skip is the default)."""
    return rx.el.fieldset(
        rx.el.legend("Was the AI's likely cause right?", style=LABEL_STYLE),
        rx.text(
            likely_cause,
            rx.text(" (", confidence, " confidence)", color_scheme="gray", as_="span"),
            size="2",
            style={"font_style": "italic"},
        ),
        rx.hstack(
            *[
                rx.el.label(
                    rx.el.input(
                        type="radio",
                        name="ai_verdict",
                        value=value,
                        default_checked=value == "",
                    ),
                    " " + text,
                    style={"font_size": "var(--font-size-2)", "display": "flex", "gap": "0.25rem"},
                )
                for value, text in VERDICT_CHOICES
            ],
            spacing="4",
            wrap="wrap",
        ),
        style={"border": "none", "padding": "0", "margin": "0", "width": "100%"},
        aria_label="Was the AI's likely cause right?",
    )
