"""outbox: one table of side-effect jobs; delivery records carried over and dropped

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:00:00.000000
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import escalation_app.domain.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = escalation_app.domain.types.UTCDateTime(timezone=True)
MAX_ATTEMPTS = 3


def _str(length: int | None = None):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "outbox_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _str(32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("handoff_id", sa.Uuid(), nullable=True),
        sa.Column("recipient", _str(500), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("dedupe_key", _str(200), nullable=True),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("run_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("locked_by", _str(64), nullable=True),
        sa.Column("last_error", _str(1000), nullable=True),
        sa.Column("result", _str(500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["handoff_id"], ["session_handoff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("outbox_job", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "run_at"], unique=False)
        batch_op.create_index("ix_outbox_handoff", ["handoff_id", "kind"], unique=False)

    _carry_over_deliveries()
    _queue_pending_assessments()

    with op.batch_alter_table("delivery_record", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status_next")
        batch_op.drop_index("ix_delivery_handoff")
    op.drop_table("delivery_record")


def _job_table() -> sa.Table:
    meta = sa.MetaData()
    return sa.Table(
        "outbox_job",
        meta,
        *(
            sa.Column(name, type_)
            for name, type_ in [
                ("kind", sa.String()),
                ("account_id", sa.Integer()),
                ("handoff_id", sa.Uuid()),
                ("recipient", sa.String()),
                ("payload", JSON),
                ("dedupe_key", sa.String()),
                ("status", sa.String()),
                ("run_at", TS),
                ("attempts", sa.Integer()),
                ("max_attempts", sa.Integer()),
                ("last_error", sa.String()),
                ("created_at", TS),
                ("updated_at", TS),
                ("finished_at", TS),
            ]
        ),
    )


def _carry_over_deliveries() -> None:
    """Each delivery record becomes the job it stood for, in the state it had."""
    bind = op.get_bind()
    meta = sa.MetaData()
    old = sa.Table("delivery_record", meta, autoload_with=bind)
    jobs = _job_table()
    now = datetime.now(UTC)
    seen: set[str] = set()
    rows = []
    for r in bind.execute(sa.select(old).order_by(old.c.id)).mappings():
        payload = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"] or "{}")
        hid = _uuid(r["handoff_id"])
        test = r["kind"] == "test"
        if r["channel"] == "email":
            kind, new_payload = "email", {"user_id": payload.get("user_id")}
            key = f"email:{hid}:{payload.get('user_id') or r['recipient']}"
        elif r["channel"] == "webhook":
            kind, new_payload = "webhook", {"channel": r["recipient"], **({"test": True} if test else {})}
            key = f"webhook:{hid}:{r['recipient']}"
        else:
            note = "claim" if r["kind"] == "psa_claim" else "escalation"
            kind = "psa_note"
            new_payload = {"note": note, **{k: v for k, v in payload.items() if k != "text"}}
            key = f"psa:{note}:{hid}"
        if test or hid is None or key in seen:
            key = None
        else:
            seen.add(key)
        status, run_at, finished = _state_of(r, now)
        rows.append(
            {
                "kind": kind,
                "account_id": r["account_id"],
                "handoff_id": hid,
                "recipient": r["recipient"],
                "payload": new_payload,
                "dedupe_key": key,
                "status": status,
                "run_at": run_at,
                "attempts": r["attempts"],
                "max_attempts": 1 if test else MAX_ATTEMPTS,
                "last_error": r["last_error"],
                "created_at": r["created_at"],
                "updated_at": r["updated_at"],
                "finished_at": finished,
            }
        )
    if rows:
        bind.execute(jobs.insert(), rows)


def _uuid(value) -> uuid.UUID | None:
    # Reflected on SQLite, a UUID column reads back as its 32 hex digits.
    return None if value is None else uuid.UUID(str(value))


def _state_of(r, now: datetime) -> tuple[str, datetime, datetime | None]:
    status, due = r["status"], r["next_attempt_at"]
    if status == "sent":
        return "done", r["created_at"], r["sent_at"] or r["updated_at"]
    if status == "skipped":
        return "skipped", r["created_at"], r["updated_at"]
    if status == "failed":
        if due is not None and r["attempts"] < MAX_ATTEMPTS:
            return "pending", due, None
        return "failed", r["created_at"], r["updated_at"]
    # queued: waiting until `due`, or interrupted mid-send (due now).
    return "pending", due or now, None


def _queue_pending_assessments() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    handoffs = sa.Table("session_handoff", meta, autoload_with=bind)
    jobs = _job_table()
    now = datetime.now(UTC)
    pending = bind.execute(
        sa.select(handoffs.c.id, handoffs.c.account_id).where(
            handoffs.c.intent == "escalate", handoffs.c.ai_status == "pending"
        )
    ).all()
    if pending:
        bind.execute(
            jobs.insert(),
            [
                {
                    "kind": "assessment",
                    "account_id": account_id,
                    "handoff_id": _uuid(handoff_id),
                    "recipient": "",
                    "payload": {},
                    "dedupe_key": f"assessment:{_uuid(handoff_id)}",
                    "status": "pending",
                    "run_at": now,
                    "attempts": 0,
                    "max_attempts": MAX_ATTEMPTS,
                    "created_at": now,
                    "updated_at": now,
                }
                for handoff_id, account_id in pending
            ],
        )


def downgrade() -> None:
    op.create_table(
        "delivery_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Uuid(), nullable=True),
        sa.Column("channel", _str(16), nullable=False),
        sa.Column("kind", _str(32), nullable=False),
        sa.Column("recipient", _str(500), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", _str(1000), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["handoff_id"], ["session_handoff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_record", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_handoff", ["handoff_id"], unique=False)
        batch_op.create_index("ix_delivery_status_next", ["status", "next_attempt_at"], unique=False)
    # Finished deliveries go back as records; jobs still pending are not carried back.
    op.execute(
        """
        INSERT INTO delivery_record (account_id, handoff_id, channel, kind, recipient, status,
                                     attempts, last_error, payload, sent_at, created_at, updated_at)
        SELECT account_id, handoff_id,
               CASE kind WHEN 'psa_note' THEN 'psa' ELSE kind END,
               'escalation', recipient,
               CASE status WHEN 'done' THEN 'sent' ELSE status END,
               attempts, last_error, payload, finished_at, created_at, updated_at
        FROM outbox_job
        WHERE kind IN ('email', 'webhook', 'psa_note') AND status IN ('done', 'failed', 'skipped')
          AND account_id IS NOT NULL
        """
    )
    with op.batch_alter_table("outbox_job", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_handoff")
        batch_op.drop_index("ix_outbox_due")
    op.drop_table("outbox_job")
