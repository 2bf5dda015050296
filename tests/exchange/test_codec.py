"""The stored form of a record (``imsp.exchange.codec``): round trip, canonical, versioned
dictionaries — and what really lands in the database (compressed bytes, no plain JSON)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zlib
from typing import Any

import orjson
import pytest
import zstandard
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from imsp.config import Settings
from imsp.exchange import archive, codec
from imsp.standard.mask import mask_key
from imsp.standard.model import load_standard
from imsp.standard.sample import generate_all
from tests.exchange.builders import ORG_A, record, records
from tests.exchange.conftest import Peek
from tests.exchange.test_cli import imsp  # noqa: F401  (fixture)


def _post(client: TestClient, path: str, body: bytes, auth: dict[str, str]) -> dict[str, Any]:
    r = client.post(path, content=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _reordered(value: Any) -> Any:
    """The same JSON value with the keys of every object in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_every_datasets_sample_records_round_trip_smaller() -> None:
    samples = generate_all(20)
    assert set(samples) == set(load_standard().datasets)
    for dataset, recs in samples.items():
        assert recs, dataset
        for rec in recs:
            blob = codec.encode(rec)
            assert codec.decode(blob) == rec
            assert len(blob) < len(orjson.dumps(rec)), dataset


def test_the_encoding_does_not_depend_on_key_order() -> None:
    rec = record("prescription")
    again = _reordered(rec)
    assert list(again) != list(rec)
    assert codec.encode(again) == codec.encode(rec)
    assert codec.canonical(again) == codec.canonical(rec)
    assert codec.encode({**rec, "deptName": "其他"}) != codec.encode(rec)


def test_the_encoding_of_a_fixed_record_is_pinned() -> None:
    """ "Unchanged" resends compare stored bytes: if this fails after upgrading ``zstandard`` (or
    changing the level or the dictionary), every stored record's next identical resend will be
    stored once more as a new version — decide that knowingly (ARCHITECTURE.md)."""
    doc = {
        "recipeID": "RX-0001",
        "patientName": "张三",
        "items": [{"drugName": "阿莫西林胶囊", "qty": 2.5}],
        "datein": "2025-06-01 09:30:00",
        "operType": "1",
    }
    blob = codec.encode(doc)
    assert hashlib.sha256(blob).hexdigest() == (
        "c7af0231d7c45411a04fd73a3d79a3cd9b3d9471cea551b8614c20fd430d57a8"
    )


def test_a_frame_names_its_dictionary_and_an_unknown_one_is_a_clear_error() -> None:
    blob = codec.encode(record("patient"))
    assert zstandard.get_frame_parameters(blob).dict_id == codec.dictionary_id(codec.CURRENT)
    foreign = zstandard.ZstdCompressor(
        dict_data=zstandard.ZstdCompressionDict(
            b"x" * 4096, dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
    ).compress(b"{}")
    unknown = zstandard.train_dictionary(
        4096,
        [codec.canonical(r) for r in generate_all(30)["doctor"]],
        dict_id=codec.dictionary_id(99),
    )
    other = zstandard.ZstdCompressor(dict_data=unknown).compress(b'{"a":1}')
    with pytest.raises(codec.UnknownDictionary, match="v99"):
        codec.decode(other)
    with pytest.raises(ValueError):
        codec.decode(foreign[:3])
    with pytest.raises(ValueError):
        codec.decode(b"not zstd at all")


def test_every_released_dictionary_is_shipped_under_its_id() -> None:
    shipped = sorted(codec.DICTIONARIES.glob("record-v*.zdict"))
    assert [p.name for p in shipped][-1] == f"record-v{codec.CURRENT}.zdict"
    for path in shipped:
        version = int(path.stem.removeprefix("record-v"))
        d = zstandard.ZstdCompressionDict(path.read_bytes())
        assert d.dict_id() == codec.dictionary_id(version)


def test_the_archive_restores_every_form_it_ever_stored() -> None:
    body = orjson.dumps(records("prescription", 3)) + b"\n"
    packed = archive.compress(body)
    assert packed[:4] == b"\x28\xb5\x2f\xfd" and len(packed) < len(body) // 2
    assert archive.restore(packed) == body
    assert archive.restore(zlib.compress(body, 6)) == body  # SQLite before migration 0050
    assert archive.restore(body) == body  # PostgreSQL before 0050: as sent


def test_a_large_body_is_archived_at_its_own_level_and_every_level_restores() -> None:
    body = orjson.dumps(records("prescription", 60))
    assert len(body) >= archive.LARGE
    packed = archive.compress(body)
    assert packed == codec.compress(body, archive.LARGE_LEVEL) != codec.compress(body)
    assert len(packed) < len(body) // 2
    for level in (1, 2, 3, 19):  # as archived before (3), now (2), or by any later choice
        assert archive.restore(codec.compress(body, level)) == body
    small = orjson.dumps(records("prescription", 1))
    assert archive.compress(small) == codec.compress(small)  # one record: level 3, as before


def test_a_resend_with_reordered_keys_is_unchanged(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    rec = record("prescription", n=4)
    first = _post(exchange_client, "/uploadPrescriptionInfo", orjson.dumps([rec]), auth)
    assert [r["msgCode"] for r in first["data"]["results"]] == [200]
    again = _post(exchange_client, "/uploadPrescriptionInfo", orjson.dumps([_reordered(rec)]), auth)
    assert [r["msgCode"] for r in again["data"]["results"]] == [201]
    assert "未变化" in again["data"]["results"][0]["msg"]
    assert peek.count("record_version") == 1
    assert peek.scalar("SELECT version FROM record") == 1
    stored = peek.scalar("SELECT data FROM record")
    assert codec.decode(stored)["recipeID"] == rec["recipeID"]
    assert rec["auditDoctorCertID"]
    assert peek.scalar("SELECT reviewer_cert_id FROM record") == rec["auditDoctorCertID"]


def test_the_database_holds_no_plain_json_of_a_record(
    settings: Settings, exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    rec = record("patient", n=5, address="河北省石家庄市长安区中山东路 39 号")
    _post(exchange_client, "/uploadPatientFile", orjson.dumps([rec]), auth)
    stored = bytes(peek.scalar("SELECT data FROM record"))
    assert stored[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    for needle in (rec["address"], rec["patientName"], "patientName"):
        assert needle.encode() not in stored
    url = make_url(settings.sync_url)
    if url.get_backend_name() == "postgresql":
        pg_dump = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
        dump = subprocess.run(
            [pg_dump, "--data-only", "--table=record*", "-h", url.host or "127.0.0.1",
             "-p", str(url.port or 5432), "-U", url.username or "postgres", url.database or ""],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    else:
        dump = "\n".join(
            repr(row) for row in peek.rows("SELECT * FROM record")
        ).encode()  # what a dump of the table shows, cell by cell
    assert rec["patientId"].encode() in dump  # the key column is plain
    assert rec["address"].encode() not in dump and b'"patientName"' not in dump
    body = bytes(peek.scalar("SELECT body FROM exchange_log WHERE body IS NOT NULL"))
    assert body[:4] == b"\x28\xb5\x2f\xfd" and rec["address"].encode() not in body
    assert archive.restore(body) == orjson.dumps([rec])


def test_imsp_exchange_record_shows_the_stored_record_masked_and_audited(
    imsp: Any,  # noqa: F811
    exchange_client: TestClient,
    auth: dict[str, str],
    peek: Peek,
) -> None:
    rec = record("patient", n=6)
    _post(exchange_client, "/uploadPatientFile", orjson.dumps([rec]), auth)
    out = imsp("exchange", "record", "patient", rec["patientId"], "--org", ORG_A).output
    assert rec["patientName"] in out or "patientName" in out
    assert rec["address"] in out
    assert rec["patientCertID"] not in out
    assert "版本 1" in out and "字节" in out
    missing = imsp("exchange", "record", "patient", "nobody", "--org", ORG_A, ok=False)
    assert missing.exit_code != 0
    viewed = peek.rows(
        "SELECT actor, target, institution_id IS NOT NULL FROM audit_event"
        " WHERE action = 'personal_data.view'"
    )
    assert viewed == [
        (
            "cli",
            f"record:patient:{mask_key(load_standard().dataset('patient'), rec['patientId'])}",
            True,
        )
    ]
