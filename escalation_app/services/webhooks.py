"""The one place that posts to team-chat incoming webhooks (Slack, Microsoft Teams).

A chat message is described neutrally (`ChatMessage`) and rendered into each service's
format only when posted, so a retry uses whatever URL is configured by then. URLs are
validated when an admin saves them (`domain.integrations`); this module posts to the
stored value and never follows redirects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from escalation_app.domain.integrations import WebhookChannel
from escalation_app.services import outbound

WEBHOOK_TIMEOUT_SECONDS = 10.0
_RESPONSE_SNIPPET = 200


class WebhookError(Exception):
    """A post that did not get a 2xx answer; the message is fit for a delivery record."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A short chat notification: a title, labelled facts and one link."""

    title: str
    facts: list[tuple[str, str]]
    link: str
    link_text: str = "Open the handoff"

    def to_payload(self) -> dict:
        """A JSON-able form for a delivery record."""
        return {
            "title": self.title,
            "facts": [list(fact) for fact in self.facts],
            "link": self.link,
            "link_text": self.link_text,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> ChatMessage:
        """Rebuild from `to_payload` output."""
        return cls(
            title=payload["title"],
            facts=[(str(k), str(v)) for k, v in payload.get("facts", [])],
            link=payload["link"],
            link_text=payload.get("link_text", "Open the handoff"),
        )


# Text from people (problem summaries, names, notes) must reach the chat as text: no
# links, mentions or formatting of its own. A zero-width space after each markup
# character breaks the syntax and leaves what people read unchanged.
_ZWSP = "\u200b"
_MARKUP = re.compile(r"([*_~`\[\]()])")
_LINE_MARKUP = re.compile(r"^([#>-])", re.MULTILINE)  # headings, quotes, lists
_MENTION = re.compile(r"@(?=(here|channel|everyone|all)\b)", re.IGNORECASE)


def _plain(text: str) -> str:
    text = _LINE_MARKUP.sub(_ZWSP + "\\1", _MARKUP.sub("\\1" + _ZWSP, text))
    return _MENTION.sub("@" + _ZWSP, text)


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters (<url|text>, <!here>, <@U1>).
    return _plain(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def slack_body(message: ChatMessage) -> dict:
    """Slack incoming-webhook JSON: one mrkdwn text with the link."""
    lines = [f"*{_slack_escape(message.title)}*"]
    lines += [f"{_slack_escape(k)}: {_slack_escape(v)}" for k, v in message.facts]
    lines.append(f"<{message.link}|{_slack_escape(message.link_text)}>")
    return {"text": "\n".join(lines)}


def teams_body(message: ChatMessage) -> dict:
    """Teams JSON: an Adaptive Card message.

    Power Automate "Workflows" webhooks (which replace Office 365 connectors) expect
    this shape, and connector webhooks accept it too, so one format serves both.
    """
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _plain(message.title),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [{"title": _plain(k), "value": _plain(v)} for k, v in message.facts],
            },
        ],
        "actions": [{"type": "Action.OpenUrl", "title": _plain(message.link_text), "url": message.link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def render(channel: WebhookChannel, message: ChatMessage) -> dict:
    """The JSON body `channel` expects for `message`."""
    return slack_body(message) if channel is WebhookChannel.SLACK else teams_body(message)


async def post(
    url: str,
    body: dict,
    *,
    timeout: float = WEBHOOK_TIMEOUT_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """POST `body` as JSON to `url`; raise WebhookError unless the answer is 2xx."""
    try:
        # Every connection's address is checked (no internal addresses; see outbound.py).
        async with outbound.client(timeout, transport_override=transport) as client:
            response = await client.post(url, json=body)
    except httpx.TimeoutException:
        raise WebhookError(f"Timed out after {timeout:g} s") from None
    except outbound.InternalAddressRefused as exc:
        raise WebhookError(outbound.status_line(f"Refused: {exc}")) from None
    except httpx.HTTPError as exc:
        raise WebhookError(f"Could not connect ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        # Only a short, printable status line of the answer: it ends up on screens.
        snippet = outbound.status_line(response.text[:_RESPONSE_SNIPPET], limit=80)
        raise WebhookError(f"HTTP {response.status_code}" + (f": {snippet}" if snippet else ""))
