"""supervision rollups: quality figures summed per institution-day and per dataset-day

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _sums() -> list[sa.Column[Any]]:
    names = (
        "requests", "received", "accepted", "rejected", "stored", "optional_filled",
        "optional_total", "refs_checked", "refs_resolved",
    )  # fmt: skip
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names] + [
        sa.Column("delay_p95_s", sa.Double(), nullable=True)
    ]


def upgrade() -> None:
    op.create_table(
        "quality_institution_day",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        *_sums(),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_quality_institution_day_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint(
            "channel", "day", "institution_id", name=op.f("pk_quality_institution_day")
        ),
    )
    op.create_table(
        "quality_dataset_day",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("channel", "day", "dataset", name=op.f("pk_quality_dataset_day")),
    )


def downgrade() -> None:
    op.drop_table("quality_dataset_day")
    op.drop_table("quality_institution_day")
