"""similar past cases: a search document per resolved case, and each database's full-text index

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:00:00.000000

`case_search` holds one document per resolved, handed-off session (`domain.similar_cases`
writes it in the resolve transaction). The index over it is each database's own:

- PostgreSQL: `search_vector`, a stored generated tsvector (summary and domain weighted A,
  the fix B, client, steps and notes C) with a GIN index; ranked with ts_rank.
- SQLite: `case_search_fts`, an FTS5 table over the same columns (external content: it
  stores only the index) kept in step by triggers; ranked with bm25().

Existing resolved sessions are indexed here. The document is built in SQL below the way
`similar_cases._document` builds it in Python (same fields, same bounds).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import escalation_app.domain.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = escalation_app.domain.types.UTCDateTime(timezone=True)

PG_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, title), 'A')"
    " || setweight(to_tsvector('english'::regconfig, fix), 'B')"
    " || setweight(to_tsvector('english'::regconfig, body), 'C')"
)

SQLITE_FTS = [
    # External content: the text lives in case_search, the FTS table keeps only the index.
    "CREATE VIRTUAL TABLE case_search_fts USING fts5(title, fix, body, content='case_search',"
    " content_rowid='session_id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER case_search_fts_insert AFTER INSERT ON case_search BEGIN"
    " INSERT INTO case_search_fts (rowid, title, fix, body)"
    " VALUES (new.session_id, new.title, new.fix, new.body); END",
    "CREATE TRIGGER case_search_fts_delete AFTER DELETE ON case_search BEGIN"
    " INSERT INTO case_search_fts (case_search_fts, rowid, title, fix, body)"
    " VALUES ('delete', old.session_id, old.title, old.fix, old.body); END",
    "CREATE TRIGGER case_search_fts_update AFTER UPDATE ON case_search BEGIN"
    " INSERT INTO case_search_fts (case_search_fts, rowid, title, fix, body)"
    " VALUES ('delete', old.session_id, old.title, old.fix, old.body);"
    " INSERT INTO case_search_fts (rowid, title, fix, body)"
    " VALUES (new.session_id, new.title, new.fix, new.body); END",
]


def _backfill(dialect: str) -> str:
    """INSERT … SELECT of every resolved session's document (the handoff that ended resolved)."""
    if dialect == "postgresql":
        agg_steps = "string_agg(st.tried || ' ' || st.result, ' ' ORDER BY st.position)"
        agg_notes = "string_agg(n.engineer_notes, ' ' ORDER BY n.created_at)"
    else:
        agg_steps = "group_concat(st.tried || ' ' || st.result, ' ')"
        agg_notes = "group_concat(n.engineer_notes, ' ')"
    return f"""
        INSERT INTO case_search (session_id, account_id, handoff_id, title, fix, body, escalated_at,
                                 resolved_at)
        SELECT s.id, s.account_id, h.id,
          substr(trim(s.problem_summary || ' ' || s.problem_domain), 1, 300),
          substr(coalesce(s.resolution, ''), 1, 2000),
          substr(trim(s.client_name || ' '
            || coalesce((SELECT {agg_steps} FROM session_step st WHERE st.session_id = s.id), '') || ' '
            || coalesce((SELECT {agg_notes} FROM session_handoff n
                         WHERE n.session_id = s.id AND n.engineer_notes <> ''), '')), 1, 8000),
          coalesce(
            (SELECT min(e.created_at) FROM session_handoff e
             WHERE e.session_id = s.id AND e.intent = 'escalate'),
            (SELECT min(e.created_at) FROM session_handoff e WHERE e.session_id = s.id)),
          coalesce(s.resolved_at, h.outcome_at, s.updated_at)
        FROM support_session s
        JOIN session_handoff h ON h.id = (
          SELECT r.id FROM session_handoff r
          WHERE r.session_id = s.id AND r.outcome = 'resolved'
          ORDER BY r.created_at DESC LIMIT 1)
        WHERE s.status = 'resolved'
    """


def upgrade() -> None:
    op.create_table(
        "case_search",
        sa.Column("session_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Uuid(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("fix", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("escalated_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["support_session.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["handoff_id"], ["session_handoff.id"]),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("case_search", schema=None) as batch_op:
        batch_op.create_index("ix_case_search_handoff", ["handoff_id"], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"ALTER TABLE case_search ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({PG_VECTOR}) STORED")
        op.execute("CREATE INDEX ix_case_search_vector ON case_search USING gin (search_vector)")
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)
    # After the index exists: on SQLite the insert trigger indexes each row as it lands.
    op.execute(_backfill(dialect))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_case_search_vector")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS case_search_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS case_search_fts")
    with op.batch_alter_table("case_search", schema=None) as batch_op:
        batch_op.drop_index("ix_case_search_handoff")
    op.drop_table("case_search")
