"""The escalation clock: response targets, timed re-escalation, stalled claims, snooze.

Every timer is an outbox job of kind `timer` whose `run_at` is the absolute UTC instant
it is due, written in the transaction of the change that starts it:

- an escalation (`create_handoff` → `arm`) gets its response target from the account's
  policy, snapshotted onto the handoff (`clock`), and one job per re-escalation level
  (`timer:level:{handoff}:{n}`): level 2 at the target, level 3 a further delay later;
- a claim (`claim_handoff` → `claimed`) skips the pending level jobs in its own
  transaction and starts the stalled-claim reminder;
- a snoozed park (`park`, `snooze`) gets a wake-up job (`timer:wake:{handoff}:{instant}`).

`fire` runs a due timer (from `services.clock`). A level fires under the session's row
lock with one conditional UPDATE (`... WHERE claimed_by_id IS NULL AND escalation_level
< n`), the same lock and the same kind of decision a claim takes: whichever commits
first wins, so a claim in the same second either comes before the level (no
notification) or after it (the notification was honest). The dedupe key gives one job
per level, the lease one runner at a time, and the conditional UPDATE makes a second
runner (an expired lease, a second worker) a no-op. The jobs survive restarts: a timer
that fell due while no worker ran is simply due, and fires once, at start-up.

Policy changes apply to escalations created afterwards (see docs/decisions/0016).
"""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import cache

import humanize
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from escalation_app.domain import case_events, effects, outbox, validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.models import (
    AccountRole,
    CaseEvent,
    EscalationPolicy,
    HandoffIntent,
    JobStatus,
    OutboxJob,
    Priority,
    SessionHandoff,
    SessionStep,
    SupportSession,
    User,
)
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.types import utcnow

# ------------------------------------------------------------------------- the policy

DEFAULT_TARGETS = {Priority.URGENT: 5, Priority.HIGH: 15, Priority.NORMAL: 30, Priority.LOW: 120}
DEFAULT_STALL_MINUTES = 60
DEFAULT_TIME_ZONE = "UTC"
# Bounds of every minutes field: a minute up to a week.
MINUTES_MIN, MINUTES_MAX = 1, 7 * 24 * 60
NAMED_PEOPLE_MAX = 20
# The amber part of a card's clock: its last quarter.
WARN_FRACTION = 0.25


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_of(name: str | None) -> zoneinfo.ZoneInfo:
    """The account's zone; an unknown stored name (removed from tzdata) reads as UTC."""
    try:
        return zoneinfo.ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)


def policy_of(db: Session, account_id: int) -> EscalationPolicy:
    """The account's policy row, or an unsaved one holding the defaults."""
    row = db.exec(select(EscalationPolicy).where(EscalationPolicy.account_id == account_id)).first()
    return row or EscalationPolicy(account_id=account_id)


def target_minutes(policy: EscalationPolicy, priority: str) -> int:
    return int(getattr(policy, f"{Priority(priority).value}_minutes"))


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What /admin/policy shows (the stored policy, or the defaults)."""

    time_zone: str
    urgent_minutes: int
    high_minutes: int
    normal_minutes: int
    low_minutes: int
    level2_user_ids: list[int]
    level3_after_minutes: int | None
    level3_user_ids: list[int]
    stall_minutes: int | None
    people: list[tuple[int, str]]
    updated_by_name: str
    updated_at: datetime | None


def _require_manager(actor: Actor) -> None:
    if not actor.is_manager:
        raise PermissionDenied("Only owners and admins can change the escalation policy.")


def _policy_people(db: Session, account_id: int) -> list[User]:
    """Who can be named on a level: active owners, admins and engineers of the account."""
    return list(
        db.exec(
            select(User)
            .where(
                User.account_id == account_id,
                col(User.is_active).is_(True),
                col(User.deleted_at).is_(None),
                col(User.account_role).in_([AccountRole.OWNER, AccountRole.ADMIN, AccountRole.ENGINEER]),
            )
            .order_by(col(User.display_name), col(User.id))
        ).all()
    )


def read_policy(*, db: Session, actor: Actor) -> PolicyView:
    """The account's escalation policy (owners and admins only)."""
    _require_manager(actor)
    row = policy_of(db, actor.account_id)
    editor = db.get(User, row.updated_by_id) if row.updated_by_id else None
    return PolicyView(
        time_zone=row.time_zone,
        urgent_minutes=row.urgent_minutes,
        high_minutes=row.high_minutes,
        normal_minutes=row.normal_minutes,
        low_minutes=row.low_minutes,
        level2_user_ids=list(row.level2_user_ids or []),
        level3_after_minutes=row.level3_after_minutes,
        level3_user_ids=list(row.level3_user_ids or []),
        stall_minutes=row.stall_minutes,
        people=[(u.id, u.display_name) for u in _policy_people(db, actor.account_id)],
        updated_by_name=editor.display_name if editor else "",
        updated_at=row.updated_at if row.id is not None else None,
    )


def _minutes(raw: object, label: str, *, optional: bool = False) -> int | None:
    text = str(raw if raw is not None else "").strip()
    if not text:
        if optional:
            return None
        raise InvalidInput(f"{label} is required.")
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(f"{label} must be a whole number of minutes.")
    value = int(text)
    if not MINUTES_MIN <= value <= MINUTES_MAX:
        raise InvalidInput(f"{label} must be between {MINUTES_MIN} and {MINUTES_MAX:,} minutes (a week).")
    return value


def _people(db: Session, account_id: int, raw: object, label: str) -> list[int]:
    if raw in (None, "", []):
        return []
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    ids: list[int] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isascii() or not text.isdigit() or not 0 < int(text) <= 2**31 - 1:
            raise InvalidInput(f"{label}: choose teammates from the list.")
        if int(text) not in ids:
            ids.append(int(text))
    if len(ids) > NAMED_PEOPLE_MAX:
        raise InvalidInput(f"{label}: name at most {NAMED_PEOPLE_MAX} people.")
    allowed = {u.id for u in _policy_people(db, account_id)}
    if any(i not in allowed for i in ids):
        raise InvalidInput(f"{label}: one of them is not an active owner, admin or engineer of this account.")
    return ids


def save_policy(
    *,
    db: Session,
    actor: Actor,
    time_zone: str,
    urgent_minutes: object,
    high_minutes: object,
    normal_minutes: object,
    low_minutes: object,
    level2_user_ids: object = None,
    level3_after_minutes: object = None,
    level3_user_ids: object = None,
    stall_minutes: object = None,
) -> EscalationPolicy:
    """Validate and store the account's policy (owners and admins only); nothing changes on a bad field.

    Applies to escalations created from now on; open ones keep the targets they were
    created with (their timers are absolute instants already in the outbox).
    """
    _require_manager(actor)
    zone = validation.text(time_zone, "Time zone", max_length=64, required=True, multiline=False)
    if zone not in _zones():
        raise InvalidInput(
            f"Time zone “{zone}” is not known; use a name like Europe/London or America/New_York."
        )
    targets = {
        "urgent_minutes": _minutes(urgent_minutes, "Urgent target"),
        "high_minutes": _minutes(high_minutes, "High target"),
        "normal_minutes": _minutes(normal_minutes, "Normal target"),
        "low_minutes": _minutes(low_minutes, "Low target"),
    }
    level3_after = _minutes(level3_after_minutes, "Level 3 delay", optional=True)
    stall = _minutes(stall_minutes, "Stalled after", optional=True)
    level2 = _people(db, actor.account_id, level2_user_ids, "Level 2 people")
    level3 = _people(db, actor.account_id, level3_user_ids, "Level 3 people")
    if level3 and level3_after is None:
        raise InvalidInput("Set the level 3 delay to name people for level 3.")
    row = policy_of(db, actor.account_id)
    row.time_zone = zone
    for name, value in targets.items():
        setattr(row, name, value)
    row.level2_user_ids = level2
    row.level3_after_minutes = level3_after
    row.level3_user_ids = level3
    row.stall_minutes = stall
    row.updated_at = utcnow()
    row.updated_by_id = actor.id
    db.add(row)
    db.commit()
    db.refresh(row)
    return row


def account_time_zone(db: Session, account_id: int) -> str:
    return policy_of(db, account_id).time_zone or DEFAULT_TIME_ZONE


# ------------------------------------------------------------------------- timers


class Timer(StrEnum):
    LEVEL = "level"
    STALL = "stall"
    WAKE = "wake"


def level_key(handoff_id: uuid.UUID, level: int) -> str:
    return f"timer:level:{handoff_id}:{level}"


def _stall_key(handoff_id: uuid.UUID, claimed_at: datetime, stage: int) -> str:
    return f"timer:stall:{handoff_id}:{int(claimed_at.timestamp() * 1000)}:{stage}"


def _wake_key(handoff_id: uuid.UUID) -> str:
    # One key per snooze: moving or re-setting a wake-up skips the old job and adds a new one.
    return f"timer:wake:{handoff_id}:{uuid.uuid4().hex[:12]}"


def _timer(
    db: Session,
    handoff: SessionHandoff,
    key: str,
    run_at: datetime,
    now: datetime,
    *,
    fresh: bool = False,
    **payload,
) -> None:
    """One timer job of `handoff`, due at `run_at`; `fresh`: the handoff is new in this transaction."""
    outbox.enqueue(
        db,
        kind=JobKind.TIMER,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        recipient=str(payload.get("timer", "")),
        payload={**payload, "due": run_at.isoformat()},
        run_at=run_at,
        dedupe_key=key,
        now=now,
        fresh=fresh,
    )


def snapshot(policy: EscalationPolicy, priority: str) -> dict:
    """The part of the policy an escalation keeps for its whole life."""
    return {
        "target_minutes": target_minutes(policy, priority),
        "level3_after_minutes": policy.level3_after_minutes,
        "level2_user_ids": list(policy.level2_user_ids or []),
        "level3_user_ids": list(policy.level3_user_ids or []),
        "stall_minutes": policy.stall_minutes,
    }


def level_instants(handoff: SessionHandoff) -> dict[int, datetime]:
    """When each re-escalation level of an escalation is due."""
    clock = handoff.clock or {}
    if handoff.response_due_at is None:
        return {}
    instants = {2: handoff.response_due_at}
    if clock.get("level3_after_minutes"):
        instants[3] = handoff.response_due_at + timedelta(minutes=int(clock["level3_after_minutes"]))
    return instants


def arm(db: Session, handoff: SessionHandoff, *, now: datetime, wake_at: datetime | None = None) -> None:
    """A new handoff, before its insert: an escalation's target (the policy snapshotted), a park's wake-up."""
    if handoff.intent == HandoffIntent.ESCALATE:
        handoff.clock = snapshot(policy_of(db, handoff.account_id), handoff.priority)
        handoff.response_due_at = now + timedelta(minutes=handoff.clock["target_minutes"])
    elif handoff.intent == HandoffIntent.PARK and wake_at is not None:
        handoff.wake_at = wake_at


def start_timers(db: Session, handoff: SessionHandoff, *, now: datetime) -> None:
    """In a new handoff's transaction, once it is flushed (the jobs reference it): its timers."""
    if handoff.intent == HandoffIntent.ESCALATE:
        for level, due in level_instants(handoff).items():
            _timer(
                db,
                handoff,
                level_key(handoff.id, level),
                due,
                now,
                fresh=True,
                timer=Timer.LEVEL.value,
                level=level,
            )
    elif handoff.intent == HandoffIntent.PARK and handoff.wake_at is not None:
        _timer(db, handoff, _wake_key(handoff.id), handoff.wake_at, now, fresh=True, timer=Timer.WAKE.value)


def _skip_pending(db: Session, handoff_id: uuid.UUID, key_prefix: str, reason: str, now: datetime) -> int:
    result = db.exec(
        update(OutboxJob)
        .where(
            col(OutboxJob.handoff_id) == handoff_id,
            col(OutboxJob.kind) == JobKind.TIMER,
            col(OutboxJob.status) == JobStatus.PENDING,
            col(OutboxJob.dedupe_key).startswith(key_prefix),
        )
        .values(status=JobStatus.SKIPPED, last_error=reason, finished_at=now, updated_at=now)
    )
    return result.rowcount or 0


def claimed(db: Session, handoff: SessionHandoff, *, now: datetime) -> None:
    """In a claim's transaction: no level fires any more; the stalled-claim reminder starts."""
    _skip_pending(db, handoff.id, f"timer:level:{handoff.id}:", "Picked up before it was due", now)
    stall = (handoff.clock or {}).get("stall_minutes")
    if handoff.intent == HandoffIntent.ESCALATE and stall and handoff.claimed_at is not None:
        _timer(
            db,
            handoff,
            _stall_key(handoff.id, handoff.claimed_at, 1),
            handoff.claimed_at + timedelta(minutes=int(stall)),
            now,
            # The key names this claim's instant: no earlier job can have it.
            fresh=True,
            timer=Timer.STALL.value,
            stage=1,
            claimed_at=handoff.claimed_at.isoformat(),
        )


# ------------------------------------------------------------------------- snooze


class Wake(StrEnum):
    NONE = "none"
    HOUR = "1h"
    TOMORROW = "tomorrow"
    AT = "at"


WAKE_MAX_AHEAD = timedelta(days=90)
MORNING = time(9, 0)


def wake_instant(wake: str | None, at: str | None, *, zone: str, now: datetime) -> datetime | None:
    """When "Wake me" means (UTC), or None for no wake-up.

    "1h": an hour from now; "tomorrow": 9:00 tomorrow in the account's time zone;
    "at": a local date and time (YYYY-MM-DDTHH:MM, the browser's datetime-local) in it.
    """
    choice = validation.choice(wake, Wake, "Wake me", default=Wake.NONE)
    local = zone_of(zone)
    if choice == Wake.NONE:
        return None
    if choice == Wake.HOUR:
        return now + timedelta(hours=1)
    if choice == Wake.TOMORROW:
        tomorrow = now.astimezone(local).date() + timedelta(days=1)
        return datetime.combine(tomorrow, MORNING, tzinfo=local).astimezone(UTC)
    text = validation.text(at, "Wake-up time", max_length=40, multiline=False)
    if not text:
        raise InvalidInput("Choose the date and time to wake up at.")
    try:
        chosen = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("Wake-up time must be a date and time like 2026-12-24T09:00.") from None
    if chosen.tzinfo is None:
        chosen = chosen.replace(tzinfo=local)
    chosen = chosen.astimezone(UTC)
    if chosen <= now:
        raise InvalidInput("Wake-up time must be in the future.")
    if chosen - now > WAKE_MAX_AHEAD:
        raise InvalidInput("Wake-up time must be within 90 days.")
    return chosen


def park(
    *,
    db: Session,
    actor: Actor,
    session_id: int,
    notes: str = "",
    wake: str | None = None,
    wake_at: str | None = None,
    priority: str | None = None,
    target_user_id: int | str | None = None,
) -> SessionHandoff:
    """Park a session, optionally with "Wake me"; a bad wake-up time changes nothing.

    Everything else is `create_handoff`'s (which refuses a park sent to a teammate).
    """
    from escalation_app.domain.handoffs import create_handoff

    if not actor.can_work_handoffs:
        raise PermissionDenied("Viewers have read-only access.")
    instant = wake_instant(wake, wake_at, zone=account_time_zone(db, actor.account_id), now=utcnow())
    return create_handoff(
        db=db,
        actor=actor,
        session_id=session_id,
        intent="park",
        notes=notes,
        priority=priority,
        target_user_id=target_user_id,
        wake_at=instant,
    )


def _open_park(db: Session, actor: Actor, session_id: int) -> tuple[SupportSession, SessionHandoff]:
    support_session = case_events.lock_session(db, session_id)
    if support_session is None or support_session.account_id != actor.account_id:
        raise NotFound("Session not found.")
    if support_session.owner_id != actor.id:
        raise NotFound("Session not found.")
    handoff = case_events.open_handoff(db, session_id)
    if handoff is None or handoff.intent != HandoffIntent.PARK or handoff.claimed_by_id is not None:
        raise InvalidInput("Only a parked session can be snoozed.")
    return support_session, handoff


def snooze(
    *, db: Session, actor: Actor, session_id: int, wake: str, wake_at: str | None = None
) -> SessionHandoff:
    """Set (or move) the wake-up of the actor's parked session."""
    now = utcnow()
    instant = wake_instant(wake, wake_at, zone=account_time_zone(db, actor.account_id), now=now)
    if instant is None:
        return unsnooze(db=db, actor=actor, session_id=session_id)
    _, handoff = _open_park(db, actor, session_id)
    _skip_pending(db, handoff.id, f"timer:wake:{handoff.id}:", "Snooze changed", now)
    handoff.wake_at = instant
    db.add(handoff)
    _timer(db, handoff, _wake_key(handoff.id), instant, now, fresh=True, timer=Timer.WAKE.value)
    effects.case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    db.commit()
    return handoff


def unsnooze(*, db: Session, actor: Actor, session_id: int) -> SessionHandoff:
    """Cancel the wake-up of the actor's parked session (it stays parked)."""
    now = utcnow()
    _, handoff = _open_park(db, actor, session_id)
    _skip_pending(db, handoff.id, f"timer:wake:{handoff.id}:", "Snooze cancelled", now)
    handoff.wake_at = None
    db.add(handoff)
    effects.case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    db.commit()
    return handoff


@dataclass(frozen=True, slots=True)
class SnoozeView:
    """A session's park and its wake-up, for the session page (labels in the account's zone)."""

    parked: bool
    wake_at: datetime | None
    woke_at: datetime | None
    time_zone: str = DEFAULT_TIME_ZONE

    def label(self, instant: datetime | None) -> str:
        return local_label(instant, self.time_zone)


def local_label(instant: datetime | None, zone: str) -> str:
    """An instant as the account reads it: "Thu 3 Dec, 09:00 (Europe/London)"."""
    if instant is None:
        return ""
    local = instant.astimezone(zone_of(zone))
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} ({zone or DEFAULT_TIME_ZONE})"


def snooze_of(db: Session, session_id: int) -> SnoozeView:
    handoff = case_events.open_handoff(db, session_id)
    if handoff is None or handoff.intent != HandoffIntent.PARK:
        return SnoozeView(parked=False, wake_at=None, woke_at=None)
    zone = account_time_zone(db, handoff.account_id)
    return SnoozeView(parked=True, wake_at=handoff.wake_at, woke_at=handoff.woke_at, time_zone=zone)


# ------------------------------------------------------------------------- firing

BELL_TITLE_MAX = 300


def _summary(db: Session, handoff: SessionHandoff) -> str:
    snapshot_ = handoff.snapshot or {}
    text = snapshot_.get("problem_summary")
    if not text:
        support_session = db.get(SupportSession, handoff.session_id)
        text = support_session.problem_summary if support_session else "Support session"
    return " ".join(str(text).split())


def _active(query):
    return query.where(
        col(User.is_active).is_(True),
        col(User.deleted_at).is_(None),
        col(User.account_role).in_([AccountRole.OWNER, AccountRole.ADMIN, AccountRole.ENGINEER]),
    )


def level_people(db: Session, handoff: SessionHandoff, level: int) -> list[User]:
    """Who a level tells: its named people, else owners and admins (level 2) or owners (level 3)."""
    named = [int(i) for i in (handoff.clock or {}).get(f"level{level}_user_ids") or []]
    query = _active(select(User).where(User.account_id == handoff.account_id))
    if named:
        query = query.where(col(User.id).in_(named))
    elif level == 2:
        query = query.where(col(User.account_role).in_([AccountRole.OWNER, AccountRole.ADMIN]))
    else:
        query = query.where(User.account_role == AccountRole.OWNER)
    query = query.where(User.id != handoff.handed_off_by_id)
    return list(db.exec(query.order_by(col(User.id))).all())


def _tell(
    db: Session,
    handoff: SessionHandoff,
    users: list[User],
    *,
    key: str,
    title: str,
    lead: str,
    link: str,
    now: datetime,
) -> None:
    """Bells (rows of this transaction), one email job each, and the bells' live push."""
    title = title[:BELL_TITLE_MAX]
    effects.notify_users(
        db,
        handoff=handoff,
        users=users,
        title=title,
        body=lead[: effects.BELL_BODY_MAX],
        link=link,
        email_payload={"message": "notice", "title": title, "lead": lead, "link": link},
        email_key=key,
        now=now,
    )


def _chat(db: Session, handoff: SessionHandoff, *, key: str, title: str, now: datetime) -> None:
    from escalation_app.domain.integrations import WebhookChannel, integration_row

    row = integration_row(db, handoff.account_id)
    for channel in WebhookChannel:
        if row is not None and getattr(row, f"{channel.value}_webhook_url"):
            outbox.enqueue(
                db,
                kind=JobKind.WEBHOOK,
                account_id=handoff.account_id,
                handoff_id=handoff.id,
                recipient=channel.value,
                payload={"channel": channel.value, "title": title},
                dedupe_key=f"webhook:{key}:{channel.value}",
                now=now,
            )


def _waited(minutes: float) -> str:
    """How long something waited, as titles say it: "30 min", "2 hours and 5 min"."""
    whole = max(1, round(minutes))
    if whole < 120:
        return f"{whole} min"
    text = humanize.precisedelta(timedelta(minutes=whole), minimum_unit="minutes", format="%0.0f")
    return text.replace("minutes", "min").replace("minute", "min")


def _fire_level(db: Session, job: outbox.JobView, handoff: SessionHandoff, now: datetime) -> str:
    from escalation_app.domain.psa.delivery import enqueue_clock_note

    level = int(job.payload.get("level") or 0)
    if level not in (2, 3):
        raise outbox.JobRefused(f"Unknown level {level!r}")
    won = db.exec(
        update(SessionHandoff)
        .where(
            col(SessionHandoff.id) == handoff.id,
            col(SessionHandoff.claimed_by_id).is_(None),
            col(SessionHandoff.outcome).is_(None),
            col(SessionHandoff.escalation_level) < level,
        )
        .values(escalation_level=level)
        .returning(col(SessionHandoff.id))
    ).first()
    if won is None:
        db.rollback()
        current = db.get(SessionHandoff, handoff.id)
        if current is not None and current.claimed_by_id is not None:
            raise outbox.JobSkipped(f"Picked up before level {level} was due")
        if current is not None and current.outcome is not None:
            raise outbox.JobSkipped("The escalation has ended")
        raise outbox.JobSkipped(f"Level {level} has already fired")
    db.refresh(handoff)
    if handoff.re_escalated_at is None:
        # When it first went past level 1 (the analytics' re-escalations).
        handoff.re_escalated_at = now
        db.add(handoff)
    due = datetime.fromisoformat(job.payload["due"]) if job.payload.get("due") else job.run_at
    waited = _waited((due - handoff.created_at).total_seconds() / 60)
    summary = _summary(db, handoff)
    title = f"Unclaimed for {waited}: {summary}"
    people = level_people(db, handoff, level)
    lead = f"Nobody has picked this escalation up for {waited}; it is re-escalated to you (level {level})."
    key = f"level{level}:{handoff.id}"
    _tell(db, handoff, people, key=key, title=title, lead=lead, link=f"/handoffs/{handoff.id}", now=now)
    _chat(db, handoff, key=key, title=title, now=now)
    names = ", ".join(p.display_name for p in people) or "nobody (no owner or admin is active)"
    enqueue_clock_note(
        db,
        handoff,
        f"Unclaimed for {waited}: re-escalated to level {level} ({names[:300]})",
        key=f"psa:{key}",
        now=now,
    )
    effects.case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    db.commit()
    return f"level {level}: {len(people)} told"


def _last_activity(db: Session, handoff: SessionHandoff, since: datetime) -> datetime:
    step = db.exec(
        select(func.max(SessionStep.created_at)).where(SessionStep.session_id == handoff.session_id)
    ).first()
    event = db.exec(select(func.max(CaseEvent.created_at)).where(CaseEvent.handoff_id == handoff.id)).first()
    candidates = [since] + [_aware(v) for v in (step, event) if v is not None]
    return max(candidates)


def _aware(value) -> datetime:
    # max() over a UTCDateTime column comes back without the column type on SQLite.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fire_stall(db: Session, job: outbox.JobView, handoff: SessionHandoff, now: datetime) -> str:
    stage = int(job.payload.get("stage") or 1)
    claimed_at = job.payload.get("claimed_at")
    if (
        handoff.claimed_by_id is None
        or handoff.outcome is not None
        or handoff.claimed_at is None
        or claimed_at is None
        or handoff.claimed_at != datetime.fromisoformat(claimed_at)
    ):
        raise outbox.JobSkipped("No longer worked under that claim")
    minutes = int((handoff.clock or {}).get("stall_minutes") or DEFAULT_STALL_MINUTES)
    since = handoff.claimed_at if stage == 1 else datetime.fromisoformat(job.payload["since"])
    last = _last_activity(db, handoff, since)
    if stage == 2 and last > since:
        raise outbox.JobSkipped("Work resumed after the reminder")
    due = last + timedelta(minutes=minutes)
    if due > now:
        # A step since: the reminder moves to the new "no progress" instant.
        db.rollback()
        raise outbox.JobWaits(due, "progress since the claim")
    support_session = db.get(SupportSession, handoff.session_id)
    assert support_session is not None
    summary = _summary(db, handoff)
    waited = _waited((now - last).total_seconds() / 60)
    title = f"No progress for {waited}: {summary}"
    if stage == 1:
        assignee = db.get(User, support_session.assignee_id) if support_session.assignee_id else None
        people = [assignee] if assignee is not None else []
        lead = "You picked this escalation up and no step, hand-back or resolution has been added since."
    else:
        people = level_people(db, handoff, 2)
        lead = "Picked up, then no step, hand-back or resolution since, after a reminder to its assignee."
    key = f"stall{stage}:{handoff.id}:{int(handoff.claimed_at.timestamp())}"
    _tell(db, handoff, people, key=key, title=title, lead=lead, link=f"/handoffs/{handoff.id}", now=now)
    if stage == 1:
        _timer(
            db,
            handoff,
            _stall_key(handoff.id, handoff.claimed_at, 2),
            now + timedelta(minutes=minutes),
            now,
            timer=Timer.STALL.value,
            stage=2,
            claimed_at=claimed_at,
            since=now.isoformat(),
        )
    db.commit()
    return f"stalled (stage {stage}): {len(people)} told"


def _fire_wake(db: Session, job: outbox.JobView, handoff: SessionHandoff, now: datetime) -> str:
    due = job.payload.get("due")
    if (
        handoff.intent != HandoffIntent.PARK
        or handoff.outcome is not None
        or handoff.claimed_by_id is not None
        or handoff.wake_at is None
        or due is None
        or handoff.wake_at != datetime.fromisoformat(due)
    ):
        raise outbox.JobSkipped("Snooze cancelled or changed")
    support_session = db.get(SupportSession, handoff.session_id)
    owner = db.get(User, support_session.owner_id) if support_session else None
    handoff.wake_at = None
    handoff.woke_at = now
    db.add(handoff)
    summary = _summary(db, handoff)
    people = [owner] if owner is not None and owner.is_active and owner.deleted_at is None else []
    _tell(
        db,
        handoff,
        people,
        key=f"wake:{handoff.id}:{int(now.timestamp())}",
        title=f"Parked session is back: {summary}",
        lead="The session you parked with “Wake me” is back.",
        link=f"/sessions/{handoff.session_id}",
        now=now,
    )
    effects.case_changed(db, account_id=handoff.account_id, handoff_id=handoff.id, now=now)
    db.commit()
    return "woke"


def fire(db: Session, job: outbox.JobView, *, now: datetime | None = None) -> str:
    """Run a due timer job in one transaction, under the session's row lock.

    `now` is when it fires: never before its due instant (a worker whose clock runs
    ahead, as in tests, fires it at that instant). Raises `outbox.JobSkipped` when the
    timer no longer applies (claimed, ended, cancelled) and `outbox.JobWaits` when a
    stalled-claim reminder moves later.
    """
    now = max(now or utcnow(), job.run_at)
    handoff = db.get(SessionHandoff, job.handoff_id) if job.handoff_id else None
    if handoff is None:
        raise outbox.JobSkipped("Handoff no longer exists")
    # The session's lock first, as a claim and every other transition take it.
    case_events.lock_session(db, handoff.session_id)
    db.refresh(handoff)
    kind = job.payload.get("timer")
    if kind == Timer.LEVEL:
        return _fire_level(db, job, handoff, now)
    if kind == Timer.STALL:
        return _fire_stall(db, job, handoff, now)
    if kind == Timer.WAKE:
        return _fire_wake(db, job, handoff, now)
    raise outbox.JobRefused(f"Unknown timer {kind!r}")


# ------------------------------------------------------------------------- what cards show


def card_fields(
    *,
    intent: str,
    response_due_at: datetime | None,
    created_at: datetime,
    escalation_level: int | None,
    woke_at: datetime | None,
) -> dict[str, str]:
    """A queue card's clock: its deadline instant (the browser ticks it), level and wake-up."""
    level = int(escalation_level or 1)
    return {
        "due_at": response_due_at.isoformat() if response_due_at and intent == HandoffIntent.ESCALATE else "",
        "level": str(level),
        "level_label": f"Re-escalated to level {level}" if level > 1 else "",
        "woke_at": woke_at.isoformat() if woke_at else "",
    }
