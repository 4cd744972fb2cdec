"""/admin/users: owners and admins manage their account's users."""

from __future__ import annotations

import reflex as rx

from escalation_app.domain import users as user_rules
from escalation_app.domain.errors import DomainError
from escalation_app.state.base import AppState, parse_id, run_db


def _user_id(raw) -> int:
    return parse_id(raw, "User not found.")


class UsersAdminState(AppState):
    """The account's users and the Add user form."""

    users: list[dict[str, str]] = []
    allowed: bool = False
    loaded: bool = False
    add_open: bool = False
    me_id: str = ""

    async def _refresh(self, actor) -> None:
        rows = await run_db(user_rules.list_users, actor=actor)
        self.me_id = str(actor.id)
        self.users = [
            {
                "id": str(u.id),
                "name": u.display_name,
                "email": u.email,
                "role": u.role,
                "active": "yes" if u.is_active else "",
                "created_at": u.created_at.isoformat(),
            }
            for u in rows
        ]

    @rx.event
    async def load(self):
        self.loaded = False
        async with self._domain_action(doing="load the users", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            self.allowed = actor.is_manager
            if self.allowed:
                await self._refresh(actor)
            else:
                self.users = []
        if action.failed:
            return action.failure
        self.loaded = True

    @rx.event
    def set_add_open(self, value: bool):
        self.add_open = value

    @rx.event
    async def add_user(self, form_data: dict):
        async with self._domain_action() as action:
            await action.run(
                user_rules.add_user,
                display_name=str(form_data.get("display_name", "")),
                email=str(form_data.get("email", "")),
                role=str(form_data.get("role", "")),
                password=str(form_data.get("password", "")),
            )
            await self._refresh(action.actor)
        if action.failed:
            return action.failure
        self.add_open = False
        return rx.toast.success("User added")

    @rx.event
    async def change_role(self, user_id: str, role: str):
        async with self._domain_action() as action:
            actor = await action.signed_in()
            try:
                await action.run(user_rules.change_role, user_id=_user_id(user_id), role=role)
            except DomainError:
                if actor.is_manager:
                    await self._refresh(actor)  # put the row's real role back in the picker
                raise
            await self._refresh(actor)
        if action.failed:
            return action.failure
        return rx.toast.success("Role changed")

    @rx.event
    async def deactivate(self, user_id: str):
        async with self._domain_action() as action:
            await action.run(user_rules.deactivate_user, user_id=_user_id(user_id))
            await self._refresh(action.actor)
        if action.failed:
            return action.failure
        return rx.toast.success("User deactivated")
