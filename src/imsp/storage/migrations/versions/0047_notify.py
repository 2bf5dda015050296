"""notify: the message centre (消息中心), the e-mail outbox, and the users' e-mail address

Revision ID: 0047
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0047"
down_revision = "0001"
branch_labels = ("notify",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
    op.create_table(
        "notify_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=False),
        sa.Column("read_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["portal_user.id"], name=op.f("fk_notify_message_user_id_portal_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_message")),
    )
    with op.batch_alter_table("notify_message", schema=None) as batch_op:
        batch_op.create_index("ix_notify_message_user_read", ["user_id", "read_at"], unique=False)
    op.create_table(
        "notify_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["notify_message.id"],
            name=op.f("fk_notify_mail_message_id_notify_message"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_mail")),
    )
    with op.batch_alter_table("notify_mail", schema=None) as batch_op:
        batch_op.create_index("ix_notify_mail_due", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notify_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_mail_due")
    op.drop_table("notify_mail")
    with op.batch_alter_table("notify_message", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_message_user_read")
    op.drop_table("notify_message")
    with op.batch_alter_table("portal_user", schema=None) as batch_op:
        batch_op.drop_column("email")
