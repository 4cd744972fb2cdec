"""Slack/Teams webhooks: URL rules, admin-only settings, and posts to a real local receiver.

Each post is an outbox job committed with the escalation, run here through the real
worker and handler; retries come from advancing the worker's clock. Save-time validation only admits https URLs on the services' own hosts, so tests that
post to the local receiver store its http://127.0.0.1 URL directly on the table, the
way a row written by `save_webhooks` would be read back by the sender.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from escalation_app.domain import outbox
from escalation_app.domain.deliveries import delivery_summary, retry_delivery
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.integrations import (
    WEBHOOK_URL_MAX,
    WebhookChannel,
    get_integrations,
    save_webhooks,
    validate_webhook_url,
)
from escalation_app.domain.models import AccountIntegration, OutboxJob
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.types import utcnow
from escalation_app.services.notifications import send_test_webhook
from tests.factories import World
from tests.fakes.smtp import app_settings, free_port
from tests.fakes.webhook import WebhookReceiver
from tests.outbox_helpers import Clock, clear_outbox, outbox_jobs, run_outbox

FRONTEND = "https://desk.example.test"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
TEAMS = "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"
WEBHOOK = [JobKind.WEBHOOK]
POLICY = outbox.policy(JobKind.WEBHOOK)


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
    # Only this test's escalations have jobs; this also ends the read transaction
    # (SQLite: it holds the write lock).
    clear_outbox(db)
    return world


@pytest.fixture
def clock() -> Clock:
    # A little ahead, so jobs the test commits after this are due at once.
    return Clock(utcnow() + timedelta(seconds=5))


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


def webhook_records(engine, handoff_id=None) -> dict[str, OutboxJob]:
    """The webhook jobs (delivery records) of a handoff, or the "Send test" ones (None), by channel."""
    rows = [r for r in outbox_jobs(engine, kind=JobKind.WEBHOOK) if r.handoff_id == handoff_id]
    by_channel = {r.recipient: r for r in rows}
    assert len(by_channel) == len(rows), "two jobs for one channel"
    return by_channel


def summary(world: World, engine, handoff):
    with Session(engine) as s:
        return delivery_summary(db=s, actor=world.actor("riley"), handoff_id=handoff.id)


async def test_escalation_posts_to_slack_and_teams(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"), teams=receiver.url("/teams"))
    handoff = escalate(world, notes="Spooler <crashes>", priority="urgent")

    assert await run_outbox(engine, kinds=WEBHOOK) == 2

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
    assert {(k, r.status, r.attempts, r.result) for k, r in records.items()} == {
        ("slack", "done", 1, "posted"),
        ("teams", "done", 1, "posted"),
    }
    # The URL is a secret: it is looked up when sending, never copied into records.
    assert all("127.0.0.1" not in str(r.payload) + r.recipient for r in records.values())
    # Without SMTP the emails are skipped when their jobs run.
    assert await run_outbox(engine, kinds=[JobKind.EMAIL]) == 3
    assert summary(world, engine, handoff).text == (
        "Notified: email skipped (SMTP not configured), Slack ✓, Teams ✓"
    )
    # Posted is final: no second post.
    assert await run_outbox(engine, kinds=WEBHOOK) == 0
    assert len(receiver.posted) == 2


async def test_targeted_escalation_names_the_target_in_chat(world, engine, receiver):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world, target_user_id=world.users["sam"].id)
    await run_outbox(engine, kinds=WEBHOOK)
    (post,) = receiver.posted
    assert post.body["text"].startswith("*Escalated to Sam Patel: Printers")
    assert "Reason: No reason provided." in post.body["text"]
    assert webhook_records(engine, handoff.id)["slack"].status == "done"


async def test_no_webhook_saved_means_no_post_job(world, engine, receiver):
    handoff = escalate(world)
    assert webhook_records(engine, handoff.id) == {}
    assert await run_outbox(engine, kinds=WEBHOOK) == 0
    assert receiver.posted == []


async def test_a_failing_webhook_is_recorded_and_retried(world, engine, receiver, clock):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world)
    receiver.status = 500

    assert await run_outbox(engine, kinds=WEBHOOK, clock=clock) == 1

    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.attempts, record.last_error) == ("pending", 1, "HTTP 500: invalid_payload")
    assert record.run_at == clock.now + POLICY.retry_delay(1)
    assert summary(world, engine, handoff).webhooks == {"Slack": "retrying"}
    assert summary(world, engine, handoff).text.endswith("Slack ✗ (retrying)")

    receiver.status = 200
    clock.advance(seconds=POLICY.retry_delay(1).total_seconds() - 1)
    assert await run_outbox(engine, kinds=WEBHOOK, clock=clock) == 0  # not due yet
    clock.advance(seconds=1)
    assert await run_outbox(engine, kinds=WEBHOOK, clock=clock) == 1
    assert [p.path for p in receiver.posted] == ["/slack", "/slack"]
    assert receiver.posted[0].body == receiver.posted[1].body
    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.attempts, record.last_error) == ("done", 2, None)
    assert summary(world, engine, handoff).webhooks == {"Slack": "sent"}


async def test_a_webhook_that_keeps_failing_gives_up_and_a_manager_can_retry_it(
    world, engine, receiver, clock
):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world)
    receiver.status = 502
    await run_outbox(engine, kinds=WEBHOOK, clock=clock)
    for attempt in range(1, POLICY.max_attempts):
        clock.advance(seconds=POLICY.retry_delay(attempt).total_seconds())
        assert await run_outbox(engine, kinds=WEBHOOK, clock=clock) == 1
    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.attempts, record.last_error) == ("failed", 3, "HTTP 502: invalid_payload")
    assert len(receiver.posted) == POLICY.max_attempts
    assert summary(world, engine, handoff).text.endswith("Slack ✗")
    clock.advance(days=1)
    assert await run_outbox(engine, kinds=WEBHOOK, clock=clock) == 0

    # Retry on the handoff screen runs it again from its first attempt.
    receiver.status = 200
    with Session(engine) as s:
        retry_delivery(db=s, actor=world.actor("riley"), handoff_id=handoff.id, delivery_id=record.id)
    assert await run_outbox(engine, kinds=WEBHOOK) == 1
    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.attempts, record.last_error) == ("done", 1, None)
    assert len(receiver.posted) == POLICY.max_attempts + 1


async def test_unreachable_webhook_is_recorded_failed(world, engine, receiver):
    store_urls(world, teams=f"http://127.0.0.1:{free_port()}/teams")
    handoff = escalate(world)

    await run_outbox(engine, kinds=WEBHOOK)

    record = webhook_records(engine, handoff.id)["teams"]
    assert (record.status, record.attempts) == ("pending", 1)  # retried on the backoff
    assert record.last_error == "Could not connect (ConnectError)"
    assert summary(world, engine, handoff).webhooks == {"Teams": "retrying"}


async def test_a_webhook_removed_before_its_retry_is_skipped(world, engine, receiver, clock):
    store_urls(world, slack=receiver.url("/slack"))
    handoff = escalate(world)
    receiver.status = 503
    await run_outbox(engine, kinds=WEBHOOK, clock=clock)
    save_webhooks(db=world.db, actor=world.actor("riley"), slack_url="", teams_url="")

    clock.advance(seconds=POLICY.retry_delay(1).total_seconds())
    assert await run_outbox(engine, kinds=WEBHOOK, clock=clock) == 1
    record = webhook_records(engine, handoff.id)["slack"]
    assert (record.status, record.last_error) == ("skipped", "Webhook no longer configured")
    assert len(receiver.posted) == 1
    assert summary(world, engine, handoff).text.endswith("Slack skipped")


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
    assert {(k, r.payload.get("test"), r.status, r.last_error) for k, r in tests.items()} == {
        ("slack", True, "done", None),
        ("teams", True, "failed", "HTTP 404: invalid_payload"),
    }
    # A failed test is answered on the spot, not retried later.
    assert await run_outbox(engine, kinds=WEBHOOK, clock=Clock(utcnow() + timedelta(days=1))) == 0
    assert len(receiver.posted) == 2


async def test_send_test_is_for_admins_with_a_saved_url(world, engine, receiver):
    with pytest.raises(PermissionDenied):
        await send_test_webhook(actor=world.actor("sam"), channel="slack", engine=engine)
    with pytest.raises(InvalidInput, match="Save a Slack webhook URL first"):
        await send_test_webhook(actor=world.actor("riley"), channel="slack", engine=engine)
    with pytest.raises(InvalidInput, match="Channel must be one of: slack, teams"):
        await send_test_webhook(actor=world.actor("riley"), channel="discord", engine=engine)
    assert receiver.posted == []
    assert webhook_records(engine, None) == {}


def test_delivery_summary_is_account_scoped(world):
    handoff = escalate(world)
    with pytest.raises(NotFound):
        delivery_summary(db=world.db, actor=world.actor("jordan"), handoff_id=handoff.id)
    with pytest.raises(NotFound):
        delivery_summary(db=world.db, actor=world.actor("riley"), handoff_id="not-a-handoff")
    # Before its jobs have run, an escalation's emails are on their way.
    assert delivery_summary(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id).text == (
        "Notified: 0 by email (3 sending)"
    )
    parked = world.new_session(owner="sam")
    park = create_handoff(db=world.db, actor=world.actor("sam"), session_id=parked, intent="park")
    assert delivery_summary(db=world.db, actor=world.actor("riley"), handoff_id=park.id).text == (
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
