"""The bell (list, unread count, mark read) and delivery summaries, on both databases."""

from __future__ import annotations

import pytest
from sqlmodel import select

from escalation_app.domain import outbox
from escalation_app.domain.deliveries import delivery_summary, retry_delivery
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import AccountIntegration, JobStatus, Notification, OutboxJob
from escalation_app.domain.notifications import (
    list_notifications,
    mark_all_read,
    mark_read,
    notified_user_ids,
    unread_count,
)
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


def _set(db, job: OutboxJob, status: str, *, error: str | None = None, attempts: int = 1) -> None:
    job.status, job.last_error, job.attempts = status, error, attempts
    db.add(job)


def test_delivery_summary_reads_like_the_handoff_screen(world):
    world.db.add(
        AccountIntegration(
            account_id=world.actor("alex").account_id,
            slack_webhook_url="https://hooks.slack.com/services/T0/B0/x",
            teams_webhook_url="https://example.webhook.office.com/webhookb2/x",
        )
    )
    world.db.commit()
    handoff = escalate(world)
    jobs = {j.recipient: j for j in outbox.jobs_of_handoff(world.db, handoff.id, ["email", "webhook"])}
    # Sam, Riley and Morgan are emailed (not Alex who escalated, not Val the viewer).
    assert set(jobs) == {
        "sam@northwind.example",
        "riley@northwind.example",
        "morgan@northwind.example",
        "slack",
        "teams",
    }
    _set(world.db, jobs["sam@northwind.example"], JobStatus.DONE)
    _set(world.db, jobs["riley@northwind.example"], JobStatus.PENDING, error="Timed out after 10 s")
    _set(world.db, jobs["morgan@northwind.example"], JobStatus.PENDING, attempts=0)
    _set(world.db, jobs["slack"], JobStatus.DONE)
    _set(world.db, jobs["teams"], JobStatus.FAILED, error="HTTP 400", attempts=3)
    # A "Send test" post belongs to no handoff and never shows here.
    outbox.record_finished(
        world.db, kind="webhook", account_id=handoff.account_id, recipient="slack", payload={}, error=None
    )
    world.db.commit()

    summary = delivery_summary(db=world.db, actor=world.actor("morgan"), handoff_id=str(handoff.id))
    assert summary.text == "Notified: 1 by email (1 failed, 1 sending), Slack ✓, Teams ✗"
    assert (summary.email_sent, summary.email_failed, summary.email_pending) == (1, 1, 1)
    assert summary.webhooks == {"Slack": "sent", "Teams": "failed"}
    assert len(summary.rows) == 5
    assert [r.can_retry for r in summary.rows if r.channel == "webhook"] == [False, True]
    with pytest.raises(NotFound):
        delivery_summary(db=world.db, actor=world.actor("casey"), handoff_id=handoff.id)


def test_a_failed_delivery_can_be_retried_by_a_manager_only(world):
    handoff = escalate(world)
    jobs = outbox.jobs_of_handoff(world.db, handoff.id, ["email"])
    failed, sent = jobs[0], jobs[1]
    _set(world.db, failed, JobStatus.FAILED, error="Recipient refused", attempts=3)
    _set(world.db, sent, JobStatus.DONE)
    world.db.commit()
    with pytest.raises(PermissionDenied):
        retry_delivery(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id, delivery_id=failed.id)
    with pytest.raises(NotFound):
        retry_delivery(db=world.db, actor=world.actor("jordan"), handoff_id=handoff.id, delivery_id=failed.id)
    for bad in ("x", None, -1, 2**40, sent.id + 10_000):
        with pytest.raises(NotFound):
            retry_delivery(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id, delivery_id=bad)
    with pytest.raises(InvalidInput, match="Only a failed delivery"):
        retry_delivery(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id, delivery_id=sent.id)

    retry_delivery(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id, delivery_id=failed.id)
    world.db.expire_all()
    again = world.db.get(OutboxJob, failed.id)
    assert (again.status, again.attempts, again.last_error) == ("pending", 0, None)
    with pytest.raises(InvalidInput):
        retry_delivery(db=world.db, actor=world.actor("riley"), handoff_id=handoff.id, delivery_id=failed.id)


def test_an_escalation_notifies_only_those_who_may_open_it(world):
    """Engineers of another team neither get the bell nor the email; managers and team-less engineers do."""
    from escalation_app.domain.models import Team

    other_team = Team(account_id=world.northwind.id, name="Projects")
    world.db.add(other_team)
    world.db.commit()
    world.add_user("pat@northwind.example", "Pat Other", "engineer")
    world.add_user("lou@northwind.example", "Lou Loose", "engineer")
    world.add_user("ada@northwind.example", "Ada Admin", "admin")
    world.users["pat"].team_id = other_team.id
    world.users["lou"].team_id = None
    world.users["ada"].team_id = other_team.id
    world.db.add_all([world.users["pat"], world.users["lou"], world.users["ada"]])
    world.db.commit()

    handoff = escalate(world)

    emailed = {j.recipient for j in outbox.jobs_of_handoff(world.db, handoff.id, ["email"])}
    belled = {
        n.user_id for n in world.db.exec(select(Notification).where(Notification.handoff_id == handoff.id))
    }
    expected = {"sam", "riley", "morgan", "lou", "ada"}
    assert emailed == {f"{name}@northwind.example" for name in expected}
    assert belled == {world.users[name].id for name in expected}
