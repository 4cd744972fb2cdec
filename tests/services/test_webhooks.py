"""Slack/Teams webhooks: URL rules, admin-only settings, and posts to a real local receiver.

Save-time validation only admits https URLs on the services' own hosts, so tests that
post to the local receiver store its http://127.0.0.1 URL directly on the table, the
way a row written by `save_webhooks` would be read back by the sender.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from escalation_app.domain.deliveries import delivery_summary
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.integrations import (
    WEBHOOK_URL_MAX,
    WebhookChannel,
    get_integrations,
    save_webhooks,
    validate_webhook_url,
)
from escalation_app.domain.models import AccountIntegration, DeliveryRecord
from escalation_app.services.notifications import notify_escalation, retry_due_deliveries, send_test_webhook
from tests.factories import World
from tests.fakes.smtp import app_settings, free_port
from tests.fakes.webhook import WebhookReceiver

FRONTEND = "https://desk.example.test"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
TEAMS = "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"


# --- URL validation (no database) ---------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "url"),
    [
        ("slack", SLACK),
        ("slack", "https://hooks.slack.com/triggers/T000/123/abc"),
        ("slack", "https://HOOKS.slack.com/services/T000/B000/X"),
        ("teams", TEAMS),
        (
            "teams",
            "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x",
        ),
        ("teams", "https://default1234.56.environment.api.powerplatform.com/powerautomate/automations/x"),
    ],
)
def test_valid_webhook_urls_are_kept(channel, url):
    assert validate_webhook_url(f"  {url} ", channel) == url


@pytest.mark.parametrize(
    ("channel", "url", "message"),
    [
        ("slack", "http://hooks.slack.com/services/T/B/X", "must start with https://"),
        ("slack", "ftp://hooks.slack.com/services/T/B/X", "must start with https://"),
        ("slack", "hooks.slack.com/services/T/B/X", "must start with https://"),
        ("slack", "https:///services/T/B/X", "has no valid host"),
        ("slack", "https://localhost/services/T/B/X", "has no valid host"),
        ("slack", "https://hooks.slack.com.evil.example/services/T/B/X", "must be on hooks.slack.com"),
        ("slack", "https://evil.example/hooks.slack.com/services", "must be on hooks.slack.com"),
        ("slack", "https://hooks.slack.com@evil.example/services/T/B/X", "user name or password"),
        ("slack", "https://hooks.slack.com:8443/services/T/B/X", "standard https port"),
        ("slack", "https://hooks.slack.com/", "paste the whole URL"),
        ("slack", "https://hooks.slack.com/services/T B/X", "must not contain spaces"),
        ("slack", TEAMS, "must be on hooks.slack.com"),
        ("teams", SLACK, "*.webhook.office.com"),
        ("teams", "https://webhook.office.com.evil.example/x", "*.webhook.office.com"),
        ("teams", "https://evillogic.azure.com/x", "*.webhook.office.com"),
        ("teams", "https://127.0.0.1/x", "*.webhook.office.com"),
        ("slack", "https://hooks.slack.com/services/" + "x" * WEBHOOK_URL_MAX, "at most 2,048 characters"),
    ],
)
def test_bad_webhook_urls_are_refused_with_a_clear_message(channel, url, message):
    with pytest.raises(InvalidInput) as refused:
        validate_webhook_url(url, channel)
    assert message in refused.value.message
    assert ("Slack" if channel == "slack" else "Teams") in refused.value.message


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_webhook_url_means_none(blank):
    assert validate_webhook_url(blank, WebhookChannel.TEAMS) is None


# --- Settings (both databases) ------------------------------------------------------


@pytest.fixture
def world(db) -> World:
    world = World(db)
    db.commit()  # end the read transaction (SQLite: it holds the write lock)
    return world


def test_admins_save_read_and_clear_webhooks(world):
    riley, morgan = world.actor("riley"), world.actor("morgan")
    saved = save_webhooks(db=world.db, actor=riley, slack_url=SLACK, teams_url=" ")
    assert (saved.slack_webhook_url, saved.teams_webhook_url) == (SLACK, None)
    assert saved.updated_by_name == "Riley Chen"

    save_webhooks(db=world.db, actor=morgan, slack_url="", teams_url=TEAMS)
    current = get_integrations(db=world.db, actor=riley)
    assert (current.slack_webhook_url, current.teams_webhook_url) == (None, TEAMS)
    assert current.updated_by_name == "Morgan Lee"
    assert len(world.db.exec(select(AccountIntegration)).all()) == 1

    # Another account starts empty and its save does not touch Northwind's.
    jordan = world.actor("jordan")
    assert get_integrations(db=world.db, actor=jordan).teams_webhook_url is None
    save_webhooks(db=world.db, actor=jordan, slack_url=SLACK, teams_url="")
    assert get_integrations(db=world.db, actor=riley).teams_webhook_url == TEAMS
    assert get_integrations(db=world.db, actor=riley).slack_webhook_url is None


def test_one_bad_url_saves_neither(world):
    riley = world.actor("riley")
    save_webhooks(db=world.db, actor=riley, slack_url=SLACK, teams_url="")
    with pytest.raises(InvalidInput, match="Teams"):
        save_webhooks(db=world.db, actor=riley, slack_url="", teams_url="http://contoso.webhook.office.com/x")
    current = get_integrations(db=world.db, actor=riley)
    assert (current.slack_webhook_url, current.teams_webhook_url) == (SLACK, None)


@pytest.mark.parametrize("who", ["alex", "val"])
def test_engineers_and_viewers_cannot_see_or_change_webhooks(world, who):
    actor = world.actor(who)
    with pytest.raises(PermissionDenied):
        get_integrations(db=world.db, actor=actor)
    with pytest.raises(PermissionDenied):
        save_webhooks(db=world.db, actor=actor, slack_url=SLACK, teams_url="")
    assert world.db.exec(select(AccountIntegration)).all() == []


# --- Posting (both databases, real local receiver) ----------------------------------


@pytest.fixture
def receiver():
    with WebhookReceiver() as server, app_settings(smtp_host="", frontend_url=FRONTEND):
        yield server


def store_urls(world: World, *, slack: str | None = None, teams: str | None = None) -> None:
    """Write webhook URLs straight to the table (see the module docstring)."""
    world.db.add(
        AccountIntegration(account_id=world.northwind.id, slack_webhook_url=slack, teams_webhook_url=teams)
    )
    world.db.commit()


def escalate(world: World, **kwargs):
    session_id = world.new_session(summary="Printers <offline> & jammed")
    handoff = create_handoff(
        db=world.db, actor=world.actor("alex"), session_id=session_id, intent="escalate", **kwargs
    )
    world.db.commit()
    return handoff


def webhook_records(engine, handoff_id=None) -> dict[str, DeliveryRecord]:
    with Session(engine) as s:
        rows = s.exec(
            select(DeliveryRecord).where(
                DeliveryRecord.channel == "webhook", DeliveryRecord.handoff_id == handoff_id
            )
        ).all()
    return {r.recipient: r for r in rows}


async def test_escalation_posts_to_slack_and_teams(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"), teams=receiver.url("/teams"))
    handoff = escalate(world, notes="Spooler <crashes>", priority="urgent")

    await notify_escalation(handoff.id, engine=engine)

    link = f"{FRONTEND}/handoffs/{handoff.id}"
    posts = {p.path: p for p in receiver.posted}
    assert set(posts) == {"/slack", "/teams"}
    assert all(p.content_type == "application/json" for p in posts.values())
    # Slack: one mrkdwn text; user text escaped so it cannot forge links or mentions.
    assert posts["/slack"].body == {
        "text": "*New escalation: Printers &lt;offline&gt; &amp; jammed*\n"
        "Priority: Urgent\nClient: Acme\nEscalated by: Alex Kim\nReason: Spooler &lt;crashes&gt;\n"
        f"<{link}|Open the handoff>"
    }
    # Teams: an Adaptive Card message with the facts and a button to the handoff.
    teams = posts["/teams"].body
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["body"][0]["text"] == "New escalation: Printers <offline> & jammed"
    assert {f["title"]: f["value"] for f in card["body"][1]["facts"]} == {
        "Priority": "Urgent",
        "Client": "Acme",
        "Escalated by": "Alex Kim",
        "Reason": "Spooler <crashes>",
    }
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the handoff", "url": link}]

    records = webhook_records(engine, handoff.id)
    assert {(k, r.status, r.attempts) for k, r in records.items()} == {
        ("slack", "sent", 1),
        ("teams", "sent", 1),
    }
    # The URL is a secret: it is looked up when sending, never copied into records.
    assert all("127.0.0.1" not in str(r.payload) + r.recipient for r in records.values())
    with Session(engine) as s:
        summary = delivery_summary(db=s, actor=world.actor("riley"), handoff_id=handoff.id)
    assert summary.text == "Notified: email skipped (SMTP not configured), Slack ✓, Teams ✓"


async def test_targeted_escalation_names_the_target_in_chat(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world, target_user_id=world.users["sam"].id)
    await notify_escalation(handoff.id, engine=engine)
    (post,) = receiver.posted
    assert post.body["text"].startswith("*Escalated to Sam Patel: Printers")
    assert "Reason: No reason provided." in post.body["text"]


async def test_a_failing_webhook_is_recorded_and_retried(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world)
    receiver.status = 500

    await notify_escalation(handoff.id, engine=engine)

    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.attempts, record.last_error) == ("failed", 1, "HTTP 500: invalid_payload")
    assert record.next_attempt_at is not None
    with Session(engine) as s:
        assert delivery_summary(db=s, actor=world.actor("riley"), handoff_id=handoff.id).webhooks == {
            "Slack": "failed"
        }

    receiver.status = 200
    with Session(engine) as s:
        row = s.get(DeliveryRecord, record.id)
        row.next_attempt_at = row.created_at
        s.add(row)
        s.commit()
    assert await retry_due_deliveries(engine=engine) == 1
    assert [p.path for p in receiver.posted] == ["/slack", "/slack"]
    assert receiver.posted[0].body == receiver.posted[1].body
    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.attempts, record.last_error) == ("sent", 2, None)


async def test_unreachable_webhook_is_recorded_failed(world, engine, receiver):
    store_urls(world, teams=f"http://127.0.0.1:{free_port()}/teams")
    handoff = escalate(world)

    await notify_escalation(handoff.id, engine=engine)

    record = webhook_records(engine, handoff.id)["teams"]
    assert record.status == "failed"
    assert record.last_error == "Could not connect (ConnectError)"


async def test_a_webhook_removed_before_its_retry_is_skipped(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world)
    receiver.status = 503
    await notify_escalation(handoff.id, engine=engine)
    save_webhooks(db=world.db, actor=world.actor("riley"), slack_url="", teams_url="")
    with Session(engine) as s:
        row = s.exec(select(DeliveryRecord).where(DeliveryRecord.channel == "webhook")).one()
        row.next_attempt_at = row.created_at
        s.add(row)
        s.commit()

    assert await retry_due_deliveries(engine=engine) == 0
    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.last_error) == ("skipped", "Webhook no longer configured")
    assert len(receiver.posted) == 1


async def test_send_test_posts_and_reports_the_outcome(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"), teams=receiver.url("/teams"))
    riley = world.actor("riley")

    assert (
        await send_test_webhook(actor=riley, channel="slack", engine=engine) == "Test message sent to Slack."
    )
    (post,) = receiver.posted
    assert post.path == "/slack"
    assert "Escalation Desk test message" in post.body["text"]
    assert "Sent by: Riley Chen" in post.body["text"]

    receiver.status = 404
    message = await send_test_webhook(actor=riley, channel="Teams", engine=engine)
    assert message == "Teams did not accept the test message: HTTP 404: invalid_payload"

    tests = webhook_records(engine, None)
    assert {(k, r.kind, r.status) for k, r in tests.items()} == {
        ("slack", "test", "sent"),
        ("teams", "test", "failed"),
    }
    # A failed test is answered on the spot, not retried later.
    assert tests["teams"].next_attempt_at is None
    assert await retry_due_deliveries(engine=engine) == 0


async def test_send_test_is_for_admins_with_a_saved_url(world, engine, receiver):
    with pytest.raises(PermissionDenied):
        await send_test_webhook(actor=world.actor("sam"), channel="slack", engine=engine)
    with pytest.raises(InvalidInput, match="Save a Slack webhook URL first"):
        await send_test_webhook(actor=world.actor("riley"), channel="slack", engine=engine)
    with pytest.raises(InvalidInput, match="Channel must be one of: slack, teams"):
        await send_test_webhook(actor=world.actor("riley"), channel="discord", engine=engine)
    assert receiver.posted == []


def test_delivery_summary_is_account_scoped(world):
    handoff = escalate(world)
    with pytest.raises(NotFound):
        delivery_summary(db=world.db, actor=world.actor("jordan"), handoff_id=handoff.id)
    with pytest.raises(NotFound):
        delivery_summary(db=world.db, actor=world.actor("riley"), handoff_id="not-a-handoff")
    assert delivery_summary(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id).text == (
        "No notifications sent."
    )


def test_user_text_cannot_add_links_mentions_or_formatting_to_chat_messages():
    from escalation_app.services.webhooks import ChatMessage, slack_body, teams_body

    hostile = (
        "[Reset your password](https://evil.example) <https://evil.example|click> <!here> @channel **urgent**"
    )
    message = ChatMessage(
        title=hostile, facts=[("Client", "# Heading\n> quote")], link="https://desk.example/h/1"
    )
    slack = slack_body(message)["text"]
    assert "](" not in slack and "<https://evil" not in slack and "<!here>" not in slack
    assert "@channel" not in slack and "**" not in slack
    assert slack.endswith("<https://desk.example/h/1|Open the handoff>")  # our own link still works
    card = teams_body(message)["attachments"][0]["content"]
    texts = [card["body"][0]["text"], card["body"][1]["facts"][0]["value"]]
    assert all("](" not in t and "**" not in t and "@channel" not in t for t in texts)
    assert not any(line.startswith(("#", ">")) for line in texts[1].splitlines())
    # What a person reads is unchanged once the invisible separators are removed.
    assert texts[0].replace("\u200b", "") == hostile
