"""The shared page frame: header with navigation, and the page registration decorator."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from escalation_app import routes
from escalation_app.components.post_form import post_form
from escalation_app.state.base import AppState
from escalation_app.state.bell import BellState

PRODUCT = "Escalation Desk"


def nav_link(label: str, href: str) -> rx.Component:
    return rx.link(label, href=href, size="2", weight="medium", color_scheme="gray", high_contrast=True)


def bell_item(item) -> rx.Component:
    return rx.dropdown_menu.item(
        rx.vstack(
            rx.hstack(
                rx.cond(
                    item["read"] == "",
                    rx.box(width="6px", height="6px", border_radius="50%", background="var(--accent-9)"),
                ),
                rx.text(
                    item["title"],
                    size="2",
                    weight=rx.cond(item["read"] == "", "bold", "regular"),
                    trim="both",
                ),
                align="center",
                spacing="2",
            ),
            rx.text(
                item["body"],
                " · ",
                rx.moment(item["created_at"], from_now=True),
                size="1",
                color_scheme="gray",
            ),
            spacing="0",
            align="start",
        ),
        on_select=BellState.open_item(item["id"]),
        height="auto",
        padding_y="0.4rem",
    )


def bell() -> rx.Component:
    return rx.dropdown_menu.root(
        rx.dropdown_menu.trigger(
            rx.button(
                rx.icon("bell", size=16),
                rx.cond(
                    BellState.unread > 0,
                    rx.badge(BellState.unread, color_scheme="red", variant="solid", radius="full"),
                ),
                variant="ghost",
                size="2",
                aria_label=rx.cond(
                    BellState.unread > 0,
                    "Notifications, " + BellState.unread.to_string() + " unread",
                    "Notifications",
                ),
            )
        ),
        rx.dropdown_menu.content(
            rx.hstack(
                rx.text("Notifications", weight="bold", size="2"),
                rx.spacer(),
                rx.button("Mark all read", size="1", variant="ghost", on_click=BellState.mark_all_read),
                align="center",
                padding="0.25rem 0.5rem",
                width="100%",
            ),
            rx.dropdown_menu.separator(),
            rx.cond(
                BellState.items.length() > 0,
                rx.foreach(BellState.items, bell_item),
                rx.text("Nothing yet.", size="2", color_scheme="gray", padding="0.5rem"),
            ),
            max_width="24rem",
            max_height="28rem",
            overflow_y="auto",
        ),
    )


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
                    rx.cond(AppState.is_manager, nav_link("Analytics", routes.ANALYTICS)),
                    rx.cond(AppState.is_manager, nav_link("Users", routes.ADMIN_USERS)),
                    rx.cond(AppState.is_manager, nav_link("Integrations", routes.ADMIN_INTEGRATIONS)),
                    rx.cond(AppState.is_manager, nav_link("Policy", routes.ADMIN_POLICY)),
                    spacing="4",
                    wrap="wrap",
                ),
                aria_label="Main",
            ),
            rx.spacer(),
            rx.hstack(
                bell(),
                rx.text(AppState.user_name, size="2", weight="medium"),
                rx.badge(AppState.user_role, variant="soft", color_scheme="gray"),
                # Posts to the backend, which ends the sign-in and clears the HttpOnly cookie.
                post_form(
                    rx.button("Sign out", type="submit", variant="soft", size="1"),
                    action=AppState.sign_out_action,
                ),
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
        loads = [on_load] if on_load is not None else []
        # Every signed-in page reads the bell and joins the account's live room.
        loads.append(BellState.load)

        @rx.page(route=route, title=f"{title} — {PRODUCT}", on_load=loads)
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


def shown_when(shown, body: rx.Component, loaded, refused: str) -> rx.Component:
    """`body` once it may be shown; the refusal once loading ended without it; a spinner meanwhile."""
    return rx.cond(shown, body, rx.cond(loaded, not_found_panel(refused), rx.spinner()))
