"""Live-update hooks in the page."""

from __future__ import annotations

import reflex as rx
from reflex_base.event import EventChain, no_args_event_spec
from reflex_base.vars.base import LiteralVar, Var, VarData


class LiveRefresher(rx.Fragment):
    """Fires an event each time the server's live push moves `tick`.

    Reflex's `on_mount` runs once per page, so this adds its own React effect keyed on
    the tick. The backend's copy of a tick stays 0, so a reconnect (which rehydrates the
    full state) moves it too, and anything missed while offline is read again.
    """

    on_change_chain: Var | None = None
    tick: Var | None = None

    @classmethod
    def create(cls, on_change, tick: Var) -> rx.Component:
        component = super().create()
        chain = EventChain.create(value=on_change, args_spec=no_args_event_spec, key="on_change")
        component.on_change_chain = LiteralVar.create(chain)
        component.tick = tick
        return component

    def add_hooks(self) -> list[str | Var]:
        chain, tick = self.on_change_chain, self.tick
        assert chain is not None and tick is not None
        return [
            Var(
                _js_expr=f"useEffect(() => {{ ({chain!s})(); }}, [{tick!s}])",
                _var_data=VarData.merge(
                    VarData(imports={"react": ["useEffect"]}),
                    tick._get_all_var_data(),
                    chain._get_all_var_data(),
                ),
            )
        ]


def live_refresher(on_change, tick: Var) -> rx.Component:
    """Calls `on_change` whenever `tick` moves (and once on mount)."""
    return LiveRefresher.create(on_change, tick)


def who_is_viewing(rows: Var, me: Var, handoff_id: Var | None = None) -> rx.Component:
    """A "Riley Chen is viewing" badge for each other person with the handoff's screen open.

    `rows` are pushed alike to everyone in a room ({handoff_id, user_id, name}), so the
    page leaves out its own user (`me`) and, on a queue card, other cards' handoffs.
    """

    def badge(row) -> rx.Component:
        shown = row["user_id"] != me
        if handoff_id is not None:
            shown = shown & (row["handoff_id"] == handoff_id)
        return rx.cond(
            shown,
            rx.badge(
                rx.icon("eye", size=12),
                row["name"] + " is viewing",
                color_scheme="amber",
                variant="soft",
                class_name="viewing",
            ),
        )

    # Empty (nobody else looking) it takes no room, not even the stack's gap around it.
    return rx.hstack(
        rx.foreach(rows, badge),
        spacing="2",
        wrap="wrap",
        aria_label="Who is viewing",
        style={"&:empty": {"display": "none"}},
    )
