"""archived_record: the identity of each record whose month was archived while later versions of
it, stored in later months, stayed online — so those versions keep their dataset and business
key, and a trace or a request's page still shows them (``imsp.exchange.partitions.archive``).

A new table: no rewrite of any existing one. On PostgreSQL, for months archived before this
revision, it is filled from what is still online (``partitions.recover_identities``: the request
that carried each such record's last online version); that reads only the version rows in the
archived months' id ranges.

Revision ID: 0055
Revises: 0051
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imsp.exchange import partitions

revision = "0055"
down_revision = "0051"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "archived_record",
        sa.Column("record_id", _BIG, nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_archived_record")),
    )
    op.create_index(
        op.f("ix_archived_record_institution_id_dataset_key"),
        "archived_record",
        ["institution_id", "dataset", "key"],
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        partitions.recover_identities(bind)


def downgrade() -> None:
    op.drop_index(op.f("ix_archived_record_institution_id_dataset_key"), "archived_record")
    op.drop_table("archived_record")
