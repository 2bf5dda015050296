"""exchange partitions: record, record_version and exchange_log partitioned by month (PostgreSQL);
the key directory record_key; the archive catalogue archived_partition

``record`` gains ``month`` (the Beijing month of the key's first receipt), and its unique key
becomes (institution_id, dataset, key, month) on both databases; ``record_key`` holds each key's
month (``imsp.exchange.partitions`` explains the choice). On PostgreSQL the three tables are
rebuilt as partitioned tables and their rows copied into monthly partitions (existing rows:
``record`` by the month of ``created_at``, the others by ``at``), then partitions for the current
month and two ahead and a default partition are created. Converting a populated database
rewrites the three tables once: run it in a maintenance window sized to their size.

Revision ID: 0042
Revises: 0031
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import imsp.storage.base
from imsp.exchange import partitions

revision = "0042"
down_revision = "0031"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MONTH_OF_CREATED = "date_trunc('month', created_at AT TIME ZONE 'Asia/Shanghai')::date"

#: Per table: (extra column added, primary key, unique constraints, plain indexes).
_SHAPE: dict[str, tuple[str, list[str], list[tuple[str, list[str]]], list[tuple[str, list[str]]]]] = {
    "record": (
        "month",
        ["id", "month"],
        [("uq_record_institution_id_dataset_key_month", ["institution_id", "dataset", "key", "month"])],
        [
            ("ix_record_doctor_cert_id", ["doctor_cert_id"]),
            ("ix_record_institution_id_dataset_business_time", ["institution_id", "dataset", "business_time"]),
            ("ix_record_institution_id_patient_id", ["institution_id", "patient_id"]),
            ("ix_record_institution_id_visit_no", ["institution_id", "visit_no"]),
            ("ix_record_patient_cert_id", ["patient_cert_id"]),
        ],
    ),
    "record_version": ("", ["record_id", "version", "at"], [], [
        ("ix_record_version_exchange_id", ["exchange_id"]),
    ]),
    "exchange_log": ("", ["id", "at"], [], [
        ("ix_exchange_log_at", ["at"]),
        ("ix_exchange_log_institution_id_at", ["institution_id", "at"]),
    ]),
}  # fmt: skip


def _common() -> None:
    op.create_table(
        "record_key",
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("institution_id", "dataset", "key", name=op.f("pk_record_key")),
    )
    op.create_table(
        "archived_partition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent", sa.String(length=40), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("partition", sa.String(length=63), nullable=False),
        sa.Column("rows", _BIG, nullable=False),
        sa.Column("min_id", _BIG, nullable=True),
        sa.Column("max_id", _BIG, nullable=True),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("archived_at", imsp.storage.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archived_partition")),
        sa.UniqueConstraint("parent", "month", name=op.f("uq_archived_partition_parent_month")),
    )


def _rebuild_partitioned(table: str) -> None:
    """Rename the plain table aside, create the partitioned one LIKE it (columns, defaults,
    compression), and give it its keys and indexes under the models' names."""
    extra, pk, uniques, indexes = _SHAPE[table]
    key = partitions.PARENTS[table]
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_unpartitioned"')
    op.execute(
        f"""DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = '{table}_unpartitioned'::regclass LOOP
          EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, left(r.relname, 50) || '_unpart');
        END LOOP; END $$"""
    )
    column = f", {extra} date NOT NULL" if extra else ""
    op.execute(
        f'CREATE TABLE "{table}" (LIKE "{table}_unpartitioned" INCLUDING DEFAULTS'
        f" INCLUDING STORAGE INCLUDING COMPRESSION{column}) PARTITION BY RANGE ({key})"
    )
    op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY ({", ".join(pk)})')
    for name, cols in uniques:
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" UNIQUE ({", ".join(cols)})')
    for name, cols in indexes:
        op.execute(f'CREATE INDEX "{name}" ON "{table}" ({", ".join(cols)})')


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    for table in partitions.PARENTS:
        _rebuild_partitioned(table)
    # The id sequence outlives the plain table it belonged to.
    op.execute("ALTER SEQUENCE record_id_seq OWNED BY NONE")
    op.execute(
        "ALTER TABLE record ADD CONSTRAINT fk_record_institution_id_institution"
        " FOREIGN KEY (institution_id) REFERENCES institution (id)"
    )
    op.execute(
        "ALTER TABLE exchange_log ADD CONSTRAINT fk_exchange_log_institution_id_institution"
        " FOREIGN KEY (institution_id) REFERENCES institution (id)"
    )
    months = {
        m
        for (m,) in bind.execute(
            sa.text(
                f"SELECT DISTINCT {_MONTH_OF_CREATED} FROM record_unpartitioned"
                " UNION SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'Asia/Shanghai')::date"
                " FROM record_version_unpartitioned"
                " UNION SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'Asia/Shanghai')::date"
                " FROM exchange_log_unpartitioned"
            )
        ).all()
    }
    partitions.ensure(bind, now=datetime.now(UTC), months=months, wait_briefly=False)
    op.execute(f"INSERT INTO record SELECT *, {_MONTH_OF_CREATED} FROM record_unpartitioned")
    op.execute("INSERT INTO record_version SELECT * FROM record_version_unpartitioned")
    op.execute("INSERT INTO exchange_log SELECT * FROM exchange_log_unpartitioned")
    for table in partitions.PARENTS:
        op.execute(f'DROP TABLE "{table}_unpartitioned"')
    op.execute("ALTER SEQUENCE record_id_seq OWNED BY record.id")
    # New rows of record get their month from the writer; a default keeps bulk loaders simple.
    op.execute(
        "ALTER TABLE record ALTER COLUMN month SET DEFAULT"
        " date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date"
    )


def _upgrade_sqlite() -> None:
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("month", sa.Date(), nullable=True))
    op.execute("UPDATE record SET month = strftime('%Y-%m-01', created_at, '+8 hours')")
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.alter_column("month", existing_type=sa.Date(), nullable=False)
        batch_op.drop_constraint("uq_record_institution_id_dataset_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_record_institution_id_dataset_key_month",
            ["institution_id", "dataset", "key", "month"],
        )


def upgrade() -> None:
    _common()
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()
    op.execute(
        "INSERT INTO record_key (institution_id, dataset, key, month)"
        " SELECT institution_id, dataset, key, month FROM record"
    )


#: The primary keys before this revision.
_PLAIN_PK = {"record": ["id"], "record_version": ["record_id", "version"], "exchange_log": ["id"]}


def _downgrade_postgresql() -> None:
    bind = op.get_bind()
    op.execute("ALTER SEQUENCE record_id_seq OWNED BY NONE")
    for table, (extra, _pk, _uniques, indexes) in _SHAPE.items():
        columns = bind.execute(
            sa.text(
                "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
                " WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped"
                " AND attname <> :extra"
            ),
            {"t": table, "extra": extra},
        ).scalar()
        op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_partitioned"')
        # Index names are global: move the partitioned table's out of the way.
        op.execute(
            f"""DO $$ DECLARE r record; BEGIN
            FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     WHERE i.indrelid = '{table}_partitioned'::regclass LOOP
              EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, left(r.relname, 50) || '_part');
            END LOOP; END $$"""
        )
        op.execute(
            f'CREATE TABLE "{table}" (LIKE "{table}_partitioned" INCLUDING DEFAULTS'
            " INCLUDING STORAGE INCLUDING COMPRESSION)"
        )
        if extra:
            op.execute(f'ALTER TABLE "{table}" DROP COLUMN {extra}')
        op.execute(f'INSERT INTO "{table}" SELECT {columns} FROM "{table}_partitioned"')
        pk = ", ".join(_PLAIN_PK[table])
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY ({pk})')
        for name, cols in indexes:
            op.execute(f'CREATE INDEX "{name}" ON "{table}" ({", ".join(cols)})')
        op.execute(f'DROP TABLE "{table}_partitioned" CASCADE')
    op.execute(
        "ALTER TABLE record ADD CONSTRAINT uq_record_institution_id_dataset_key"
        " UNIQUE (institution_id, dataset, key)"
    )
    op.execute(
        "ALTER TABLE record ADD CONSTRAINT fk_record_institution_id_institution"
        " FOREIGN KEY (institution_id) REFERENCES institution (id)"
    )
    op.execute(
        "ALTER TABLE exchange_log ADD CONSTRAINT fk_exchange_log_institution_id_institution"
        " FOREIGN KEY (institution_id) REFERENCES institution (id)"
    )
    op.execute("ALTER SEQUENCE record_id_seq OWNED BY record.id")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        with op.batch_alter_table("record", schema=None) as batch_op:
            batch_op.drop_constraint("uq_record_institution_id_dataset_key_month", type_="unique")
            batch_op.create_unique_constraint(
                "uq_record_institution_id_dataset_key", ["institution_id", "dataset", "key"]
            )
            batch_op.drop_column("month")
    op.drop_table("archived_partition")
    op.drop_table("record_key")
