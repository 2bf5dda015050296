"""Migration 0042 converts a populated database of the previous head: every record, version and
log row is kept (on PostgreSQL moved into monthly partitions by its time), each key gets its
month in ``record_key``, the schema then matches the models, uploads work on the converted
tables (a resend of a migrated key updates its row) — and the downgrade gives the rows back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Uuid, bindparam, create_engine, text

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.storage import migrate, registry  # noqa: F401
from imsp.storage.base import Base, UtcDateTime
from tests.exchange.builders import ORG_A, get_token, make_credential, records

#: (created_at, key) of the records stored before the migration: two months apart.
BEFORE = [
    (datetime(2025, 12, 20, 2, 0, tzinfo=UTC), "K-DEC-1"),
    (datetime(2025, 12, 31, 17, 0, tzinfo=UTC), "K-JAN-1"),  # 2026-01-01 01:00 in Beijing
    (datetime(2026, 2, 3, 2, 0, tzinfo=UTC), "K-FEB-1"),
]


def _typed(sql: str) -> Any:
    """``sql`` with its ``:at`` and ``:xid`` parameters bound as the models bind them."""
    stmt = text(sql)
    names = [n for n in ("at", "xid") if f":{n}" in sql]
    types = {"at": UtcDateTime(), "xid": Uuid()}
    return stmt.bindparams(*(bindparam(n, type_=types[n]) for n in names))


def _fill_previous_head(settings: Settings) -> None:
    cfg = migrate.alembic_config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for head in ("0031", "0032"):  # the exchange branch before 0042, and credentials' channel
        command.upgrade(cfg, head)
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        conn.execute(
            _typed(
                "INSERT INTO institution (id, org_code, name, created_at) VALUES (1, :org, '测试医院', :at)"
            ),
            {"org": ORG_A, "at": BEFORE[0][0]},
        )
        for i, (at, key) in enumerate(BEFORE, start=1):
            xid = uuid.uuid4()
            conn.execute(
                _typed(
                    "INSERT INTO record (id, institution_id, dataset, key, version, voided, data,"
                    " created_at, updated_at, exchange_id) VALUES (:id, 1, 'patient', :key, 1,"
                    " false, :data, :at, :at, :xid)"
                ),
                {
                    "id": i,
                    "key": key,
                    "data": orjson.dumps({"n": i}).decode(),
                    "at": at,
                    "xid": xid,
                },
            )
            conn.execute(
                _typed(
                    "INSERT INTO record_version (record_id, version, exchange_id, position, at,"
                    " app_id) VALUES (:id, 1, :xid, 0, :at, 'app')"
                ),
                {"id": i, "xid": xid, "at": at},
            )
            conn.execute(
                _typed(
                    "INSERT INTO exchange_log (id, at, institution_id, app_id, service, client_addr,"
                    " size, code, total, success, fail, latency_ms, dry_run, atomic, body)"
                    " VALUES (:xid, :at, 1, 'app', 'uploadPatientFile', '127.0.0.1', 2, 200, 1, 1,"
                    " 0, 1.0, false, false, :body)"
                ),
                {"xid": xid, "at": at, "body": b"[]"},
            )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('record_id_seq', 3)"))
    engine.dispose()


def _rows(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings.sync_url)
    with engine.connect() as conn:
        out = {
            "record": conn.execute(
                text("SELECT id, key, version, created_at FROM record ORDER BY id")
            ).all(),
            "record_version": conn.execute(
                text("SELECT record_id, version, exchange_id FROM record_version ORDER BY 1")
            ).all(),
            "exchange_log": conn.execute(
                text("SELECT id, service, total FROM exchange_log ORDER BY at")
            ).all(),
        }
    engine.dispose()
    return out


def test_0042_converts_a_populated_database_and_back(unmigrated: Settings) -> None:
    _fill_previous_head(unmigrated)
    before = _rows(unmigrated)
    migrate.upgrade(unmigrated)
    assert _rows(unmigrated) == before

    engine = create_engine(unmigrated.sync_url)
    with engine.connect() as conn:
        months = dict(conn.execute(text("SELECT key, month FROM record_key")).all())
        assert {k: f"{m}"[:7] for k, m in months.items()} == {
            "K-DEC-1": "2025-12",
            "K-JAN-1": "2026-01",  # Beijing month, not UTC
            "K-FEB-1": "2026-02",
        }
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": migrate.include_object}
            ),
            Base.metadata,
        )
        assert diff == []
        if engine.dialect.name == "postgresql":
            where = dict(
                conn.execute(text("SELECT key, tableoid::regclass::text FROM record")).all()
            )
            assert where == {
                "K-DEC-1": "record_m202512",
                "K-JAN-1": "record_m202601",
                "K-FEB-1": "record_m202602",
            }
            logs = conn.execute(
                text("SELECT tableoid::regclass::text FROM exchange_log ORDER BY at")
            ).all()
            assert [n for (n,) in logs] == [
                "exchange_log_m202512",
                "exchange_log_m202601",
                "exchange_log_m202602",
            ]
            assert conn.execute(text("SELECT to_regclass('record_default')")).scalar() is not None
    engine.dispose()

    # Uploads on the converted tables: a new key, and the migrated key K-JAN-1 is not touched.
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    cred = make_credential(unmigrated, clock, ORG_A)
    with TestClient(create_exchange_app(unmigrated, clock=clock)) as client:
        r = client.post(
            "/uploadPatientFile",
            content=orjson.dumps(records("patient", 1)),
            headers={"accessToken": get_token(client, cred), "Content-Type": "application/json"},
        )
        assert r.status_code == 200 and r.json()["data"]["success"] == 1, r.text
    after = _rows(unmigrated)
    assert len(after["record"]) == 4 and after["record"][:3] == before["record"]
    assert after["record"][3][0] == 4  # the id sequence carried over

    command.downgrade(migrate.alembic_config(unmigrated), "0031")
    back = _rows(unmigrated)
    assert back["record"][:3] == before["record"] and len(back["record"]) == 4
    assert back["record_version"][:3] == before["record_version"]
