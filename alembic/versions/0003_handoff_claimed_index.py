"""handoff analytics index: an account's claims by time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_handoff_account_claimed"
TABLE = "session_handoff"
COLUMNS = ["account_id", "claimed_at"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Build without blocking handoff writes on a large table.
        with op.get_context().autocommit_block():
            op.create_index(INDEX, TABLE, COLUMNS, unique=False, postgresql_concurrently=True, if_not_exists=True)
    else:
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            batch_op.create_index(INDEX, COLUMNS, unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name=TABLE, postgresql_concurrently=True, if_exists=True)
    else:
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            batch_op.drop_index(INDEX)
