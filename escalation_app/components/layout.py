"""The shared page frame: header with navigation, and the page registration decorator."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from escalation_app import routes
from escalation_app.state.base import AppState

PRODUCT = "Escalation Desk"


def nav_link(label: str, href: str) -> rx.Component:
    return rx.link(label, href=href, size="2", weight="medium", color_scheme="gray", high_contrast=True)


def header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            rx.link(
                rx.hstack(
                    rx.icon("life-buoy", size=20), rx.text(PRODUCT, size="4", weight="bold"), align="center"
                ),
                href=routes.SESSIONS,
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            rx.el.nav(
                rx.hstack(
                    nav_link("Sessions", routes.SESSIONS),
                    nav_link("Escalations", routes.ESCALATIONS),
                    rx.cond(AppState.is_manager, nav_link("History", routes.HISTORY)),
                    rx.cond(AppState.is_manager, nav_link("Users", routes.ADMIN_USERS)),
                    spacing="4",
                    wrap="wrap",
                ),
                aria_label="Main",
            ),
            rx.spacer(),
            rx.hstack(
                rx.text(AppState.user_name, size="2", weight="medium"),
                rx.badge(AppState.user_role, variant="soft", color_scheme="gray"),
                rx.button("Sign out", on_click=AppState.sign_out, variant="soft", size="1"),
                align="center",
                spacing="3",
            ),
            align="center",
            spacing="5",
            wrap="wrap",
            width="100%",
        ),
        style={
            "padding": "0.75rem 1.5rem",
            "border_bottom": "1px solid var(--gray-a5)",
            "background": "var(--color-panel-solid)",
            "position": "sticky",
            "top": "0",
            "z_index": "10",
        },
    )


def signed_in_frame(content: rx.Component) -> rx.Component:
    """Header plus the page, shown once the signed-in user is known."""
    return rx.box(
        header(),
        rx.el.main(
            rx.cond(
                AppState.signed_in,
                content,
                rx.center(rx.spinner(size="3"), padding="4rem"),
            ),
            style={"max_width": "72rem", "margin": "0 auto", "padding": "1.5rem 1rem 4rem"},
        ),
        min_height="100vh",
        background="var(--gray-2)",
    )


def template(*, route: str, title: str, on_load=None) -> Callable[[Callable[[], rx.Component]], Callable]:
    """Register a signed-in page at `route`, wrapped in the shared frame."""

    def decorator(page_fn: Callable[[], rx.Component]) -> Callable:
        @rx.page(route=route, title=f"{title} — {PRODUCT}", on_load=on_load)
        def wrapped() -> rx.Component:
            return signed_in_frame(page_fn())

        wrapped.__name__ = page_fn.__name__
        return wrapped

    return decorator


def page_heading(title, *children, subtitle=None) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.heading(title, size="6", as_="h1"),
            rx.text(subtitle, color_scheme="gray", size="2") if subtitle is not None else rx.fragment(),
            spacing="1",
        ),
        rx.spacer(),
        *children,
        align="center",
        width="100%",
        wrap="wrap",
        margin_bottom="1.25rem",
    )


def not_found_panel(message: str) -> rx.Component:
    return rx.callout(message, icon="circle-alert", color_scheme="gray", role="status")
