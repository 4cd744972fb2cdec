"""/admin/integrations."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import relative_time
from escalation_app.components.layout import not_found_panel, page_heading, template
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


@template(route=routes.ADMIN_INTEGRATIONS, title="Integrations", on_load=S.load)
def admin_integrations_page() -> rx.Component:
    return rx.cond(
        S.allowed,
        rx.vstack(
            page_heading("Integrations", subtitle="Post every escalation to your team's chat channel."),
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
                            rx.button("Save", type="submit"),
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
            width="100%",
        ),
        rx.cond(
            S.loaded, not_found_panel("Only account owners and admins can manage integrations."), rx.spinner()
        ),
    )
