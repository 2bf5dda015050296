"""exchange channel: test/production channel and chunked transfer in the exchange log

Revision ID: 0031
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchange_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=12), nullable=False, server_default="production")
        )
        batch_op.add_column(
            sa.Column("chunked", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_log", schema=None) as batch_op:
        batch_op.drop_column("chunked")
        batch_op.drop_column("channel")
