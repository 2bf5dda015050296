"""qualification: applications, departments, doctors, attachments, submissions, transitions

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0003"
down_revision = "0001"
branch_labels = ("qualification",)
depends_on = None

_APP = "qualification_application"


def _child(name: str, *columns: sa.Column[Any], unique: tuple[str, ...] = ()) -> None:
    """A table belonging to an application (FK + index on application_id)."""
    constraints: list[sa.Constraint] = [
        sa.ForeignKeyConstraint(
            ["application_id"], [f"{_APP}.id"], name=op.f(f"fk_{name}_application_id_{_APP}")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    ]
    if unique:
        constraints.append(sa.UniqueConstraint(*unique, name=op.f(f"uq_{name}_{'_'.join(unique)}")))
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        *columns,
        *constraints,
    )


def upgrade() -> None:
    op.create_table(
        _APP,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("created_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_qualification_application_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualification_application")),
        sa.UniqueConstraint(
            "institution_id", name=op.f("uq_qualification_application_institution_id")
        ),
    )
    with op.batch_alter_table(_APP, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qualification_application_status"), ["status"], unique=False
        )

    _child(
        "qualification_department",
        sa.Column("dept_code", sa.String(length=20), nullable=False),
        sa.Column("data", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("updated_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        unique=("application_id", "dept_code"),
    )
    _child(
        "qualification_doctor",
        sa.Column("cert_id", sa.String(length=18), nullable=False),
        sa.Column("data", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("updated_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        unique=("application_id", "cert_id"),
    )
    _child(
        "qualification_attachment",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("mime", sa.String(length=40), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("uploaded_by", sa.String(length=50), nullable=False),
        sa.Column("uploaded_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("removed_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
    )
    _child(
        "qualification_submission",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submitted_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=50), nullable=False),
        sa.Column("snapshot", imsp.storage.base.JsonDoc, nullable=False),
        unique=("application_id", "version"),
    )
    _child(
        "qualification_transition",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=50), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("field_reasons", imsp.storage.base.JsonDoc, nullable=False),
    )
    for name in (
        "qualification_department",
        "qualification_doctor",
        "qualification_attachment",
        "qualification_transition",
    ):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f(f"ix_{name}_application_id"), ["application_id"], unique=False
            )


def downgrade() -> None:
    for name in (
        "qualification_transition",
        "qualification_submission",
        "qualification_attachment",
        "qualification_doctor",
        "qualification_department",
    ):
        if name != "qualification_submission":
            with op.batch_alter_table(name, schema=None) as batch_op:
                batch_op.drop_index(batch_op.f(f"ix_{name}_application_id"))
        op.drop_table(name)
    with op.batch_alter_table(_APP, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qualification_application_status"))
    op.drop_table(_APP)
