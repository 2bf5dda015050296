"""acceptance: confirmation cases, their transitions, issued reports

Revision ID: 0030
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0030"
down_revision = "0001"
branch_labels = ("acceptance",)
depends_on = None

_T = imsp.storage.base.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "acceptance_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("services", imsp.storage.base.JsonDoc, nullable=True),
        sa.Column("internet_hospital", sa.String(length=100), nullable=False),
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("updated_at", _T, nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_acceptance_case_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_case")),
        sa.UniqueConstraint("institution_id", name=op.f("uq_acceptance_case_institution_id")),
    )
    op.create_table(
        "acceptance_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("at", _T, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("board", imsp.storage.base.JsonDoc, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["acceptance_case.id"],
            name=op.f("fk_acceptance_transition_case_id_acceptance_case"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_transition")),
    )
    op.create_index(op.f("ix_acceptance_transition_case_id"), "acceptance_transition", ["case_id"])
    op.create_table(
        "acceptance_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", _T, nullable=False),
        sa.Column("reviewer", sa.String(length=60), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("content", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("revoked_at", _T, nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["acceptance_case.id"],
            name=op.f("fk_acceptance_report_case_id_acceptance_case"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_acceptance_report_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_report")),
        sa.UniqueConstraint("number", name=op.f("uq_acceptance_report_number")),
        sa.UniqueConstraint("sha256", name=op.f("uq_acceptance_report_sha256")),
    )
    op.create_index(op.f("ix_acceptance_report_case_id"), "acceptance_report", ["case_id"])
    op.create_index(
        op.f("ix_acceptance_report_institution_id"), "acceptance_report", ["institution_id"]
    )


def downgrade() -> None:
    op.drop_table("acceptance_report")
    op.drop_table("acceptance_transition")
    op.drop_table("acceptance_case")
