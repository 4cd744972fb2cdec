"""Sign-in page state.

The form itself posts to the backend's sign-in endpoint (`state/signin_http.py`), which
sets the HttpOnly cookie; this state only shows the page: where the form posts, which
page comes next, and the message for an error code the endpoint sent back.
"""

from __future__ import annotations

import reflex as rx

from escalation_app import routes
from escalation_app.domain import validation
from escalation_app.domain.errors import InvalidInput
from escalation_app.state.base import AppState
from escalation_app.state.signin_http import (
    BAD_EMAIL,
    INVALID,
    THROTTLED,
    TOO_LARGE,
    UNAVAILABLE,
    landing_path,
)

# Fixed messages by code: nothing from the URL is ever shown as text.
ERROR_MESSAGES = {
    INVALID: "Invalid email or password",
    BAD_EMAIL: "Enter a valid email address.",
    TOO_LARGE: "That sign-in was too large. Check the email and password.",
    UNAVAILABLE: "Sign-in is unavailable right now. Try again in a minute.",
}


def _wait_text(raw: str | None) -> str:
    try:
        seconds = max(1, min(int(raw or "60"), 86_400))
    except ValueError:
        seconds = 60
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


class LoginState(AppState):
    """Email + password sign-in."""

    error: str = ""
    next_path: str = ""
    # The address of a failed attempt, shown again in the form.
    email: str = ""

    @rx.var
    def sign_in_action(self) -> str:
        """The sign-in endpoint on the backend this tab's websocket reached."""
        return f"{self.backend_origin}{routes.SIGN_IN_ENDPOINT}" if self.backend_origin else ""

    @rx.event
    async def load(self):
        query = self.router.url.query_parameters
        next_path = routes.safe_next(query.get("next")) or ""
        # Already signed in: skip the form. (The database away: say so, show the form.)
        actor = None
        async with self._domain_action(doing="check your sign-in", reading=True) as action:
            actor = await self._actor()
        if action.failed:
            return action.failure
        if actor is not None:
            self._remember(actor)
            return rx.redirect(landing_path(actor.role, next_path or None))
        # Signed out or expired: whoever signs in next in this tab must not receive the
        # previous user's page data on their first hydrate.
        await self._clear_tab()
        self.next_path = next_path
        try:
            self.email = validation.email(str(query.get("email") or "")) if query.get("email") else ""
        except InvalidInput:
            self.email = ""
        code = str(query.get("error") or "")
        if code == THROTTLED:
            self.error = f"Too many sign-in attempts. Try again in {_wait_text(query.get('wait'))}."
        else:
            self.error = ERROR_MESSAGES.get(code, "")
