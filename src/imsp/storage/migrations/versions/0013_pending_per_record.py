"""supervision: one pending-check row per waiting record (the waiting rules in ``checks``)

Revision ID: 0013
Revises: 0010

Before: one row per (rule, record), a dozen per prescription uploaded before its patient, doctor
and visit. The rows are regrouped, nothing is lost: each rule keeps what it waits for, ``since``
is the earliest, ``due_at`` the earliest grace-period end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import imsp.storage.base

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

_P = "supervision_pending"
_TIME = imsp.storage.base.UtcDateTime(timezone=True)
_JSON = imsp.storage.base.JsonDoc
_KEY = ("institution_id", "dataset", "key")


def _create(columns: list[sa.Column[Any]], pk: tuple[str, ...]) -> None:
    op.create_table(
        _P,
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        *columns,
        sa.Column("since", _TIME, nullable=False),
        sa.Column("due_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institution.id"], name=op.f(f"fk_{_P}_institution_id_institution")
        ),
        sa.PrimaryKeyConstraint(*pk, name=op.f(f"pk_{_P}")),
    )
    with op.batch_alter_table(_P, schema=None) as batch_op:
        batch_op.create_index("ix_supervision_pending_due_at", ["due_at"], unique=False)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def upgrade() -> None:
    old = sa.table(
        _P, *(sa.column(c) for c in (*_KEY, "rule_id")), sa.column("missing", _JSON),
        sa.column("since", _TIME), sa.column("due_at", _TIME),
    )  # fmt: skip
    bind = op.get_bind()
    rows = bind.execute(sa.select(old)).mappings().all()
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        k = tuple(r[c] for c in _KEY)
        g = grouped.setdefault(
            k,
            {**dict(zip(_KEY, k, strict=True)), "checks": {}, "since": r["since"], "due_at": None},
        )
        g["checks"][r["rule_id"]] = r["missing"]
        g["since"] = min(g["since"], r["since"])
        g["due_at"] = _earliest(g["due_at"], r["due_at"])
    op.drop_table(_P)
    _create([sa.Column("checks", _JSON, nullable=False)], _KEY)
    new = sa.table(
        _P, *(sa.column(c) for c in _KEY), sa.column("checks", _JSON),
        sa.column("since", _TIME), sa.column("due_at", _TIME),
    )  # fmt: skip
    if grouped:
        bind.execute(sa.insert(new), list(grouped.values()))


def downgrade() -> None:
    new = sa.table(
        _P, *(sa.column(c) for c in _KEY), sa.column("checks", _JSON),
        sa.column("since", _TIME), sa.column("due_at", _TIME),
    )  # fmt: skip
    bind = op.get_bind()
    rows = bind.execute(sa.select(new)).mappings().all()
    op.drop_table(_P)
    _create(
        [
            sa.Column("rule_id", sa.String(length=8), nullable=False),
            sa.Column("missing", _JSON, nullable=False),
        ],
        ("rule_id", *_KEY),
    )
    old = sa.table(
        _P, *(sa.column(c) for c in (*_KEY, "rule_id")), sa.column("missing", _JSON),
        sa.column("since", _TIME), sa.column("due_at", _TIME),
    )  # fmt: skip
    flat = [
        {**{c: r[c] for c in _KEY}, "rule_id": rule, "missing": missing, "since": r["since"],
         "due_at": r["due_at"] if rule in ("R43", "R44") else None}
        for r in rows
        for rule, missing in r["checks"].items()
    ]  # fmt: skip
    if flat:
        bind.execute(sa.insert(old), flat)
