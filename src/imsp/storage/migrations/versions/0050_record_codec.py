"""record codec: record.data becomes canonical JSON compressed with zstd and a dictionary
(``bytea`` / BLOB, ``imsp.exchange.codec``); record.reviewer_cert_id (a prescription's
auditDoctorCertID, which supervision queried inside the JSON before); exchange_log.body
arrives zstd-compressed from the server (``exchange.archive``), so PostgreSQL stops compressing it

Existing documents are converted in batches of :data:`BATCH` rows (read as JSON text, encoded in
Python, written back by primary key) into a new column that then replaces ``data``; on
PostgreSQL each converted row's JSONB is set to NULL in the same update, so its TOAST chunks are
freed by the next (auto)vacuum and the space is reused (``VACUUM FULL`` or pg_repack per
partition returns it to the operating system). Every partition of ``record`` is converted
through its parent. The downgrade decodes back to JSONB / JSON the same way. Archived bodies
are left as they were stored (``archive.restore`` reads every form).

Revision ID: 0050
Revises: 0042
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from imsp.exchange import codec

revision = "0050"
down_revision = "0042"
branch_labels = None
depends_on = None

#: Rows converted per statement.
BATCH = 2000


def _reviewer(doc: dict[str, Any], dataset: str) -> str | None:
    value = doc.get("auditDoctorCertID") if dataset == "prescription" else None
    return value if isinstance(value, str) and value else None


def _convert(
    read: str, write: str, transform: Callable[[Any, str], tuple[Any, str | None]]
) -> None:
    """Rewrite every row: ``read`` selects (id, month, dataset, document) after ``:last`` by id;
    ``write`` takes the arrays ``ids``, ``months``, ``docs``, ``reviewers``."""
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    last = -1
    while True:
        rows = conn.execute(sa.text(read), {"last": last, "n": BATCH}).all()
        if not rows:
            return
        out = [(row[0], row[1], *transform(row[3], row[2])) for row in rows]
        if sqlite:
            conn.execute(
                sa.text(write),
                [{"id": i, "doc": d, "reviewer": r} for i, _m, d, r in out],
            )
        else:
            conn.execute(
                sa.text(write),
                {
                    "ids": [o[0] for o in out],
                    "months": [o[1] for o in out],
                    "docs": [o[2] for o in out],
                    "reviewers": [o[3] for o in out],
                },
            )
        last = rows[-1][0]


def _encode(text: Any, dataset: str) -> tuple[bytes, str | None]:
    doc = orjson.loads(text) if isinstance(text, str | bytes) else text
    return codec.encode(doc), _reviewer(doc, dataset)


def _decode(blob: Any, dataset: str) -> tuple[str, str | None]:
    return orjson.dumps(codec.decode(bytes(blob))).decode(), None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE record ADD COLUMN reviewer_cert_id VARCHAR(32)")
        op.execute("ALTER TABLE record ADD COLUMN data_z BYTEA")
        op.execute("ALTER TABLE record ALTER COLUMN data DROP NOT NULL")
        _convert(
            "SELECT id, month, dataset, data::text FROM record WHERE id > :last"
            " AND data IS NOT NULL ORDER BY id LIMIT :n",
            "UPDATE record SET data_z = v.doc, reviewer_cert_id = v.reviewer, data = NULL"
            " FROM unnest(CAST(:ids AS BIGINT[]), CAST(:months AS DATE[]),"
            " CAST(:docs AS BYTEA[]), CAST(:reviewers AS VARCHAR[])) AS v(id, month, doc, reviewer)"
            " WHERE record.id = v.id AND record.month = v.month",
            _encode,
        )
        op.execute("ALTER TABLE record DROP COLUMN data")
        op.execute("ALTER TABLE record RENAME COLUMN data_z TO data")
        op.execute("ALTER TABLE record ALTER COLUMN data SET NOT NULL")
        # Already compressed: a row too long for the page goes out of line as it is.
        op.execute("ALTER TABLE record ALTER COLUMN data SET STORAGE EXTERNAL")
        # Bodies now arrive compressed by the server (exchange.archive): no second compression.
        op.execute("ALTER TABLE exchange_log ALTER COLUMN body SET STORAGE EXTERNAL")
        return
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewer_cert_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("data_z", sa.LargeBinary(), nullable=True))
    _convert(
        "SELECT id, month, dataset, data FROM record WHERE id > :last ORDER BY id LIMIT :n",
        "UPDATE record SET data_z = :doc, reviewer_cert_id = :reviewer WHERE id = :id",
        _encode,
    )
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.drop_column("data")
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.alter_column(
            "data_z", new_column_name="data", existing_type=sa.LargeBinary(), nullable=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE exchange_log ALTER COLUMN body SET STORAGE EXTENDED")
        op.execute("ALTER TABLE record ADD COLUMN data_j JSONB")
        op.execute("ALTER TABLE record ALTER COLUMN data_j SET COMPRESSION lz4")
        _convert(
            "SELECT id, month, dataset, data FROM record WHERE id > :last ORDER BY id LIMIT :n",
            "UPDATE record SET data_j = CAST(v.doc AS JSONB)"
            " FROM unnest(CAST(:ids AS BIGINT[]), CAST(:months AS DATE[]),"
            " CAST(:docs AS TEXT[]), CAST(:reviewers AS VARCHAR[])) AS v(id, month, doc, reviewer)"
            " WHERE record.id = v.id AND record.month = v.month",
            _decode,
        )
        op.execute("ALTER TABLE record DROP COLUMN data")
        op.execute("ALTER TABLE record RENAME COLUMN data_j TO data")
        op.execute("ALTER TABLE record ALTER COLUMN data SET NOT NULL")
        op.execute("ALTER TABLE record DROP COLUMN reviewer_cert_id")
        return
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_j", sa.JSON(), nullable=True))
    _convert(
        "SELECT id, month, dataset, data FROM record WHERE id > :last ORDER BY id LIMIT :n",
        "UPDATE record SET data_j = :doc WHERE id = :id",
        _decode,
    )
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.drop_column("data")
        batch_op.drop_column("reviewer_cert_id")
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.alter_column(
            "data_j", new_column_name="data", existing_type=sa.JSON(), nullable=False
        )
