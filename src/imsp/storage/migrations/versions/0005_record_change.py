"""exchange: the change feed (record_change), written with the records, consumed by supervision

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("business_key", sa.String(length=200), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stored_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_change")),
    )


def downgrade() -> None:
    op.drop_table("record_change")
