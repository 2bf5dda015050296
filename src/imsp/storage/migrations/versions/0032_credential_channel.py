"""credential channel: each appId belongs to the test (测试) or production (正式) channel

Revision ID: 0032
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_credential", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=12), nullable=False, server_default="production")
        )


def downgrade() -> None:
    with op.batch_alter_table("app_credential", schema=None) as batch_op:
        batch_op.drop_column("channel")
