"""/admin/integrations: Slack and Teams webhooks (owners and admins)."""

from __future__ import annotations

import reflex as rx

from escalation_app.domain import integrations as integration_rules
from escalation_app.domain import psa as psa_rules
from escalation_app.services import outbound
from escalation_app.services import psa as psa_service
from escalation_app.services.notifications import send_test_webhook
from escalation_app.state.base import AppState, run_db


class IntegrationsState(AppState):
    """The account's chat webhooks. The URLs are secrets, loaded only for managers."""

    allowed: bool = False
    loaded: bool = False
    slack_url: str = ""
    teams_url: str = ""
    updated_by: str = ""
    updated_at: str = ""
    testing: str = ""
    # PSA connection (the secret itself never comes back to the browser).
    psa_type: str = ""
    psa_label: str = ""
    psa_url: str = ""
    psa_client_id: str = ""
    psa_company_id: str = ""
    psa_public_key: str = ""
    psa_tenant: str = ""
    psa_outcome: str = ""
    psa_auth_url: str = ""
    psa_has_secret: bool = False
    psa_form_type: str = "connectwise"
    psa_testing: bool = False

    def _show(self, found) -> None:
        self.slack_url = found.slack_webhook_url or ""
        self.teams_url = found.teams_webhook_url or ""
        self.updated_by = found.updated_by_name or ""
        self.updated_at = found.updated_at.isoformat() if found.updated_at else ""

    def _show_psa(self, found) -> None:
        self.psa_type = found.psa_type
        self.psa_label = found.label
        self.psa_url = found.url
        self.psa_client_id = found.client_id
        self.psa_company_id = found.company_id
        self.psa_public_key = found.public_key
        self.psa_tenant = found.tenant
        self.psa_outcome = found.outcome
        self.psa_auth_url = found.auth_url
        self.psa_has_secret = found.has_secret
        self.psa_form_type = found.psa_type or self.psa_form_type or "connectwise"

    @rx.event
    async def load(self):
        self.loaded = False
        self.testing = ""
        self.psa_testing = False
        async with self._domain_action(doing="load the integrations", reading=True) as action:
            if (actor := await self._page_actor()) is None:
                return self._login_redirect()
            self.allowed = actor.is_manager
            if self.allowed:
                self._show(await run_db(integration_rules.get_integrations, actor=actor))
                self._show_psa(await run_db(psa_rules.get_psa_settings, actor=actor))
        if action.failed:
            return action.failure
        if not self.allowed:
            self.slack_url = self.teams_url = ""
            self.psa_url = self.psa_client_id = self.psa_company_id = self.psa_public_key = (
                self.psa_tenant
            ) = self.psa_outcome = self.psa_auth_url = ""
        self.loaded = True

    @rx.event
    def set_psa_form_type(self, value: str):
        self.psa_form_type = value

    @rx.event
    async def save_psa(self, form_data: dict):
        def text(key: str) -> str:
            return str(form_data.get(key, "") or "")

        async with self._domain_action() as action:
            saved = await action.run(
                psa_rules.save_psa_connection,
                psa_type=text("psa_type"),
                url=text("psa_url"),
                client_id=text("psa_client_id"),
                secret=text("psa_secret") or None,
                company_id=text("psa_company_id") or None,
                public_key=text("psa_public_key") or None,
                tenant=text("psa_tenant") or None,
                outcome=text("psa_outcome") or None,
                auth_url=text("psa_auth_url") or None,
            )
        if action.failed:
            return action.failure
        self._show_psa(saved)
        return rx.toast.success(f"{saved.label} connection saved")

    @rx.event
    async def remove_psa(self):
        async with self._domain_action() as action:
            self._show_psa(await action.run(psa_rules.clear_psa_connection))
        if action.failed:
            return action.failure
        return rx.toast.success("PSA connection removed")

    @rx.event
    async def test_psa(self):
        self.psa_testing = True
        async with self._domain_action(
            busy="psa_testing", doing="test the connection", reading=True
        ) as action:
            yield
            # Whatever the PSA answered, the browser gets one short printable line of it.
            message = outbound.status_line(await psa_service.test_connection(actor=await action.signed_in()))
        if action.failed:
            yield action.failure
            return
        yield rx.toast.success(message) if message.startswith("Connected") else rx.toast.error(message)

    @rx.event
    async def save(self, form_data: dict):
        async with self._domain_action() as action:
            saved = await action.run(
                integration_rules.save_webhooks,
                slack_url=str(form_data.get("slack_url", "")),
                teams_url=str(form_data.get("teams_url", "")),
            )
        if action.failed:
            return action.failure
        self._show(saved)
        return rx.toast.success("Integrations saved")

    @rx.event
    async def send_test(self, channel: str):
        self.testing = channel
        async with self._domain_action(busy="testing", doing="send the test", reading=True) as action:
            yield
            message = outbound.status_line(
                await send_test_webhook(actor=await action.signed_in(), channel=channel)
            )
        if action.failed:
            yield action.failure
            return
        failed = "did not accept" in message
        yield rx.toast.error(message) if failed else rx.toast.success(message)
