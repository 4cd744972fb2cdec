"""Live-update hooks in the page."""

from __future__ import annotations

import reflex as rx
from reflex_base.event import EventChain, no_args_event_spec
from reflex_base.vars.base import LiteralVar, Var, VarData

from escalation_app.services.realtime import AccountRoom


class LiveRefresher(rx.Fragment):
    """Fires an event each time the account room's version changes.

    Reflex's `on_mount` runs once per page, so this adds its own React effect keyed on
    the room version. It also fires after a reconnect, when the rehydrated version
    differs from what the tab last saw, so nothing that arrived meanwhile is missed.
    """

    on_change_chain: Var | None = None

    @classmethod
    def create(cls, on_change) -> rx.Component:
        component = super().create()
        chain = EventChain.create(value=on_change, args_spec=no_args_event_spec, key="on_change")
        component.on_change_chain = LiteralVar.create(chain)
        return component

    def add_hooks(self) -> list[str | Var]:
        version = AccountRoom.version
        chain = self.on_change_chain
        return [
            Var(
                _js_expr=f"useEffect(() => {{ ({chain!s})(); }}, [{version!s}])",
                _var_data=VarData.merge(
                    VarData(imports={"react": ["useEffect"]}),
                    version._get_all_var_data(),
                    chain._get_all_var_data() if chain is not None else None,
                ),
            )
        ]


def live_refresher(on_change) -> rx.Component:
    """Calls `on_change` whenever the account room moves (and once on mount)."""
    return rx.fragment(
        LiveRefresher.create(on_change),
        rx.box(display="none", aria_hidden="true", data_live_version=AccountRoom.version.to_string()),
    )
