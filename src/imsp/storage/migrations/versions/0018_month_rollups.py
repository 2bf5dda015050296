"""supervision rollups: month sums of the daily rollups (and the findings' daily totals),
backfilled from the existing day rows; quality_institution_day indexed by institution

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SUMMED = (
    "requests", "received", "accepted", "rejected", "stored", "optional_filled",
    "optional_total", "refs_checked", "refs_resolved",
)  # fmt: skip


def _sums() -> list[sa.Column[Any]]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in SUMMED] + [
        sa.Column("delay_p95_s", sa.Double(), nullable=True)
    ]


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["institution_id"], ["institution.id"], name=op.f(f"fk_{table}_institution_id_institution")
    )


def upgrade() -> None:
    op.create_table(
        "quality_institution_month",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("active_days", sa.Integer(), nullable=False),
        sa.Column("rejected_by_code", imsp.storage.base.JsonDoc, nullable=False),
        *_sums(),
        _fk("quality_institution_month"),
        sa.PrimaryKeyConstraint(
            "channel", "month", "institution_id", name=op.f("pk_quality_institution_month")
        ),
    )
    op.create_table(
        "finding_institution_month",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        _fk("finding_institution_month"),
        sa.PrimaryKeyConstraint(
            "channel",
            "month",
            "institution_id",
            "status",
            name=op.f("pk_finding_institution_month"),
        ),
    )
    op.create_table(
        "finding_rule_month",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("rule_id", sa.String(length=8), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "channel", "month", "rule_id", "severity", "status", name=op.f("pk_finding_rule_month")
        ),
    )
    op.create_table(
        "finding_total_day",
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "day", name=op.f("pk_finding_total_day")),
    )
    # the hospital page reads one institution's days of quality_institution_day
    with op.batch_alter_table("quality_institution_day", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_institution_day_institution_id",
            ["channel", "institution_id", "day"],
            unique=False,
        )
    _backfill()


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _backfill() -> None:
    """The month rows of the day rows already stored (what ``imsp.supervision.months`` keeps
    from now on): quality in Python (bits and merged codes), findings in SQL."""
    conn = op.get_bind()
    cols = ", ".join(SUMMED)  # constants of this module: nothing from outside reaches the SQL
    acc: dict[tuple[str, int, date], list[Any]] = {}
    for row in conn.execute(
        sa.text(
            f"SELECT channel, institution_id, day, {cols}, delay_p95_s"  # noqa: S608
            " FROM quality_institution_day"
        )
    ):
        day = _as_date(row[2])
        key = (row[0], int(row[1]), day.replace(day=1))
        a = acc.setdefault(key, [0] * len(SUMMED) + [None, 0])
        for k in range(len(SUMMED)):
            a[k] += int(row[3 + k])
        p95 = row[3 + len(SUMMED)]
        if p95 is not None:
            a[-2] = float(p95) if a[-2] is None else max(a[-2], float(p95))
        if row[3] > 0:  # requests
            a[-1] |= 1 << (day.day - 1)
    codes: defaultdict[tuple[str, int, date], Counter[str]] = defaultdict(Counter)
    for channel, institution_id, day, by_code in conn.execute(
        sa.text(
            "SELECT channel, institution_id, day, rejected_by_code FROM quality_day"
            " WHERE rejected > 0"
        )
    ):
        doc = json.loads(by_code) if isinstance(by_code, str | bytes) else by_code
        key = (channel, int(institution_id), _as_date(day).replace(day=1))
        if key in acc:
            codes[key].update({str(k): int(v) for k, v in (doc or {}).items()})
    table = sa.table(
        "quality_institution_month",
        sa.column("channel", sa.String()),
        sa.column("month", sa.Date()),
        sa.column("institution_id", sa.Integer()),
        sa.column("active_days", sa.Integer()),
        sa.column("rejected_by_code", imsp.storage.base.JsonDoc),
        *(sa.column(n, sa.Integer()) for n in SUMMED),
        sa.column("delay_p95_s", sa.Double()),
    )
    rows = [
        {
            "channel": channel,
            "month": month,
            "institution_id": institution_id,
            **dict(zip(SUMMED, a[: len(SUMMED)], strict=True)),
            "delay_p95_s": a[-2],
            "active_days": a[-1],
            "rejected_by_code": dict(sorted(codes[(channel, institution_id, month)].items())),
        }
        for (channel, institution_id, month), a in sorted(acc.items())
    ]
    if rows:
        op.bulk_insert(table, rows)
    month = (
        "date(day, 'start of month')"
        if conn.dialect.name == "sqlite"
        else "CAST(date_trunc('month', day) AS date)"
    )
    op.execute(
        "INSERT INTO finding_institution_month (channel, month, institution_id, status, findings)"  # noqa: S608
        f" SELECT channel, {month}, institution_id, status, sum(findings) FROM finding_day"
        f" GROUP BY channel, {month}, institution_id, status"
    )
    op.execute(
        "INSERT INTO finding_rule_month (channel, month, rule_id, severity, status, findings)"  # noqa: S608
        f" SELECT channel, {month}, rule_id, severity, status, sum(findings) FROM finding_day"
        f" GROUP BY channel, {month}, rule_id, severity, status"
    )
    op.execute(
        "INSERT INTO finding_total_day (channel, day, findings)"
        " SELECT channel, day, sum(findings) FROM finding_day GROUP BY channel, day"
    )


def downgrade() -> None:
    with op.batch_alter_table("quality_institution_day", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_institution_day_institution_id")
    op.drop_table("finding_total_day")
    op.drop_table("finding_rule_month")
    op.drop_table("finding_institution_month")
    op.drop_table("quality_institution_month")
