"""casework: the session's assignee and resolution, how each handoff ended, case events

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import escalation_app.domain.types

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = escalation_app.domain.types.UTCDateTime(timezone=True)


def _str(length: int | None = None):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("support_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolution", _str(2000), nullable=True))
        batch_op.add_column(sa.Column("root_cause", _str(32), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", TS, nullable=True))
        batch_op.add_column(sa.Column("resolved_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_support_session_assignee", "app_user", ["assignee_id"], ["id"])
        batch_op.create_foreign_key("fk_support_session_resolved_by", "app_user", ["resolved_by_id"], ["id"])
    # A session being worked by its claimer: the claimer is its assignee.
    op.execute(
        "UPDATE support_session SET assignee_id = escalated_to_id "
        "WHERE status = 'active' AND escalated_to_id IS NOT NULL"
    )
    with op.batch_alter_table("session_handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", _str(16), nullable=True))
        batch_op.add_column(sa.Column("outcome_at", TS, nullable=True))
    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Uuid(), nullable=True),
        sa.Column("kind", _str(16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("subject_user_id", sa.Integer(), nullable=True),
        sa.Column("note", _str(2000), nullable=False),
        sa.Column("root_cause", _str(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["support_session.id"]),
        sa.ForeignKeyConstraint(["handoff_id"], ["session_handoff.id"]),
        sa.ForeignKeyConstraint(["actor_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["subject_user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.create_index("ix_case_event_session", ["session_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_case_event_account_kind", ["account_id", "kind", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.drop_index("ix_case_event_account_kind")
        batch_op.drop_index("ix_case_event_session")
    op.drop_table("case_event")
    with op.batch_alter_table("session_handoff", schema=None) as batch_op:
        batch_op.drop_column("outcome_at")
        batch_op.drop_column("outcome")
    with op.batch_alter_table("support_session", schema=None) as batch_op:
        batch_op.drop_constraint("fk_support_session_resolved_by", type_="foreignkey")
        batch_op.drop_constraint("fk_support_session_assignee", type_="foreignkey")
        batch_op.drop_column("resolved_by_id")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("root_cause")
        batch_op.drop_column("resolution")
        batch_op.drop_column("assignee_id")
