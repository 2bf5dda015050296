"""Migration 0050 converts stored JSON documents to the record codec (``imsp.exchange.codec``):
every document decodes to what was stored, a prescription's reviewer lands in its column, the
schema then matches the models, a resend of a migrated record (keys in another order) is
"unchanged" — and the downgrade gives the JSON back."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange import codec
from imsp.storage import migrate, registry  # noqa: F401
from imsp.storage.base import Base
from tests.exchange.builders import ORG_A, get_token, make_credential, records
from tests.foundation.test_migration_partitions import _typed

AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
MONTH = date(2026, 3, 1)


def _documents() -> list[tuple[str, str, dict[str, Any]]]:
    """(dataset, key, document) of the records stored before the migration: more than one
    conversion batch of them."""
    out = [("prescription", r["recipeID"], r) for r in records("prescription", 3)]
    out += [("patient", r["patientId"], r) for r in records("patient", 3)]
    out += [("patient", f"P-{i}", {"patientId": f"P-{i}", "n": i}) for i in range(2100)]
    return out


def _fill_previous_head(settings: Settings, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
    cfg = migrate.alembic_config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for head in ("0042", "0032"):
        command.upgrade(cfg, head)
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        conn.execute(
            _typed(
                "INSERT INTO institution (id, org_code, name, created_at) VALUES (1, :org, '测试医院', :at)"
            ),
            {"org": ORG_A, "at": AT},
        )
        rows = [
            {
                "id": i,
                "ds": ds,
                "key": key,
                "data": orjson.dumps(doc).decode(),
                "at": AT,
                "xid": uuid.uuid4(),
                "month": MONTH,
            }
            for i, (ds, key, doc) in enumerate(docs, start=1)
        ]
        conn.execute(
            _typed(
                "INSERT INTO record (id, institution_id, dataset, key, version, voided, data,"
                " created_at, updated_at, exchange_id, month) VALUES (:id, 1, :ds, :key, 1,"
                " false, :data, :at, :at, :xid, :month)"
            ),
            rows,
        )
        conn.execute(
            text(
                "INSERT INTO record_key (institution_id, dataset, key, month)"
                " VALUES (1, :ds, :key, :month)"
            ),
            rows,
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('record_id_seq', :n)"), {"n": len(rows)})
    engine.dispose()


def _stored(settings: Settings) -> dict[int, tuple[Any, Any]]:
    engine = create_engine(settings.sync_url)
    with engine.connect() as conn:
        cols = "data, reviewer_cert_id" if _has_reviewer(conn) else "data, NULL"
        out = {i: (d, r) for i, d, r in conn.execute(text(f"SELECT id, {cols} FROM record"))}
    engine.dispose()
    return out


def _has_reviewer(conn: Any) -> bool:
    try:
        conn.execute(text("SELECT reviewer_cert_id FROM record LIMIT 0"))
    except Exception:
        conn.rollback()
        return False
    return True


def test_0050_encodes_every_document_and_back(unmigrated: Settings) -> None:
    docs = _documents()
    _fill_previous_head(unmigrated, docs)
    migrate.upgrade(unmigrated)

    stored = _stored(unmigrated)
    assert len(stored) == len(docs)
    for i, (ds, _key, doc) in enumerate(docs, start=1):
        blob, reviewer = stored[i]
        assert isinstance(blob, bytes) and codec.decode(blob) == doc
        assert reviewer == (doc["auditDoctorCertID"] if ds == "prescription" else None)
    engine = create_engine(unmigrated.sync_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": migrate.include_object}
            ),
            Base.metadata,
        )
        assert diff == []
    engine.dispose()

    # A migrated prescription sent again, its nodes in another order: unchanged, no version.
    _ds, _key, rx = docs[0]
    clock = FrozenClock(AT)
    cred = make_credential(unmigrated, clock, ORG_A)
    with TestClient(create_exchange_app(unmigrated, clock=clock)) as client:
        r = client.post(
            "/uploadPrescriptionInfo",
            content=orjson.dumps([dict(reversed(list(rx.items())))]),
            headers={"accessToken": get_token(client, cred), "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert [x["msgCode"] for x in r.json()["data"]["results"]] == [201], r.text

    command.downgrade(migrate.alembic_config(unmigrated), "0042")
    back = _stored(unmigrated)
    for i, (_ds, _key, doc) in enumerate(docs, start=1):
        data = back[i][0]
        assert (orjson.loads(data) if isinstance(data, str) else data) == doc
