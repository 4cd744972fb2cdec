"""Sign-in page state."""

from __future__ import annotations

import asyncio

import reflex as rx

from escalation_app import routes
from escalation_app.domain.actors import Actor
from escalation_app.domain.auth import SignInFailed, authenticate, start_auth_session
from escalation_app.domain.db import session_scope
from escalation_app.state.base import AppState


class LoginState(AppState):
    """Email + password sign-in."""

    error: str = ""
    submitting: bool = False

    @rx.event
    async def load(self):
        self.submitting = False
        self.error = ""
        # Already signed in: skip the form.
        async with self._domain_action(doing="check your sign-in", reading=True) as action:
            actor = await self._actor()
        if action.failed:
            return action.failure
        if actor is not None:
            self._remember(actor)
            return rx.redirect(self._next_path(actor.role))
        self._forget_user()

    def _next_path(self, role: str) -> str:
        requested = routes.safe_next(self.router.url.query_parameters.get("next"))
        if requested:
            return requested
        return routes.ESCALATIONS if role in ("owner", "admin", "viewer") else routes.SESSIONS

    @rx.event
    async def sign_in(self, form_data: dict):
        email = str(form_data.get("email", ""))
        password = str(form_data.get("password", ""))
        self.submitting = True
        self.error = ""

        def check() -> tuple[str, Actor] | str:
            with session_scope() as db:
                try:
                    user = authenticate(db=db, email=email, password=password)
                except SignInFailed as failed:
                    return failed.message
                return start_auth_session(db=db, user=user), Actor.from_user(user)

        async with self._domain_action(busy="submitting", doing="sign you in") as action:
            yield
            outcome = await asyncio.to_thread(check)
        if action.failed:
            yield action.failure
            return
        if isinstance(outcome, str):
            self.error = outcome
            return
        token, actor = outcome
        # A tab whose previous sign-in merely expired still holds that user's page data.
        (await self.get_state(AppState)).reset()
        self.auth_token = token
        self._remember(actor)
        yield rx.redirect(self._next_path(actor.role))
