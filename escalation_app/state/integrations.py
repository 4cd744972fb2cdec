"""/admin/integrations: Slack and Teams webhooks (owners and admins)."""

from __future__ import annotations

import reflex as rx

from escalation_app.domain import integrations as integration_rules
from escalation_app.domain.errors import DomainError
from escalation_app.services.notifications import send_test_webhook
from escalation_app.state.base import AppState, NotSignedIn, error_toast, run_db


class IntegrationsState(AppState):
    """The account's chat webhooks. The URLs are secrets, loaded only for managers."""

    allowed: bool = False
    loaded: bool = False
    slack_url: str = ""
    teams_url: str = ""
    updated_by: str = ""
    updated_at: str = ""
    testing: str = ""

    def _show(self, found) -> None:
        self.slack_url = found.slack_webhook_url or ""
        self.teams_url = found.teams_webhook_url or ""
        self.updated_by = found.updated_by_name or ""
        self.updated_at = found.updated_at.isoformat() if found.updated_at else ""

    @rx.event
    async def load(self):
        self.loaded = False
        try:
            actor = await self._require_actor()
        except NotSignedIn:
            return self._login_redirect()
        self.allowed = actor.is_manager
        if self.allowed:
            self._show(await run_db(integration_rules.get_integrations, actor=actor))
        else:
            self.slack_url = self.teams_url = ""
        self.loaded = True

    @rx.event
    async def save(self, form_data: dict):
        try:
            actor = await self._require_actor()
            saved = await run_db(
                integration_rules.save_webhooks,
                actor=actor,
                slack_url=str(form_data.get("slack_url", "")),
                teams_url=str(form_data.get("teams_url", "")),
            )
        except DomainError as error:
            return error_toast(error)
        self._show(saved)
        return rx.toast.success("Integrations saved")

    @rx.event
    async def send_test(self, channel: str):
        self.testing = channel
        yield
        try:
            actor = await self._require_actor()
            message = await send_test_webhook(actor=actor, channel=channel)
        except DomainError as error:
            self.testing = ""
            yield error_toast(error)
            return
        self.testing = ""
        failed = "did not accept" in message
        yield rx.toast.error(message) if failed else rx.toast.success(message)
