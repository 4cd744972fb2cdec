"""psa outcome and authorisation server: HaloPSA note outcome and auth server override

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account_integration", schema=None) as batch_op:
        batch_op.add_column(sa.Column("psa_outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("psa_auth_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("account_integration", schema=None) as batch_op:
        batch_op.drop_column("psa_auth_url")
        batch_op.drop_column("psa_outcome")
