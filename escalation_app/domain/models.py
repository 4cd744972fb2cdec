"""The tables of Escalation Desk.

Plain SQLModel tables (no Reflex import): the domain functions read and write these,
and nothing else outside `domain/` touches a row directly.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, column, func, text
from sqlmodel import Field, SQLModel

from escalation_app.domain.types import JSONDoc, UTCDateTime, utcnow


class AccountRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    ENGINEER = "engineer"
    VIEWER = "viewer"


class SessionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class ConfidenceTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class HandoffIntent(StrEnum):
    PARK = "park"
    ESCALATE = "escalate"
    # The assignee gives the session back to its owner, with guidance (`domain.casework`).
    HANDBACK = "handback"


class HandoffOutcome(StrEnum):
    """How a handoff ended (None while it is open: waiting in the queue or being worked)."""

    RESOLVED = "resolved"
    HANDED_BACK = "handed_back"
    ESCALATED_ON = "escalated_on"


class CaseEventKind(StrEnum):
    """The transitions of a session after a handoff, one `CaseEvent` row each."""

    CLAIMED = "claimed"
    RESOLVED = "resolved"
    HANDED_BACK = "handed_back"
    ESCALATED_ON = "escalated_on"
    RELEASED = "released"
    REASSIGNED = "reassigned"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class AIStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    NOT_NEEDED = "not_needed"


def _created_at() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    created_at: datetime = _created_at()


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    name: str = Field(max_length=120)
    created_at: datetime = _created_at()


class User(SQLModel, table=True):
    # "user" is reserved in PostgreSQL.
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    # Stored lower-cased, so the unique index is case-insensitive.
    email: str = Field(max_length=254, unique=True)
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=255)
    account_role: str = Field(default=AccountRole.ENGINEER, max_length=16)
    is_active: bool = True
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created_at()


def _trigram_index(name: str, column_name: str) -> Index:
    """A pg_trgm GIN index serving `lower(column) LIKE '%text%'` (history search, migration 0005).

    PostgreSQL only: SQLite has no trigram index and a B-tree cannot serve a substring
    match. Alembic compares expression indexes on PostgreSQL and skips them on SQLite,
    where they never exist.
    """
    label = f"{column_name}_lower"
    return Index(
        name,
        func.lower(column(column_name)).label(label),
        postgresql_using="gin",
        postgresql_ops={label: "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


class SupportSession(SQLModel, table=True):
    __tablename__ = "support_session"
    __table_args__ = (
        Index("ix_support_session_owner_updated", "owner_id", "updated_at"),
        # History search by problem summary.
        _trigram_index("ix_support_session_summary_trgm", "problem_summary"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    owner_id: int = Field(foreign_key="app_user.id")
    problem_summary: str = Field(max_length=200)
    problem_domain: str = Field(default="", max_length=80)
    client_name: str = Field(default="", max_length=120)
    psa_ticket_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default=SessionStatus.ACTIVE, max_length=16)
    confidence_tier: str = Field(default=ConfidenceTier.MEDIUM, max_length=16)
    handoff_count: int = 0
    escalation_reason: str | None = None
    escalated_to_id: int | None = Field(default=None, foreign_key="app_user.id")
    # Who works the session now besides its owner: the senior who picked it up (None
    # while the owner works it alone, or while it waits in the queue).
    assignee_id: int | None = Field(default=None, foreign_key="app_user.id")
    # How it ended: "What fixed it" and a root cause from `casework.ROOT_CAUSES`.
    resolution: str | None = Field(default=None, max_length=2000)
    root_cause: str | None = Field(default=None, max_length=32)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = _created_at()
    updated_at: datetime = _created_at()


class SessionStep(SQLModel, table=True):
    __tablename__ = "session_step"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="support_session.id", index=True)
    # "order" is reserved in SQL; the column is `position`.
    position: int
    tried: str
    result: str = ""
    skipped: bool = False
    created_at: datetime = _created_at()


class SessionHandoff(SQLModel, table=True):
    __tablename__ = "session_handoff"
    __table_args__ = (
        # The queue: one account (and team), unclaimed, newest first.
        Index(
            "ix_handoff_queue",
            "account_id",
            "team_id",
            "created_at",
            postgresql_where=text("claimed_by_id IS NULL"),
            sqlite_where=text("claimed_by_id IS NULL"),
        ),
        # History views: an account's handoffs newest first, and by who handed off.
        Index("ix_handoff_account_created", "account_id", "created_at"),
        Index("ix_handoff_account_by_created", "account_id", "handed_off_by_id", "created_at"),
        Index("ix_handoff_session_created", "session_id", "created_at"),
        # Analytics: an account's claims in a time window (time-to-claim series, top claimers).
        Index("ix_handoff_account_claimed", "account_id", "claimed_at"),
        # History search by the engineer's notes.
        _trigram_index("ix_handoff_notes_trgm", "engineer_notes"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: int = Field(foreign_key="support_session.id")
    account_id: int = Field(foreign_key="account.id")
    team_id: int | None = Field(default=None, foreign_key="team.id")
    handed_off_by_id: int = Field(foreign_key="app_user.id")
    intent: str = Field(max_length=16)
    priority: str = Field(default=Priority.NORMAL, max_length=16)
    engineer_notes: str = ""
    target_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    snapshot: dict = Field(default_factory=dict, sa_column=Column(JSONDoc, nullable=False))
    ai_assessment: str | None = None
    ai_assessment_data: dict | None = Field(default=None, sa_column=Column(JSONDoc))
    ai_status: str = Field(default=AIStatus.PENDING, max_length=16)
    ai_error: str | None = Field(default=None, max_length=500)
    ai_model: str | None = Field(default=None, max_length=100)
    ai_generated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Indexes of suggested steps the claiming senior has ticked off.
    checked_steps: list = Field(default_factory=list, sa_column=Column(JSONDoc, nullable=False))
    claimed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # How it ended (`HandoffOutcome`), None while open; an ended handoff is never in a queue.
    outcome: str | None = Field(default=None, max_length=16)
    outcome_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # How many items of the escalation completeness check were missing when it was sent
    # (`domain.completeness`); None for parks and for escalations sent before the check.
    completeness_missing: int | None = None
    # The escalation clock (`domain.clock`): when it should be picked up by (the
    # account's target for its priority, snapshotted at creation with the rest of the
    # policy in `clock`), the re-escalation level reached and when level 2 fired.
    response_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    clock: dict | None = Field(default=None, sa_column=Column(JSONDoc))
    escalation_level: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    re_escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A snoozed park: when it wakes (None when not snoozed), and when it last woke.
    wake_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    woke_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created_at()


class EscalationPolicy(SQLModel, table=True):
    """An account's escalation clock: response targets per priority, the re-escalation
    ladder, the stalled-claim reminder, and the account's time zone (`domain.clock`).

    One row per account; without a row the defaults of `domain.clock` apply.
    """

    __tablename__ = "escalation_policy"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", unique=True)
    time_zone: str = Field(default="UTC", max_length=64)
    urgent_minutes: int = 5
    high_minutes: int = 15
    normal_minutes: int = 30
    low_minutes: int = 120
    # Level 2 (at the response target): these users; empty means the account's owners and admins.
    level2_user_ids: list = Field(default_factory=list, sa_column=Column(JSONDoc, nullable=False))
    # Level 3, this long after level 2 (None: no level 3); empty users means the owners.
    level3_after_minutes: int | None = None
    level3_user_ids: list = Field(default_factory=list, sa_column=Column(JSONDoc, nullable=False))
    # A claimed escalation with no step, hand-back or resolution this long (None: off).
    stall_minutes: int | None = 60
    updated_at: datetime = _created_at()
    updated_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class CaseEvent(SQLModel, table=True):
    """One transition of a session after a handoff: claimed, resolved, handed back,
    escalated on, released, reassigned. Written in the transition's own transaction;
    the session history, the CSV export and the analytics read these rows."""

    __tablename__ = "case_event"
    __table_args__ = (
        Index("ix_case_event_session", "session_id", "created_at"),
        Index("ix_case_event_account_kind", "account_id", "kind", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    session_id: int = Field(foreign_key="support_session.id")
    handoff_id: uuid.UUID | None = Field(default=None, foreign_key="session_handoff.id")
    kind: str = Field(max_length=16)
    actor_id: int = Field(foreign_key="app_user.id")
    # The person the case went to: the claimer, the new assignee, the owner handed back to.
    subject_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    # The reason, guidance or fix the person gave.
    note: str = Field(default="", max_length=2000)
    root_cause: str | None = Field(default=None, max_length=32)
    created_at: datetime = _created_at()


class CaseSearch(SQLModel, table=True):
    """The search document of one resolved case, for "similar past cases".

    One row per resolved session that was handed off, written by `domain.similar_cases`
    in the resolve transaction (a resolved session's text never changes again). The
    full-text index over it is each database's own (migration 0013): on PostgreSQL a
    stored, generated `search_vector` tsvector column with a GIN index, on SQLite an
    FTS5 table `case_search_fts` kept in step by triggers. Neither is declared here
    (`outside_search_index`), as SQLAlchemy has no portable type for them.
    """

    __tablename__ = "case_search"
    __table_args__ = (Index("ix_case_search_handoff", "handoff_id"),)

    # Also the FTS5 rowid on SQLite.
    session_id: int = Field(
        primary_key=True, foreign_key="support_session.id", sa_column_kwargs={"autoincrement": False}
    )
    account_id: int = Field(foreign_key="account.id")
    # The handoff that ended resolved: where "open this case" leads.
    handoff_id: uuid.UUID = Field(foreign_key="session_handoff.id")
    # Problem summary and domain (ranked highest), what fixed it, then the rest: client,
    # the steps tried with their results, and every handoff's notes.
    title: str = Field(max_length=300)
    fix: str = Field(max_length=2000)
    body: str = Field(max_length=8000)
    # The session's first escalation (or its first handoff) and the fix: "took 3 hours".
    escalated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


def outside_search_index(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's `include_name`: False for the full-text objects migration 0013 builds
    outside the models (PostgreSQL's `case_search.search_vector` and its GIN index,
    SQLite's FTS5 table `case_search_fts` and its shadow tables), so comparing the
    schema with the models leaves them alone."""
    if type_ == "table":
        return not (name or "").startswith("case_search_fts")
    if type_ == "column":
        return not (parent_names.get("table_name") == "case_search" and name == "search_vector")
    if type_ == "index":
        return name != "ix_case_search_vector"
    return True


class Notification(SQLModel, table=True):
    """An in-app (bell) notification, written in the handoff's own transaction."""

    __table_args__ = (Index("ix_notification_user_unread", "user_id", "read_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    user_id: int = Field(foreign_key="app_user.id")
    handoff_id: uuid.UUID | None = Field(default=None, foreign_key="session_handoff.id")
    title: str = Field(max_length=300)
    body: str = ""
    link: str = Field(default="", max_length=300)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created_at()


class JobStatus(StrEnum):
    # Waiting for its run time (new, or retrying after a failed attempt).
    PENDING = "pending"
    # Taken by a worker whose lease has not run out.
    RUNNING = "running"
    DONE = "done"
    # Out of attempts, or refused for good; kept, visible, and re-runnable.
    FAILED = "failed"
    # Nothing to do (SMTP not configured, webhook removed, handoff gone).
    SKIPPED = "skipped"


class OutboxJob(SQLModel, table=True):
    """One side effect of a committed change: written in the change's own transaction.

    `domain.outbox` adds, takes (with a lease), and records the outcome of these rows;
    `services.worker` runs them. Email and webhook jobs are also the delivery records
    managers read on the handoff screen.
    """

    __tablename__ = "outbox_job"
    __table_args__ = (
        # Due jobs, oldest first.
        Index("ix_outbox_due", "status", "run_at"),
        Index("ix_outbox_handoff", "handoff_id", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    account_id: int | None = Field(default=None, foreign_key="account.id")
    handoff_id: uuid.UUID | None = Field(default=None, foreign_key="session_handoff.id")
    # Who or where it goes, for the delivery list ("sam@…", "slack", "ticket 123").
    recipient: str = Field(default="", max_length=500)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSONDoc, nullable=False))
    # At most one job per key (e.g. one email per recipient per handoff).
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    status: str = Field(default=JobStatus.PENDING, max_length=16)
    run_at: datetime = _created_at()
    attempts: int = 0
    max_attempts: int = 3
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=1000)
    # What the handler reports on success (e.g. the PSA note id), short.
    result: str | None = Field(default=None, max_length=500)
    created_at: datetime = _created_at()
    updated_at: datetime = _created_at()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuthSession(SQLModel, table=True):
    """A server-side sign-in. The browser holds the token; we keep only its hash."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = _created_at()
    last_seen_at: datetime = _created_at()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AccountIntegration(SQLModel, table=True):
    """An account's outbound integrations: team-chat webhooks and the PSA connection.

    One row per account. The webhook URLs are secrets (anyone holding one can post to
    the channel), so they are only ever shown to the account's owners and admins. The
    PSA secret (ConnectWise private key, HaloPSA client secret) is stored only
    encrypted (`domain.psa`) and never leaves the server once saved.
    """

    __tablename__ = "account_integration"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", unique=True)
    slack_webhook_url: str | None = Field(default=None, max_length=2048)
    teams_webhook_url: str | None = Field(default=None, max_length=2048)
    updated_at: datetime = _created_at()
    updated_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    # PSA writeback (`domain.psa`): "connectwise" | "halopsa" | None (no connection).
    psa_type: str | None = Field(default=None, max_length=16)
    # ConnectWise: the API site (https://api-na.myconnectwise.net); HaloPSA: the instance URL.
    psa_url: str | None = Field(default=None, max_length=500)
    # ConnectWise: the developer clientId header; HaloPSA: the OAuth client id.
    psa_client_id: str | None = Field(default=None, max_length=128)
    # ConnectWise only: the company id of the login screen and the API member's public key.
    psa_company_id: str | None = Field(default=None, max_length=64)
    psa_public_key: str | None = Field(default=None, max_length=128)
    # HaloPSA only, optional: the tenant of a hosted instance.
    psa_tenant: str | None = Field(default=None, max_length=120)
    # HaloPSA only, optional: the outcome notes are posted with, an ID ("7") or a name
    # ("Private Note"); None means Halo's built-in private note (ID 7).
    psa_outcome: str | None = Field(default=None, max_length=64)
    # HaloPSA only, optional: the authorisation server, when /api/authinfo does not say.
    psa_auth_url: str | None = Field(default=None, max_length=500)
    # Fernet token of the ConnectWise private key / HaloPSA client secret, never the
    # plaintext (a 512-character secret makes a token of about 800 characters).
    psa_secret_encrypted: str | None = Field(default=None, max_length=2048)


class GradeVerdict(StrEnum):
    """Was the assessment's likely cause right, compared with what fixed it."""

    YES = "yes"
    PARTLY = "partly"
    NO = "no"


class AssessmentGrade(SQLModel, table=True):
    """The AI assessment of an escalation, graded against the fix (`domain.grading`).

    Written in the resolve transaction when the resolved case has a real (not offline)
    assessment: the resolver's answer (or None when they skipped the question) and the
    assessment's own confidence, copied so the calibration table never re-reads JSON.
    With an API key a background job adds Claude's verdict and one-line reason.
    """

    __tablename__ = "assessment_grade"
    __table_args__ = (Index("ix_assessment_grade_account_resolved", "account_id", "resolved_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    session_id: int = Field(foreign_key="support_session.id")
    # The escalation whose assessment is graded: one grade per assessment.
    handoff_id: uuid.UUID = Field(foreign_key="session_handoff.id", unique=True)
    confidence: str = Field(max_length=16)
    resolved_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    human_verdict: str | None = Field(default=None, max_length=16)
    human_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    # "pending" while the grading job runs, then "ready" or "failed"; None without a key.
    ai_status: str | None = Field(default=None, max_length=16)
    ai_verdict: str | None = Field(default=None, max_length=16)
    ai_reason: str | None = Field(default=None, max_length=300)
    ai_model: str | None = Field(default=None, max_length=100)
    ai_error: str | None = Field(default=None, max_length=500)
    ai_graded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created_at()
