"""/admin/users."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.layout import page_heading, shown_when, template
from escalation_app.pages.login import labelled_input
from escalation_app.state.admin import UsersAdminState

ROLES = ["owner", "admin", "engineer", "viewer"]


def role_select(name: str, default: str = "engineer", **props) -> rx.Component:
    return rx.el.select(
        *[rx.el.option(r.capitalize(), value=r) for r in ROLES],
        name=name,
        default_value=default,
        class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
        **props,
    )


def add_user_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("user-plus", size=16), "Add user")),
        rx.dialog.content(
            rx.dialog.title("Add user"),
            rx.form(
                rx.vstack(
                    labelled_input("Name", "display_name", required=True),
                    labelled_input("Email", "email", type="email", required=True),
                    rx.vstack(
                        rx.el.label(
                            "Role",
                            html_for="role",
                            style={"font_size": "var(--font-size-2)", "font_weight": "500"},
                        ),
                        role_select("role", id="role", style={"width": "100%"}),
                        spacing="1",
                        width="100%",
                    ),
                    labelled_input(
                        "Initial password", "password", type="password", required=True, min_length=8
                    ),
                    rx.hstack(
                        rx.dialog.close(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                        ),
                        rx.button("Add user", type="submit"),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    margin_top="1rem",
                ),
                on_submit=UsersAdminState.add_user,
            ),
        ),
        open=UsersAdminState.add_open,
        on_open_change=UsersAdminState.set_add_open,
    )


def user_row(user) -> rx.Component:
    is_me = user["id"] == UsersAdminState.me_id
    return rx.table.row(
        rx.table.row_header_cell(user["name"]),
        rx.table.cell(user["email"]),
        rx.table.cell(
            rx.cond(
                is_me,
                rx.badge(user["role"], variant="soft"),
                rx.el.select(
                    *[rx.el.option(r.capitalize(), value=r) for r in ROLES],
                    value=user["role"],
                    aria_label="Role for " + user["name"],
                    on_change=lambda role: UsersAdminState.change_role(user["id"], role),
                    class_name="rt-reset rt-SelectTrigger rt-r-size-1 rt-variant-surface",
                ),
            )
        ),
        rx.table.cell(
            rx.cond(
                user["active"] == "yes",
                rx.badge("Active", color_scheme="green", variant="soft"),
                rx.badge("Deactivated", color_scheme="gray", variant="soft"),
            )
        ),
        rx.table.cell(
            rx.cond(
                (user["active"] == "yes") & ~is_me,
                rx.button(
                    "Deactivate",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=UsersAdminState.deactivate(user["id"]),
                    aria_label="Deactivate " + user["name"],
                ),
            )
        ),
    )


@template(route=routes.ADMIN_USERS, title="Users", on_load=UsersAdminState.load)
def admin_users_page() -> rx.Component:
    return shown_when(
        UsersAdminState.allowed,
        rx.vstack(
            page_heading(
                "Users", add_user_dialog(), subtitle="Who can sign in to your account, and what they may do."
            ),
            rx.card(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(c)
                                for c in ("Name", "Email", "Role", "Status", "Actions")
                            ]
                        )
                    ),
                    rx.table.body(rx.foreach(UsersAdminState.users, user_row)),
                    variant="ghost",
                ),
                width="100%",
                overflow_x="auto",
            ),
            width="100%",
        ),
        UsersAdminState.loaded,
        "Only account owners and admins can manage users.",
    )
