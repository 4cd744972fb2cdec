"""/admin/policy: response targets, re-escalation levels, stalled claims, time zone."""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.components.badges import relative_time
from escalation_app.components.layout import page_heading, shown_when, template
from escalation_app.domain.clock import MINUTES_MAX, MINUTES_MIN
from escalation_app.pages.login import labelled_input
from escalation_app.state.policy import PolicyState as S


def minutes_input(label: str, name: str, value, *, required: bool = True) -> rx.Component:
    return labelled_input(
        label,
        name,
        type="number",
        min=MINUTES_MIN,
        max=MINUTES_MAX,
        step=1,
        default_value=value,
        required=required,
        placeholder="" if required else "Off",
    )


def people_picker(level: int, chosen, hint: str) -> rx.Component:
    return rx.el.fieldset(
        rx.el.legend(
            f"Level {level}: who is told", style={"font_weight": "500", "font_size": "var(--font-size-2)"}
        ),
        rx.text(hint, size="1", color_scheme="gray"),
        rx.flex(
            rx.foreach(
                S.people,
                lambda person: rx.el.label(
                    rx.el.input(
                        type="checkbox",
                        name=f"person_l{level}_" + person["id"],
                        default_checked=chosen.contains(person["id"]),
                    ),
                    " ",
                    person["name"],
                    style={"font_size": "var(--font-size-2)", "margin_right": "1rem"},
                ),
            ),
            wrap="wrap",
            gap="2",
        ),
        style={"border": "none", "padding": "0", "margin": "0"},
    )


@template(route=routes.ADMIN_POLICY, title="Escalation policy", on_load=S.load)
def admin_policy_page() -> rx.Component:
    return shown_when(
        S.allowed,
        rx.vstack(
            page_heading(
                "Escalation policy",
                subtitle="How long an escalation may wait, and who hears when nobody picks it up.",
            ),
            rx.card(
                rx.form(
                    rx.vstack(
                        rx.heading("Response targets (minutes to pick up)", size="3", as_="h2"),
                        rx.grid(
                            minutes_input("Urgent", "urgent_minutes", S.urgent_minutes),
                            minutes_input("High", "high_minutes", S.high_minutes),
                            minutes_input("Normal", "normal_minutes", S.normal_minutes),
                            minutes_input("Low", "low_minutes", S.low_minutes),
                            columns="4",
                            spacing="3",
                            width="100%",
                        ),
                        rx.heading("Re-escalation", size="3", as_="h2"),
                        rx.text(
                            "Level 1 is the team (or the teammate it was sent to). At its response "
                            "target an unclaimed escalation goes to level 2: bell, email and the chat "
                            "channel. Level 3 follows after a further delay, if set.",
                            size="2",
                            color_scheme="gray",
                        ),
                        people_picker(2, S.level2_ids, "None ticked: the account's owners and admins."),
                        minutes_input(
                            "Level 3 after level 2 (minutes; empty for no level 3)",
                            "level3_after_minutes",
                            S.level3_after_minutes,
                            required=False,
                        ),
                        people_picker(3, S.level3_ids, "None ticked: the account's owners."),
                        rx.heading("Claimed but stalled", size="3", as_="h2"),
                        minutes_input(
                            "Remind after this long with no step, hand-back or resolution (empty: off)",
                            "stall_minutes",
                            S.stall_minutes,
                            required=False,
                        ),
                        labelled_input(
                            "Time zone (for “tomorrow 9:00” and display)",
                            "time_zone",
                            default_value=S.time_zone,
                            placeholder="Europe/London",
                            max_length=64,
                            required=True,
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
                            rx.button("Save policy", type="submit"),
                            width="100%",
                            align="center",
                        ),
                        rx.text(
                            "Changes apply to escalations made from now on; open ones keep the "
                            "targets they were made with.",
                            size="1",
                            color_scheme="gray",
                        ),
                        spacing="3",
                        width="100%",
                    ),
                    on_submit=S.save,
                    key=S.updated_at,
                ),
                width="100%",
                max_width="44rem",
            ),
            width="100%",
            spacing="4",
        ),
        S.loaded,
        "Only account owners and admins can change the escalation policy.",
    )
