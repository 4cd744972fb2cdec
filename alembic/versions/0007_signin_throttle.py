"""sign-in throttle: failed attempts leave the database (kept by the rate limiter instead)

The per-email lockout table let anyone lock a user out and stored whatever was typed as
an email on every failure. Failed attempts are now counted by the sign-in throttle
(in memory, or in Redis with several workers), per client address and per (email,
client address), with expiring, bounded counters.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempt_email_created")
    op.drop_table("login_attempt")


def downgrade() -> None:
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempt_email_created", ["email", "created_at"], unique=False)
