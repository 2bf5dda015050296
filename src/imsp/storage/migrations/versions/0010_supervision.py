"""supervision: findings, their history, checks pending on missing data

Revision ID: 0010
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0010"
down_revision = "0001"
branch_labels = ("supervision",)
depends_on = None

_F = "supervision_finding"
_E = "supervision_finding_event"
_P = "supervision_pending"
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = imsp.storage.base.UtcDateTime(timezone=True)
_JSON = imsp.storage.base.JsonDoc


def upgrade() -> None:
    op.create_table(
        _F,
        sa.Column("id", _BIG, nullable=False),
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("record_id", _BIG, nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("records", _JSON, nullable=False),
        sa.Column("evidence", _JSON, nullable=False),
        sa.Column("business_time", _TIME, nullable=True),
        sa.Column("doctor_cert_id", sa.String(length=32), nullable=True),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("assignee", sa.String(length=60), nullable=True),
        sa.Column("due_at", _TIME, nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("resolved_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institution.id"], name=op.f(f"fk_{_F}_institution_id_institution")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_F}")),
        sa.UniqueConstraint(
            "rule_id", "institution_id", "dataset", "key",
            name=op.f(f"uq_{_F}_rule_id_institution_id_dataset_key"),
        ),
    )  # fmt: skip
    with op.batch_alter_table(_F, schema=None) as batch_op:
        batch_op.create_index(
            "ix_supervision_finding_institution_id_status", ["institution_id", "status"]
        )
        batch_op.create_index("ix_supervision_finding_status_rule_id", ["status", "rule_id"])
        batch_op.create_index("ix_supervision_finding_first_seen", ["first_seen"])
        batch_op.create_index("ix_supervision_finding_doctor_cert_id", ["doctor_cert_id"])  # fmt: skip
    op.create_table(
        _E,
        sa.Column("id", _BIG, nullable=False),
        sa.Column("finding_id", _BIG, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachment", sa.String(length=500), nullable=True),
        sa.Column("data", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"], [f"{_F}.id"], name=op.f(f"fk_{_E}_finding_id_{_F}"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_E}")),
    )
    with op.batch_alter_table(_E, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{_E}_finding_id"), ["finding_id"], unique=False)
    op.create_table(
        _P,
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("missing", _JSON, nullable=False),
        sa.Column("since", _TIME, nullable=False),
        sa.Column("due_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institution.id"], name=op.f(f"fk_{_P}_institution_id_institution")
        ),
        sa.PrimaryKeyConstraint(
            "rule_id", "institution_id", "dataset", "key", name=op.f(f"pk_{_P}")
        ),
    )
    with op.batch_alter_table(_P, schema=None) as batch_op:
        batch_op.create_index("ix_supervision_pending_due_at", ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_table(_P)
    op.drop_table(_E)
    op.drop_table(_F)
