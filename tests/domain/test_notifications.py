"""The bell (list, unread count, mark read) and delivery summaries, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from escalation_app.domain.deliveries import (
    RETRY_BACKOFF,
    add_delivery,
    delivery_summary,
    next_attempt_after,
)
from escalation_app.domain.errors import NotFound
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import Notification
from escalation_app.domain.notifications import (
    list_notifications,
    mark_all_read,
    mark_read,
    notified_user_ids,
    unread_count,
)
from escalation_app.domain.types import utcnow
from tests.factories import World


@pytest.fixture
def world(db) -> World:
    return World(db)


def escalate(world: World, owner: str = "alex", summary: str = "Mail flow stopped", **kwargs):
    session_id = world.new_session(owner=owner, summary=summary)
    return create_handoff(
        db=world.db, actor=world.actor(owner), session_id=session_id, intent="escalate", **kwargs
    )


def test_the_bell_lists_own_notifications_newest_first(world):
    sam = world.actor("sam")
    before = unread_count(db=world.db, actor=sam)  # the demo data's escalation
    assert before == 1
    first = escalate(world, summary="First problem")
    second = escalate(world, summary="Second problem", priority="urgent")

    items = list_notifications(db=world.db, actor=sam)
    assert [i.title for i in items[:2]] == ["New escalation: Second problem", "New escalation: First problem"]
    assert items[0].link == f"/handoffs/{second.id}"
    assert items[0].handoff_id == str(second.id)
    assert items[0].body == "Alex Kim · urgent priority"
    assert items[1].handoff_id == str(first.id)
    assert not any(i.read for i in items)
    assert unread_count(db=world.db, actor=sam) == before + 2
    assert [i.title for i in list_notifications(db=world.db, actor=sam, limit=1)] == [items[0].title]

    # The escalator, the viewer and another account see none of these.
    assert all(
        i.handoff_id not in (str(first.id), str(second.id))
        for i in list_notifications(db=world.db, actor=world.actor("alex"))
    )
    assert list_notifications(db=world.db, actor=world.actor("val")) == []
    jordan = world.actor("jordan")
    assert {i.title for i in list_notifications(db=world.db, actor=jordan)} == {
        "New escalation: Line-of-business app crashes on launch after .NET update"
    }


def test_targeted_escalation_rings_only_the_target(world):
    riley = world.users["riley"]
    handoff = escalate(world, target_user_id=riley.id)
    assert notified_user_ids(db=world.db, account_id=world.northwind.id, handoff_id=handoff.id) == [riley.id]
    assert list_notifications(db=world.db, actor=world.actor("riley"))[0].title == (
        "Escalated to you: Mail flow stopped"
    )
    assert notified_user_ids(db=world.db, account_id=world.contoso.id, handoff_id=handoff.id) == []


def test_mark_all_read_clears_only_the_actors_badge(world):
    escalate(world)
    sam, riley = world.actor("sam"), world.actor("riley")
    riley_unread = unread_count(db=world.db, actor=riley)
    assert unread_count(db=world.db, actor=sam) == 2

    assert mark_all_read(db=world.db, actor=sam) == 2
    assert unread_count(db=world.db, actor=sam) == 0
    assert all(i.read for i in list_notifications(db=world.db, actor=sam))
    assert mark_all_read(db=world.db, actor=sam) == 0
    assert unread_count(db=world.db, actor=riley) == riley_unread == 2


def test_mark_read_marks_one_of_the_actors_own(world):
    escalate(world)
    sam = world.actor("sam")
    newest, _older = list_notifications(db=world.db, actor=sam)
    assert mark_read(db=world.db, actor=sam, notification_id=str(newest.id)) == newest.link
    assert mark_read(db=world.db, actor=sam, notification_id=newest.id) == newest.link  # again: no-op
    assert [i.read for i in list_notifications(db=world.db, actor=sam)] == [True, False]
    assert unread_count(db=world.db, actor=sam) == 1


def test_someone_elses_notification_is_not_found(world):
    escalate(world)
    sam_row = list_notifications(db=world.db, actor=world.actor("sam"))[0]
    jordan_row = list_notifications(db=world.db, actor=world.actor("jordan"))[0]
    riley = world.actor("riley")
    for notification_id in (sam_row.id, jordan_row.id, "abc", None, -1, 2**40):
        with pytest.raises(NotFound, match="Notification not found"):
            mark_read(db=world.db, actor=riley, notification_id=notification_id)
    world.db.expire_all()
    rows = world.db.exec(select(Notification).where(Notification.id.in_([sam_row.id, jordan_row.id]))).all()
    assert [r.read_at for r in rows] == [None, None]


def test_delivery_summary_reads_like_the_handoff_screen(world):
    handoff = escalate(world)
    for recipient, status in [("a@x", "sent"), ("b@x", "sent"), ("c@x", "failed"), ("d@x", "queued")]:
        add_delivery(
            world.db,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            channel="email",
            recipient=recipient,
            payload={},
            status=status,
        )
    for channel, status in [("slack", "sent"), ("teams", "failed")]:
        add_delivery(
            world.db,
            account_id=handoff.account_id,
            handoff_id=handoff.id,
            channel="webhook",
            recipient=channel,
            payload={},
            status=status,
        )
    # A "Send test" post belongs to no handoff and never shows here.
    add_delivery(
        world.db,
        account_id=handoff.account_id,
        handoff_id=None,
        channel="webhook",
        recipient="slack",
        payload={},
        kind="test",
    )
    world.db.commit()

    summary = delivery_summary(db=world.db, actor=world.actor("morgan"), handoff_id=str(handoff.id))
    assert summary.text == "Notified: 2 by email (1 failed, 1 sending), Slack ✓, Teams ✗"
    assert (summary.email_sent, summary.email_failed, summary.email_pending) == (2, 1, 1)
    assert summary.webhooks == {"Slack": "sent", "Teams": "failed"}
    assert len(summary.rows) == 6
    with pytest.raises(NotFound):
        delivery_summary(db=world.db, actor=world.actor("casey"), handoff_id=handoff.id)


def test_backoff_grows_and_stops_after_three_attempts():
    now = utcnow()
    assert next_attempt_after(1, now) == now + RETRY_BACKOFF[0] == now + timedelta(seconds=30)
    assert next_attempt_after(2, now) == now + RETRY_BACKOFF[1] == now + timedelta(minutes=2)
    assert next_attempt_after(3, now) is None
