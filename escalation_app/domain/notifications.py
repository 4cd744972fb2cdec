"""In-app (bell) notifications: read, count and mark read.

The rows themselves are written by `handoffs.create_handoff`, inside the handoff's own
transaction, so a bell entry exists exactly when its handoff does. Everything here is
scoped to the actor's own rows in the actor's own account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import NotFound
from escalation_app.domain.models import Notification
from escalation_app.domain.types import utcnow

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class NotificationItem:
    """One line of the bell dropdown."""

    id: int
    title: str
    body: str
    # A path inside the app ("/handoffs/<id>"), not a full URL.
    link: str
    handoff_id: str | None
    read: bool
    created_at: datetime


def _own(actor: Actor):
    return (Notification.account_id == actor.account_id, Notification.user_id == actor.id)


def list_notifications(*, db: Session, actor: Actor, limit: int = DEFAULT_LIMIT) -> list[NotificationItem]:
    """The actor's most recent notifications, newest first (read and unread)."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    rows = db.exec(
        select(Notification)
        .where(*_own(actor))
        .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
        .limit(limit)
    ).all()
    return [
        NotificationItem(
            id=n.id,
            title=n.title,
            body=n.body,
            link=n.link,
            handoff_id=str(n.handoff_id) if n.handoff_id else None,
            read=n.read_at is not None,
            created_at=n.created_at,
        )
        for n in rows
    ]


def unread_count(*, db: Session, actor: Actor) -> int:
    """How many of the actor's notifications are unread (the bell's badge)."""
    return db.exec(
        select(func.count())
        .select_from(Notification)
        .where(*_own(actor), col(Notification.read_at).is_(None))
    ).one()


def mark_all_read(*, db: Session, actor: Actor) -> int:
    """Mark every unread notification of the actor read; returns how many changed."""
    result = db.exec(
        update(Notification).where(*_own(actor), col(Notification.read_at).is_(None)).values(read_at=utcnow())
    )
    db.commit()
    return result.rowcount


def mark_read(*, db: Session, actor: Actor, notification_id: int | str) -> str:
    """Mark one of the actor's notifications read (repeating it is a no-op); returns its link.

    Someone else's notification, or another account's, is simply not found.
    """
    try:
        wanted = int(notification_id)
    except (TypeError, ValueError):
        raise NotFound("Notification not found.") from None
    # Ids come from the browser; one past PostgreSQL's integer range would be a DB error.
    notification = db.get(Notification, wanted) if 0 < wanted < 2**31 else None
    if (
        notification is None
        or notification.account_id != actor.account_id
        or notification.user_id != actor.id
    ):
        raise NotFound("Notification not found.")
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.add(notification)
        db.commit()
    return notification.link


def notified_user_ids(*, db: Session, account_id: int, handoff_id: uuid.UUID) -> list[int]:
    """Who got a bell entry for a handoff: the users whose badge should update live.

    For the realtime layer after an escalation commits; not for the click path's
    authorisation (it takes an account id, not an actor).
    """
    return list(
        db.exec(
            select(Notification.user_id)
            .where(Notification.account_id == account_id, Notification.handoff_id == handoff_id)
            .order_by(col(Notification.user_id))
        ).all()
    )


BELL_ITEMS = 15


def bell_view(unread: int, rows: list[NotificationItem]) -> dict:
    """The bell's vars for one user (the live push sends the same to all of that user's tabs)."""
    return {
        "unread": unread,
        "items": [
            {
                "id": str(n.id),
                "title": n.title,
                "body": n.body,
                "link": n.link,
                "read": "yes" if n.read else "",
                "created_at": n.created_at.isoformat(),
            }
            for n in rows
        ],
    }


def read_bell(db: Session, actor: Actor) -> dict:
    """One user's bell, read in one session."""
    return bell_view(
        unread_count(db=db, actor=actor),
        list_notifications(db=db, actor=actor, limit=BELL_ITEMS),
    )
