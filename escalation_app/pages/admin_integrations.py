"""/admin/integrations."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import relative_time
from escalation_app.components.layout import page_heading, shown_when, template
from escalation_app.pages.login import labelled_input
from escalation_app.state.integrations import IntegrationsState as S


def channel_block(label: str, name: str, value, channel: str, hint: str) -> rx.Component:
    return rx.vstack(
        labelled_input(label, name, type="url", default_value=value, placeholder="https://…"),
        rx.hstack(
            rx.text(hint, size="1", color_scheme="gray"),
            rx.spacer(),
            rx.button(
                "Send test",
                type="button",
                size="1",
                variant="soft",
                on_click=S.send_test(channel),
                loading=S.testing == channel,
                disabled=value == "",
                aria_label=f"Send test to {label.split(' ')[0]}",
            ),
            width="100%",
            align="center",
        ),
        spacing="2",
        width="100%",
    )


def psa_card() -> rx.Component:
    is_cw = S.psa_form_type == "connectwise"
    secret_placeholder = rx.cond(S.psa_has_secret, "Saved — leave blank to keep", "")
    return rx.card(
        rx.vstack(
            rx.heading("PSA ticket notes", size="3", as_="h2"),
            rx.text(
                "Escalations of sessions with a PSA ticket add an internal note to that ticket; "
                "a pick-up adds a second one.",
                size="2",
                color_scheme="gray",
            ),
            rx.cond(
                S.psa_type != "",
                rx.text("Connected: ", rx.text.strong(S.psa_label), size="2"),
            ),
            rx.form(
                rx.vstack(
                    rx.vstack(
                        rx.el.label(
                            "PSA",
                            html_for="psa_type",
                            style={"font_size": "var(--font-size-2)", "font_weight": "500"},
                        ),
                        rx.el.select(
                            rx.el.option("ConnectWise PSA", value="connectwise"),
                            rx.el.option("HaloPSA", value="halopsa"),
                            id="psa_type",
                            name="psa_type",
                            value=S.psa_form_type,
                            on_change=S.set_psa_form_type,
                            class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    labelled_input(
                        rx.cond(is_cw, "Site URL", "Base URL"),
                        "psa_url",
                        type="url",
                        default_value=S.psa_url,
                        placeholder=rx.cond(
                            is_cw, "https://na.myconnectwise.net", "https://yourmsp.halopsa.com"
                        ),
                    ),
                    rx.cond(
                        is_cw,
                        rx.vstack(
                            labelled_input("Company ID", "psa_company_id", default_value=S.psa_company_id),
                            labelled_input("Public key", "psa_public_key", default_value=S.psa_public_key),
                            labelled_input(
                                "Private key", "psa_secret", type="password", placeholder=secret_placeholder
                            ),
                            width="100%",
                        ),
                        rx.vstack(
                            labelled_input(
                                "Client secret", "psa_secret", type="password", placeholder=secret_placeholder
                            ),
                            labelled_input("Tenant (optional)", "psa_tenant", default_value=S.psa_tenant),
                            labelled_input(
                                "Note outcome (ID or name, optional)",
                                "psa_outcome",
                                default_value=S.psa_outcome,
                                placeholder="7 (Halo's built-in private note)",
                                max_length=64,
                            ),
                            labelled_input(
                                "Authorisation server URL (optional)",
                                "psa_auth_url",
                                type="url",
                                default_value=S.psa_auth_url,
                                placeholder="Found from the base URL when blank",
                            ),
                            width="100%",
                        ),
                    ),
                    labelled_input("Client ID", "psa_client_id", default_value=S.psa_client_id),
                    rx.hstack(
                        rx.cond(
                            S.psa_type != "",
                            rx.hstack(
                                rx.button(
                                    "Test connection",
                                    type="button",
                                    variant="soft",
                                    on_click=S.test_psa,
                                    loading=S.psa_testing,
                                ),
                                rx.button(
                                    "Remove",
                                    type="button",
                                    variant="soft",
                                    color_scheme="red",
                                    on_click=S.remove_psa,
                                ),
                            ),
                        ),
                        rx.spacer(),
                        rx.button("Save PSA connection", type="submit"),
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=S.save_psa,
                key=S.psa_type + S.psa_form_type + S.psa_url,
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        max_width="40rem",
    )


@template(route=routes.ADMIN_INTEGRATIONS, title="Integrations", on_load=S.load)
def admin_integrations_page() -> rx.Component:
    return shown_when(
        S.allowed,
        rx.vstack(
            page_heading("Integrations", subtitle="Chat channels and the PSA that escalations reach."),
            rx.card(
                rx.form(
                    rx.vstack(
                        channel_block(
                            "Slack webhook URL",
                            "slack_url",
                            S.slack_url,
                            "slack",
                            "An incoming webhook on hooks.slack.com.",
                        ),
                        channel_block(
                            "Teams webhook URL",
                            "teams_url",
                            S.teams_url,
                            "teams",
                            "A Microsoft Teams incoming webhook or workflow URL.",
                        ),
                        rx.hstack(
                            rx.cond(
                                S.updated_at != "",
                                rx.text(
                                    "Last changed by ",
                                    S.updated_by,
                                    " ",
                                    relative_time(S.updated_at),
                                    size="1",
                                    color_scheme="gray",
                                ),
                            ),
                            rx.spacer(),
                            rx.button("Save webhooks", type="submit"),
                            width="100%",
                            align="center",
                        ),
                        spacing="4",
                        width="100%",
                    ),
                    on_submit=S.save,
                    key=S.updated_at,
                ),
                width="100%",
                max_width="40rem",
            ),
            psa_card(),
            width="100%",
            spacing="4",
        ),
        S.loaded,
        "Only account owners and admins can manage integrations.",
    )
