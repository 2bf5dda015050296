"""record_key.archived_month: for a key of an archived month sent again (it starts over in the
current month), the archived month, where its earlier versions went — so its trace can say so.

A nullable column without a default: no table rewrite on either database.

Revision ID: 0051
Revises: 0050
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0051"
down_revision = "0050"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_month", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record_key", schema=None) as batch_op:
        batch_op.drop_column("archived_month")
