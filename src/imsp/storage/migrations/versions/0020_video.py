"""video: institutions' video services (secret encrypted), playback leases, acceptance evidence

Revision ID: 0020
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0020"
down_revision = "0001"
branch_labels = ("video",)
depends_on = None

_TS = imsp.storage.base.UtcDateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "video_endpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("base_url", sa.String(length=300), nullable=False),
        sa.Column("app_id", sa.String(length=100), nullable=False),
        sa.Column("secret_enc", sa.String(length=600), nullable=False),
        sa.Column("ca_bundle", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=60), nullable=False),
        _fk("video_endpoint", "institution_id", "institution"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_endpoint")),
        sa.UniqueConstraint("institution_id", name=op.f("uq_video_endpoint_institution_id")),
    )
    op.create_table(
        "video_lease",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("visit_no", sa.String(length=64), nullable=False),
        sa.Column("meta", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("play_url", sa.String(length=2000), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("bytes_served", sa.BigInteger(), nullable=False),
        _fk("video_lease", "user_id", "portal_user"),
        _fk("video_lease", "institution_id", "institution"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_lease")),
    )
    with op.batch_alter_table("video_lease", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_video_lease_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_video_lease_institution_id"), ["institution_id"], unique=False
        )
    op.create_table(
        "video_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("visit_no", sa.String(length=64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("played", sa.Boolean(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("timings", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        _fk("video_check", "institution_id", "institution"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_check")),
    )
    with op.batch_alter_table("video_check", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_video_check_institution_id"), ["institution_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("video_check")
    op.drop_table("video_lease")
    op.drop_table("video_endpoint")
