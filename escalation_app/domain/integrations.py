"""Account integrations: the Slack and Microsoft Teams incoming-webhook URLs.

Only owners and admins read or change them. A URL is checked when it is saved
(https, a known host of that service, a sane length), so whatever is stored is safe to
post to; the sender in `services/notifications.py` posts to the stored value as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import InvalidInput, PermissionDenied
from escalation_app.domain.models import AccountIntegration, User
from escalation_app.domain.types import utcnow

WEBHOOK_URL_MAX = 2048


class WebhookChannel(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"

    @property
    def label(self) -> str:
        """The product name people know the channel by."""
        return "Slack" if self is WebhookChannel.SLACK else "Teams"


# Where each service hands out incoming-webhook URLs. Teams has two generations:
# Office 365 connectors (<tenant>.webhook.office.com) and Power Automate "Workflows"
# (*.logic.azure.com, *.environment.api.powerplatform.com).
_SLACK_HOSTS = ("hooks.slack.com",)
_TEAMS_HOST_SUFFIXES = (".webhook.office.com", ".logic.azure.com", ".environment.api.powerplatform.com")


@dataclass(frozen=True, slots=True)
class IntegrationSettings:
    """What the admin integrations page shows. Holds secrets: managers only."""

    slack_webhook_url: str | None
    teams_webhook_url: str | None
    updated_at: datetime | None
    updated_by_name: str | None

    def url_for(self, channel: WebhookChannel) -> str | None:
        """The configured URL of `channel`, if any."""
        return self.slack_webhook_url if channel is WebhookChannel.SLACK else self.teams_webhook_url


def _host_allowed(channel: WebhookChannel, host: str) -> bool:
    if channel is WebhookChannel.SLACK:
        return host in _SLACK_HOSTS
    return any(host.endswith(suffix) for suffix in _TEAMS_HOST_SUFFIXES)


def validate_webhook_url(value: str | None, channel: WebhookChannel | str) -> str | None:
    """Check an incoming-webhook URL for `channel`; blank means "none" (returns None).

    Raises InvalidInput with a message naming the problem.
    """
    channel = WebhookChannel(channel)
    url = (value or "").strip()
    if not url:
        return None
    label = channel.label
    if len(url) > WEBHOOK_URL_MAX:
        raise InvalidInput(f"The {label} webhook URL must be at most {WEBHOOK_URL_MAX:,} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput(f"The {label} webhook URL must not contain spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"The {label} webhook URL is not a valid URL.") from None
    if parts.scheme.lower() != "https":
        raise InvalidInput(f"The {label} webhook URL must start with https://.")
    host = (parts.hostname or "").rstrip(".")
    if not host or "." not in host:
        raise InvalidInput(f"The {label} webhook URL has no valid host.")
    # "https://hooks.slack.com@evil.example/" has host evil.example; refusing any
    # user-info keeps such look-alikes (and credentials in URLs) out entirely.
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"The {label} webhook URL must not contain a user name or password.")
    if port not in (None, 443):
        raise InvalidInput(f"The {label} webhook URL must use the standard https port.")
    if not _host_allowed(channel, host):
        expected = (
            "hooks.slack.com"
            if channel is WebhookChannel.SLACK
            else "a *.webhook.office.com, *.logic.azure.com or *.environment.api.powerplatform.com"
        )
        raise InvalidInput(f"The {label} webhook URL must be on {expected} (got {host}).")
    if parts.path in ("", "/"):
        raise InvalidInput(f"The {label} webhook URL is incomplete: paste the whole URL.")
    return url


def require_manager(actor: Actor) -> None:
    """Integrations (chat webhooks, PSA) are managed by owners and admins only."""
    if not actor.is_manager:
        raise PermissionDenied("Only account owners and admins can manage integrations.")


def editor_name(db: Session, row: AccountIntegration) -> str | None:
    """Who last changed the account's integrations."""
    editor = db.get(User, row.updated_by_id) if row.updated_by_id else None
    return editor.display_name if editor else None


def integration_row(db: Session, account_id: int) -> AccountIntegration | None:
    """The account's integrations row, if it has one."""
    return db.exec(select(AccountIntegration).where(AccountIntegration.account_id == account_id)).first()


def update_integration_row(db: Session, actor: Actor, **values: Any) -> AccountIntegration:
    """Set `values` on the actor's account row (creating it), stamp who and when, commit."""
    now = utcnow()
    for attempt in range(2):
        row = integration_row(db, actor.account_id) or AccountIntegration(account_id=actor.account_id)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
        row.updated_by_id = actor.id
        db.add(row)
        try:
            db.commit()
            return row
        except IntegrityError:
            # Two admins saving an account's first settings at once: the other insert
            # won the unique account_id; apply ours as an update on top of it.
            db.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _settings(db: Session, row: AccountIntegration | None) -> IntegrationSettings:
    if row is None:
        return IntegrationSettings(None, None, None, None)
    return IntegrationSettings(
        slack_webhook_url=row.slack_webhook_url,
        teams_webhook_url=row.teams_webhook_url,
        updated_at=row.updated_at,
        updated_by_name=editor_name(db, row),
    )


def get_integrations(*, db: Session, actor: Actor) -> IntegrationSettings:
    """The actor's account integrations (owners and admins only)."""
    require_manager(actor)
    return _settings(db, integration_row(db, actor.account_id))


def save_webhooks(
    *, db: Session, actor: Actor, slack_url: str | None, teams_url: str | None
) -> IntegrationSettings:
    """Validate and store both webhook URLs (owners and admins only); blank clears one.

    Both are checked before anything changes, so one bad URL saves neither.
    """
    require_manager(actor)
    slack = validate_webhook_url(slack_url, WebhookChannel.SLACK)
    teams = validate_webhook_url(teams_url, WebhookChannel.TEAMS)
    row = update_integration_row(db, actor, slack_webhook_url=slack, teams_webhook_url=teams)
    return IntegrationSettings(
        slack_webhook_url=slack,
        teams_webhook_url=teams,
        updated_at=row.updated_at,
        updated_by_name=actor.display_name,
    )


def account_webhooks(*, db: Session, account_id: int) -> dict[WebhookChannel, str]:
    """The configured webhook URLs of an account, for the sender (no actor: system use)."""
    row = integration_row(db, account_id)
    if row is None:
        return {}
    urls = {WebhookChannel.SLACK: row.slack_webhook_url, WebhookChannel.TEAMS: row.teams_webhook_url}
    return {channel: url for channel, url in urls.items() if url}
