"""exchange: access tokens, records, record versions, exchange log

The access-token table belongs to the exchange domain (``imsp.exchange.models``) with the rest of
the token service; credentials (appId/appSecret) stay in the foundation's ``app_credential``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0002"
down_revision = "0001"
branch_labels = ("exchange",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("service", sa.String(length=40), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("success", sa.Integer(), nullable=False),
        sa.Column("fail", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("atomic", sa.Boolean(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_exchange_log_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_log")),
    )
    with op.batch_alter_table("exchange_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchange_log_at"), ["at"], unique=False)
        batch_op.create_index(
            "ix_exchange_log_institution_id_at", ["institution_id", "at"], unique=False
        )

    op.create_table(
        "record",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("business_time", imsp.storage.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("patient_cert_id", sa.String(length=32), nullable=True),
        sa.Column("doctor_cert_id", sa.String(length=32), nullable=True),
        sa.Column("visit_no", sa.String(length=64), nullable=True),
        sa.Column("dept_code", sa.String(length=32), nullable=True),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("data", imsp.storage.base.JsonDoc, nullable=False),
        sa.Column("created_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("exchange_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_record_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record")),
        sa.UniqueConstraint(
            "institution_id", "dataset", "key", name=op.f("uq_record_institution_id_dataset_key")
        ),
    )
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_doctor_cert_id"), ["doctor_cert_id"], unique=False
        )
        batch_op.create_index(
            "ix_record_institution_id_dataset_business_time",
            ["institution_id", "dataset", "business_time"],
            unique=False,
        )
        batch_op.create_index(
            "ix_record_institution_id_patient_id", ["institution_id", "patient_id"], unique=False
        )
        batch_op.create_index(
            "ix_record_institution_id_visit_no", ["institution_id", "visit_no"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_record_patient_cert_id"), ["patient_cert_id"], unique=False
        )

    op.create_table(
        "access_token",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["app_credential.id"],
            name=op.f("fk_access_token_credential_id_app_credential"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_access_token_institution_id_institution"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_token_token_hash")),
    )
    with op.batch_alter_table("access_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_token_credential_id"), ["credential_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_access_token_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "record_version",
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("exchange_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "version", name=op.f("pk_record_version")),
    )
    with op.batch_alter_table("record_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_version_exchange_id"), ["exchange_id"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        # Ingest cost (docs/performance.md): lz4 compresses the ~2 KB records and the archived
        # bodies several times faster than the default pglz (or zlib in the server).
        op.execute("ALTER TABLE record ALTER COLUMN data SET COMPRESSION lz4")
        op.execute("ALTER TABLE exchange_log ALTER COLUMN body SET COMPRESSION lz4")


def downgrade() -> None:
    with op.batch_alter_table("record_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_version_exchange_id"))

    op.drop_table("record_version")
    with op.batch_alter_table("access_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_access_token_credential_id"))

    op.drop_table("access_token")
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_patient_cert_id"))
        batch_op.drop_index("ix_record_institution_id_visit_no")
        batch_op.drop_index("ix_record_institution_id_patient_id")
        batch_op.drop_index("ix_record_institution_id_dataset_business_time")
        batch_op.drop_index(batch_op.f("ix_record_doctor_cert_id"))

    op.drop_table("record")
    with op.batch_alter_table("exchange_log", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_log_institution_id_at")
        batch_op.drop_index(batch_op.f("ix_exchange_log_at"))

    op.drop_table("exchange_log")
