"""supervision rollups: daily volume and data quality per institution and dataset

Revision ID: 0015
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0015"
down_revision = "0001"
branch_labels = ("supervision_rollups",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_day",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("rejected_by_code", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("optional_filled", sa.Integer(), nullable=False),
        sa.Column("optional_total", sa.Integer(), nullable=False),
        sa.Column("delay_median_s", sa.Double(), nullable=True),
        sa.Column("delay_p95_s", sa.Double(), nullable=True),
        sa.Column("refs_checked", sa.Integer(), nullable=False),
        sa.Column("refs_resolved", sa.Integer(), nullable=False),
        sa.Column("computed_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_quality_day_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint(
            "channel", "institution_id", "day", "dataset", name=op.f("pk_quality_day")
        ),
    )
    with op.batch_alter_table("quality_day", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_day_day_institution_id", ["day", "institution_id"], unique=False
        )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("watermark", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("rollup_state")
    with op.batch_alter_table("quality_day", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_day_day_institution_id")
    op.drop_table("quality_day")
