"""Migration 0013 regroups the pending checks of a populated database, one row per (rule,
record) before, into one row per record: every rule keeps what it waits for, ``since`` is the
earliest, ``due_at`` the earliest grace-period end — and the downgrade gives the rows back."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import JSON, bindparam, create_engine, text

from imsp.config import Settings
from imsp.storage import migrate
from imsp.storage.base import UtcDateTime

T1 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
DUE = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
PATIENT = [{"dataset": "patient", "field": "patientId", "key": "P1"}]


def _rows(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            stmt = text(sql).columns(since=UtcDateTime(), due_at=UtcDateTime())
            return [tuple(r) for r in conn.execute(stmt)]
    finally:
        engine.dispose()


def test_pending_checks_are_regrouped_per_record_and_back(unmigrated: Settings) -> None:
    migrate.upgrade(unmigrated, "0010")
    engine = create_engine(unmigrated.sync_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO institution (id, org_code, name, created_at) "
                     "VALUES (1, '12130000MB0000000X', 'H', :at)").bindparams(
                    bindparam("at", type_=UtcDateTime())
                ),
                {"at": T1},
            )  # fmt: skip
            insert = text(
                "INSERT INTO supervision_pending (rule_id, institution_id, dataset, key, "
                "missing, since, due_at) VALUES (:rule, 1, 'prescription', :key, :missing, "
                ":since, :due)"
            ).bindparams(
                bindparam("missing", type_=JSON()),
                bindparam("since", type_=UtcDateTime()),
                bindparam("due", type_=UtcDateTime()),
            )
            conn.execute(
                insert,
                [
                    {"rule": "R43", "key": "RX1", "missing": PATIENT, "since": T2, "due": DUE},
                    {"rule": "R11", "key": "RX1", "missing": PATIENT, "since": T1, "due": None},
                    {"rule": "R11", "key": "RX2", "missing": PATIENT, "since": T2, "due": None},
                ],
            )
    finally:
        engine.dispose()

    migrate.upgrade(unmigrated)
    engine = create_engine(unmigrated.sync_url)
    try:
        with engine.connect() as conn:
            stmt = text(
                "SELECT key, checks, since, due_at FROM supervision_pending ORDER BY key"
            ).columns(checks=JSON(), since=UtcDateTime(), due_at=UtcDateTime())
            rows = [tuple(r) for r in conn.execute(stmt)]
    finally:
        engine.dispose()
    assert rows == [
        ("RX1", {"R11": PATIENT, "R43": PATIENT}, T1, DUE),
        ("RX2", {"R11": PATIENT}, T2, None),
    ]

    command.downgrade(migrate.alembic_config(unmigrated), "0010")
    assert sorted(
        _rows(unmigrated, "SELECT rule_id, key, since, due_at FROM supervision_pending")
    ) == [
        ("R11", "RX1", T1, None),
        ("R11", "RX2", T2, None),
        ("R43", "RX1", T1, DUE),
    ]
