"""history search: pg_trgm GIN indexes on lower(problem_summary) and lower(engineer_notes)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, column): each serves `lower(column) LIKE lower('%text%')` in history search.
INDEXES = [
    ("ix_support_session_summary_trgm", "support_session", "problem_summary"),
    ("ix_handoff_notes_trgm", "session_handoff", "engineer_notes"),
]


def upgrade() -> None:
    # PostgreSQL only. SQLite has no trigram index and a B-tree cannot serve a substring
    # match, so there is nothing to create there (the models skip these indexes on SQLite).
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Build without blocking handoff writes on a large table.
    with op.get_context().autocommit_block():
        for index, table, column in INDEXES:
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} "
                f"USING gin (lower({column}) gin_trgm_ops)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for index, _table, _column in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
    # The pg_trgm extension stays: dropping it is not this migration's business (other
    # objects may use it), and keeping it is harmless.
