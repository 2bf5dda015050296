"""foundation: institutions, credentials, portal users, audit

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0001"
down_revision = None
branch_labels = ("foundation",)
depends_on = None


def upgrade() -> None:

    op.create_table(
        "institution",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_code", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institution")),
        sa.UniqueConstraint("org_code", name=op.f("uq_institution_org_code")),
    )
    op.create_table(
        "app_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_app_credential_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_credential")),
        sa.UniqueConstraint("app_id", name=op.f("uq_app_credential_app_id")),
    )
    with op.batch_alter_table("app_credential", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_app_credential_institution_id"), ["institution_id"], unique=False
        )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("detail", imsp.storage.base.JsonDoc, nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_audit_event_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action_at", ["action", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_event_institution_id"), ["institution_id"], unique=False
        )

    op.create_table(
        "portal_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("display_name", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_portal_user_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_user")),
        sa.UniqueConstraint("username", name=op.f("uq_portal_user_username")),
    )
    with op.batch_alter_table("portal_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portal_user_institution_id"), ["institution_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("portal_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_user_institution_id"))

    op.drop_table("portal_user")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_institution_id"))
        batch_op.drop_index("ix_audit_event_action_at")

    op.drop_table("audit_event")
    with op.batch_alter_table("app_credential", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_credential_institution_id"))

    op.drop_table("app_credential")
    op.drop_table("institution")
