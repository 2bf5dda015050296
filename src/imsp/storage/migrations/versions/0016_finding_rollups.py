"""supervision rollups: findings per institution, day, rule, severity and status

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "finding_day",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("computed_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_finding_day_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint(
            "channel",
            "institution_id",
            "day",
            "rule_id",
            "severity",
            "status",
            name=op.f("pk_finding_day"),
        ),
    )
    with op.batch_alter_table("finding_day", schema=None) as batch_op:
        batch_op.create_index(
            "ix_finding_day_day_institution_id", ["day", "institution_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("finding_day", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_day_day_institution_id")
    op.drop_table("finding_day")
