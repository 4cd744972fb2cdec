"""assessment grading: the graded assessment of each resolved escalation, and the
completeness of each escalation when it was sent

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import escalation_app.domain.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = escalation_app.domain.types.UTCDateTime(timezone=True)


def _str(length: int | None = None):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("session_handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("completeness_missing", sa.Integer(), nullable=True))
    op.create_table(
        "assessment_grade",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Uuid(), nullable=False),
        sa.Column("confidence", _str(16), nullable=False),
        sa.Column("resolved_at", TS, nullable=False),
        sa.Column("human_verdict", _str(16), nullable=True),
        sa.Column("human_by_id", sa.Integer(), nullable=True),
        sa.Column("ai_status", _str(16), nullable=True),
        sa.Column("ai_verdict", _str(16), nullable=True),
        sa.Column("ai_reason", _str(300), nullable=True),
        sa.Column("ai_model", _str(100), nullable=True),
        sa.Column("ai_error", _str(500), nullable=True),
        sa.Column("ai_graded_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["support_session.id"]),
        sa.ForeignKeyConstraint(["handoff_id"], ["session_handoff.id"]),
        sa.ForeignKeyConstraint(["human_by_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handoff_id"),
    )
    with op.batch_alter_table("assessment_grade", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assessment_grade_account_resolved", ["account_id", "resolved_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("assessment_grade", schema=None) as batch_op:
        batch_op.drop_index("ix_assessment_grade_account_resolved")
    op.drop_table("assessment_grade")
    with op.batch_alter_table("session_handoff", schema=None) as batch_op:
        batch_op.drop_column("completeness_missing")
