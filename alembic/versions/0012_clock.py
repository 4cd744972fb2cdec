"""clock: response targets, re-escalation levels and snooze on handoffs; the account's policy

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import escalation_app.domain.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = escalation_app.domain.types.UTCDateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("session_handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_due_at", TS, nullable=True))
        batch_op.add_column(sa.Column("clock", JSON_DOC, nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("re_escalated_at", TS, nullable=True))
        batch_op.add_column(sa.Column("wake_at", TS, nullable=True))
        batch_op.add_column(sa.Column("woke_at", TS, nullable=True))
    op.create_table(
        "escalation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("time_zone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("urgent_minutes", sa.Integer(), nullable=False),
        sa.Column("high_minutes", sa.Integer(), nullable=False),
        sa.Column("normal_minutes", sa.Integer(), nullable=False),
        sa.Column("low_minutes", sa.Integer(), nullable=False),
        sa.Column("level2_user_ids", JSON_DOC, nullable=False),
        sa.Column("level3_after_minutes", sa.Integer(), nullable=True),
        sa.Column("level3_user_ids", JSON_DOC, nullable=False),
        sa.Column("stall_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("escalation_policy")
    with op.batch_alter_table("session_handoff", schema=None) as batch_op:
        batch_op.drop_column("woke_at")
        batch_op.drop_column("wake_at")
        batch_op.drop_column("re_escalated_at")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("clock")
        batch_op.drop_column("response_due_at")
