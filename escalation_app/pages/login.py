"""/login."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.layout import PRODUCT
from escalation_app.components.post_form import post_form
from escalation_app.state.auth import LoginState


def labelled_input(label: str, name: str, **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=name, style={"font_size": "var(--font-size-2)", "font_weight": "500"}),
        rx.input(id=name, name=name, size="3", width="100%", **props),
        spacing="1",
        width="100%",
    )


@rx.page(route=routes.LOGIN, title=f"Sign in — {PRODUCT}", on_load=LoginState.load)
def login_page() -> rx.Component:
    # One main landmark and an h1: the sign-in page reads well with a screen reader.
    return rx.el.main(
        rx.center(
            rx.card(
                # A plain HTML form posting to the backend: the answer sets the HttpOnly cookie.
                post_form(
                    rx.el.input(type="hidden", name="next", value=LoginState.next_path),
                    rx.vstack(
                        rx.hstack(
                            rx.icon("life-buoy", size=24),
                            rx.heading(PRODUCT, size="5", as_="h1"),
                            align="center",
                        ),
                        rx.text(
                            "Sign in to pick up where your team left off.", color_scheme="gray", size="2"
                        ),
                        labelled_input(
                            "Email",
                            "email",
                            type="email",
                            auto_complete="username",
                            required=True,
                            max_length=254,
                            # Remounted when the address of a failed attempt arrives, to show it.
                            default_value=LoginState.email,
                            key=LoginState.email,
                        ),
                        labelled_input(
                            "Password",
                            "password",
                            type="password",
                            auto_complete="current-password",
                            required=True,
                        ),
                        rx.cond(
                            LoginState.error != "",
                            rx.callout(
                                LoginState.error,
                                icon="circle-alert",
                                color_scheme="red",
                                role="alert",
                                width="100%",
                            ),
                        ),
                        rx.button(
                            "Sign in",
                            type="submit",
                            size="3",
                            width="100%",
                            # Enabled once the page knows where the backend is.
                            disabled=LoginState.sign_in_action == "",
                        ),
                        spacing="4",
                        width="100%",
                    ),
                    action=LoginState.sign_in_action,
                ),
                size="4",
                width="100%",
                max_width="26rem",
            ),
            min_height="100vh",
            padding="1rem",
            background="var(--gray-2)",
        )
    )
