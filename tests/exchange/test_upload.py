"""Every upload service in-process: receipts, partial acceptance, versions, dry run, atomic
batches, institution checks, and the gateway's refusals of bad requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import ExchangeSettings, Settings
from imsp.exchange import codec
from imsp.exchange.archive import restore
from imsp.exchange.receipts import MSG_UNCHANGED
from imsp.standard.model import load_standard
from imsp.standard.protocol import RECORD
from tests.exchange.builders import ORG_A, ORG_B, get_token, make_credential, record, records
from tests.exchange.conftest import Peek

DATASETS = load_standard().ordered()


def post(client: TestClient, path: str, body: Any, headers: dict[str, str], **params: str) -> Any:
    r = client.post(
        path,
        content=orjson.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
        params=params,
    )
    assert r.status_code in (200, 400, 401, 403, 413, 415, 429), r.text
    return r.json()


def codes(receipt: Any) -> list[int]:
    return [r["msgCode"] for r in receipt["data"]["results"]]


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.code)
def test_every_service_stores_valid_records(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek, ds: Any
) -> None:
    batch = records(ds, 1 if ds.code == "organization" else 3)
    receipt = post(exchange_client, ds.path, batch, auth)
    assert receipt["code"] == 200, receipt
    assert codes(receipt) == [200] * len(batch)
    assert receipt["data"]["total"] == receipt["data"]["success"] == len(batch)
    assert peek.count("record") == len(batch)
    assert peek.rows("SELECT DISTINCT dataset FROM record") == [(ds.code,)]


def test_receipt_names_the_standard_version_that_checked_the_records(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    receipt = post(exchange_client, "/uploadDoctor", record("doctor"), auth)
    assert receipt["data"]["standardVersion"] == "1.1"


def test_one_object_body_is_one_record(exchange_client: TestClient, auth: dict[str, str]) -> None:
    receipt = post(exchange_client, "/uploadDoctor", record("doctor"), auth)
    assert receipt["data"]["total"] == 1 and codes(receipt) == [200]


def test_a_mutated_record_is_rejected_naming_the_field(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    bad = record("prescription", n=1, sex="X", datein="2025-13-01 10:00:00")
    del bad["recipeType"]
    receipt = post(exchange_client, "/uploadPrescriptionInfo", [bad], auth)
    result = receipt["data"]["results"][0]
    fields = {e["field"]: e["code"] for e in result["errors"]}
    assert fields == {"sex": "value_set", "datein": "datetime", "recipeType": "node_missing"}
    assert result["msgCode"] == -99  # a missing node is the most fundamental of the three
    assert "recipeType" in result["msg"]
    assert all(e["msg"] for e in result["errors"])
    assert peek.count("record") == 0


def test_a_mixed_batch_stores_the_good_records(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    batch = records("register", 4)
    batch[1]["appointDate"] = "not a time"
    batch[3] = "not an object"  # type: ignore[call-overload]
    receipt = post(exchange_client, "/uploadRegister", batch, auth)
    assert codes(receipt) == [200, -96, 200, -98]
    assert (receipt["data"]["success"], receipt["data"]["fail"]) == (2, 2)
    assert "成功 2 条" in receipt["msg"]
    assert sorted(k for (k,) in peek.rows("SELECT key FROM record")) == sorted(
        [batch[0]["bussID"], batch[2]["bussID"]]
    )


def test_resubmission_updates_in_place_and_keeps_versions(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    first = record("patient", n=7)
    assert codes(post(exchange_client, "/uploadPatientFile", [first], auth)) == [200]
    changed = {**first, "patientName": "李四"}
    receipt = post(exchange_client, "/uploadPatientFile", [changed], auth)
    assert codes(receipt) == [201]
    assert receipt["data"]["results"][0]["msg"] == RECORD[201].msg
    assert peek.count("record") == 1
    assert peek.scalar("SELECT version FROM record") == 2
    versions = peek.rows("SELECT version, position FROM record_version ORDER BY version")
    assert versions == [(1, 0), (2, 0)]
    stored = codec.decode(peek.scalar("SELECT data FROM record"))
    assert stored["patientName"] == "李四"


def test_an_unchanged_resubmission_creates_no_version(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    rec = record("patient", n=8)
    post(exchange_client, "/uploadPatientFile", [rec], auth)
    receipt = post(exchange_client, "/uploadPatientFile", [rec], auth)
    assert codes(receipt) == [201]
    assert "未变化" in receipt["data"]["results"][0]["msg"]
    assert peek.count("record_version") == 1


def test_dry_run_validates_and_stores_nothing(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    batch = records("consult", 2)
    batch[1]["bussID"] = ""
    receipt = post(exchange_client, "/uploadConsult", batch, auth, dryRun="true")
    assert codes(receipt) == [202, -99]
    assert "试运行" in receipt["msg"]
    assert peek.count("record") == 0 and peek.count("record_version") == 0
    assert peek.rows("SELECT dry_run, body FROM exchange_log WHERE service = 'uploadConsult'") == [
        (True, None)
    ]


def test_atomic_batch_with_a_failure_stores_nothing(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    batch = records("lis", 3)
    batch[2]["reportTime"] = "yesterday"
    receipt = post(exchange_client, "/uploadLis", batch, auth, atomic="true")
    assert codes(receipt) == [-91, -91, -96]
    assert receipt["data"]["success"] == 0 and receipt["data"]["fail"] == 3
    assert peek.count("record") == 0
    ok = post(exchange_client, "/uploadLis", records("lis", 3), auth, atomic="true")
    assert codes(ok) == [200, 200, 200] and peek.count("record") == 3


def test_record_of_another_institution_is_rejected(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    receipt = post(exchange_client, "/uploadDepartment", [record("department", ORG_B)], auth)
    result = receipt["data"]["results"][0]
    assert result["msgCode"] == -93
    assert [e["code"] for e in result["errors"]] == ["organ_mismatch"]
    assert result["errors"][0]["field"] == "organID"
    assert peek.count("record") == 0


def test_duplicate_keys_in_one_batch_reject_every_occurrence(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    a = record("payment", n=1)
    b = record("payment", n=2)
    receipt = post(exchange_client, "/uploadPayment", [a, b, dict(a)], auth)
    assert codes(receipt) == [-92, 200, -92]
    assert "第 2 条" in receipt["data"]["results"][0]["errors"][0]["msg"]
    assert peek.count("record") == 1


def test_unknown_nodes_are_warnings_and_are_not_stored(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    rec = {**record("appraise"), "vendorExtra": "x"}
    result = post(exchange_client, "/uploadAppraise", [rec], auth)["data"]["results"][0]
    assert result["msgCode"] == 200
    assert [
        (w["field"], w["code"]) for w in result["warnings"] if w["code"] != "reference_missing"
    ] == [("vendorExtra", "unknown_field")]
    stored = codec.decode(peek.scalar("SELECT data FROM record"))
    assert "vendorExtra" not in stored


def test_typed_columns_are_filled_from_the_dataset_roles(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    rec = record("prescription", n=3, datein="2025-06-01 09:30:00", operType="3")
    assert codes(post(exchange_client, "/uploadPrescriptionInfo", [rec], auth)) == [200]
    row = peek.rows(
        "SELECT patient_id, patient_cert_id, doctor_cert_id, visit_no, dept_code, voided FROM record"
    )[0]
    assert row == (
        rec["patientId"],
        rec["patientCertID"],
        rec["doctorCertID"],
        rec["bussID"],
        rec["deptID"],
        True,
    )
    # 09:30 Beijing time is 01:30 UTC, on both databases.
    bt = peek.scalar("SELECT business_time FROM record")
    if isinstance(bt, str):  # SQLite keeps SQLAlchemy's naive-UTC text
        bt = datetime.fromisoformat(bt).replace(tzinfo=UTC)
    assert bt == datetime(2025, 6, 1, 1, 30, tzinfo=UTC)


def test_accepted_bodies_are_archived_with_their_digest(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    raw = orjson.dumps(records("pacs", 2))
    r = exchange_client.post(
        "/uploadPacs", content=raw, headers={**auth, "Content-Type": "application/json"}
    )
    xid = r.json()["data"]["exchangeId"]
    size, sha, body = peek.rows(
        "SELECT size, sha256, body FROM exchange_log WHERE service = 'uploadPacs'"
    )[0]
    assert size == len(raw)
    assert restore(bytes(body)) == raw
    assert sha == hashlib.sha256(raw).hexdigest()
    versions = peek.rows("SELECT position FROM record_version ORDER BY position")
    assert versions == [(0,), (1,)]
    assert all(
        str(x).replace("-", "") == xid.replace("-", "")
        for (x,) in peek.rows("SELECT DISTINCT exchange_id FROM record_version")
    )


def test_a_body_that_stored_nothing_is_archived_compressed_too(
    exchange_client: TestClient, auth: dict[str, str], settings: Settings, peek: Peek
) -> None:
    bad = {**record("pacs", n=1), "reportId": ""}
    raw = orjson.dumps([bad])
    exchange_client.post(
        "/uploadPacs", content=raw, headers={**auth, "Content-Type": "application/json"}
    )
    (body,) = peek.rows("SELECT body FROM exchange_log WHERE service = 'uploadPacs'")[0]
    assert restore(bytes(body)) == raw
    # zstd with the record dictionary on both databases (exchange.archive)
    assert bytes(body)[:4] == b"\x28\xb5\x2f\xfd" and len(body) < len(raw)


# --------------------------------------------------------------------------- gateway refusals


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("text/plain", 41500),
        ("application/x-www-form-urlencoded", 41500),
        ("application/json; charset=GBK", 41500),
        ("application/json; charset=UTF-8", 200),
        ("Application/JSON", 200),
    ],
)
def test_content_type_must_be_utf8_json(
    exchange_client: TestClient, auth: dict[str, str], content_type: str, code: int
) -> None:
    r = exchange_client.post(
        "/uploadPatientFile",
        content=orjson.dumps([record("patient")]),
        headers={**auth, "Content-Type": content_type},
    )
    assert r.json()["code"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", 40000),
        (b"[{", 40000),
        (b'["\xff"]', 40000),
        (b'[{"organID": "a\\u0000b"}]', 40000),
        (b"[]", 40001),
        (b'"text"', 40001),
        (b"42", 40001),
        (b"null", 40001),
        (b"[" * 2000 + b"]" * 2000, 40000),
        (b"[" * 1000 + b'"\\u0000"' + b"]" * 1000, 40000),
    ],
    ids=[
        "empty",
        "truncated",
        "invalid-utf8",
        "nul",
        "empty-array",
        "string",
        "number",
        "null",
        "deep",
        "deep-nul",
    ],
)
def test_malformed_bodies_get_clear_gateway_codes(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek, body: bytes, code: int
) -> None:
    r = exchange_client.post(
        "/uploadPatientFile", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert r.json()["code"] == code and r.json()["data"] is None
    assert r.status_code == 400
    assert peek.count("record") == 0
    assert peek.rows("SELECT code, body FROM exchange_log WHERE service = 'uploadPatientFile'") == [
        (code, None)
    ]


def test_utf8_byte_order_mark_is_tolerated(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    body = b"\xef\xbb\xbf" + orjson.dumps([record("patient")])
    r = exchange_client.post(
        "/uploadPatientFile", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert r.json()["code"] == 200


def test_query_flags_must_be_booleans(exchange_client: TestClient, auth: dict[str, str]) -> None:
    r = post(exchange_client, "/uploadPatientFile", [record("patient")], auth, dryRun="maybe")
    assert r["code"] == 40001


def _small_app(settings: Settings, clock: FrozenClock, **limits: int) -> TestClient:
    small = settings.model_copy(update={"exchange": ExchangeSettings(**limits)})
    return TestClient(create_exchange_app(small, clock=clock))


def test_too_many_records_is_41301(settings: Settings, clock: FrozenClock, peek: Peek) -> None:
    cred = make_credential(settings, clock)
    with _small_app(settings, clock, max_records=2) as client:
        auth = {"accessToken": get_token(client, cred)}
        assert post(client, "/uploadOrganization", [record("organization")], auth)["code"] == 200
        r = client.post(
            "/uploadPatientFile",
            content=orjson.dumps(records("patient", 3)),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["code"] == 41301
    assert peek.count("record") == 1


def test_oversized_body_is_refused_from_its_declared_length(
    settings: Settings, clock: FrozenClock
) -> None:
    cred = make_credential(settings, clock)
    with _small_app(settings, clock, max_body_bytes=2048) as client:
        auth = {"accessToken": get_token(client, cred)}
        big = orjson.dumps(records("prescription", 3))
        assert len(big) > 2048
        r = client.post(
            "/uploadPrescriptionInfo",
            content=big,
            headers={**auth, "Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["code"] == 41300


def test_oversized_chunked_body_is_refused_while_streaming(
    settings: Settings, clock: FrozenClock
) -> None:
    # Driven at the ASGI level: the test client reads a streamed body whole before calling the
    # app, so only counting what the app pulls from ``receive`` shows it stops early.
    cred = make_credential(settings, clock)
    pulled: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        pulled.append(1)  # 1000 × 1 KiB, far past the 4 KiB limit
        return {"type": "http.request", "body": b" " * 1024, "more_body": len(pulled) < 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with _small_app(settings, clock, max_body_bytes=4096) as client:
        token = get_token(client, cred)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/uploadPatientFile",
            "raw_path": b"/uploadPatientFile",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"accesstoken", token.encode()),
                (b"content-type", b"application/json"),
                (b"transfer-encoding", b"chunked"),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8888),
            "state": {},
        }
        assert client.portal is not None
        client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["code"] == 41300
    assert len(pulled) <= 6


def test_refused_requests_are_logged_with_their_code(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    exchange_client.post("/uploadLis", content=b"{}", headers={"Content-Type": "application/json"})
    exchange_client.post(
        "/uploadLis", content=b"{}", headers={**auth, "Content-Type": "text/plain"}
    )
    rows = peek.rows(
        "SELECT code, institution_id IS NULL FROM exchange_log WHERE service = 'uploadLis' ORDER BY code"
    )
    assert [(c, bool(n)) for c, n in rows] == [(40101, True), (41500, False)]


def test_unknown_service_and_wrong_method_use_the_error_shape(exchange_client: TestClient) -> None:
    r = exchange_client.post("/uploadNothing", json=[])
    assert r.status_code == 404 and r.json() == {
        "code": 40400,
        "msg": r.json()["msg"],
        "data": None,
    }
    r = exchange_client.get("/uploadPatientFile")
    assert r.status_code == 405 and r.json()["code"] == 40500


def test_other_institution_cannot_overwrite(
    exchange_client: TestClient,
    auth: dict[str, str],
    settings: Settings,
    clock: FrozenClock,
    peek: Peek,
) -> None:
    mine = record("doctor", ORG_A, n=5)
    assert codes(post(exchange_client, "/uploadDoctor", [mine], auth)) == [200]
    other = make_credential(settings, clock, ORG_B, "另一家医院")
    other_auth = {"accessToken": get_token(exchange_client, other)}
    # B sends the same doctor under A's organID: refused; under its own organID: B's own row.
    forged = post(exchange_client, "/uploadDoctor", [{**mine, "doctorName": "冒名"}], other_auth)
    assert codes(forged) == [-93]
    own = post(
        exchange_client,
        "/uploadDoctor",
        [{**mine, "organID": ORG_B, "doctorName": "乙"}],
        other_auth,
    )
    assert codes(own) == [200]
    rows = peek.rows(
        "SELECT i.org_code, r.version FROM record r JOIN institution i ON i.id = r.institution_id ORDER BY i.org_code"
    )
    assert rows == [(ORG_A, 1), (ORG_B, 1)]
    names = {
        o: codec.decode(d)["doctorName"]
        for o, d in peek.rows(
            "SELECT i.org_code, r.data FROM record r JOIN institution i ON i.id = r.institution_id"
        )
    }
    assert names[ORG_A] == mine["doctorName"]


def test_an_unreachable_database_is_503_not_500(tmp_path: Any) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    down = Settings(database_url="postgresql://postgres@127.0.0.1:1/none", data_dir=tmp_path)
    with TestClient(create_exchange_app(down)) as client:
        r = client.get("/auth/accesstoken/create", params={"appId": "hb1", "appSecret": "hbs_1"})
        assert r.status_code == 503 and r.json()["code"] == 50300
        token = "hbt_" + "a" * 43
        r = client.post(
            "/uploadPatientFile", json=[record("patient")], headers={"accessToken": token}
        )
        assert r.status_code == 503 and r.json() == {
            "code": 50300,
            "msg": r.json()["msg"],
            "data": None,
        }


def test_composite_keys_with_separator_do_not_collide(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    # ("R1|X", "Y") and ("R1", "X|Y") are two prescription lines, not two versions of one.
    a = {**record("prescription_item", ORG_A, n=1), "recipeID": "R1|X", "recipeDetailId": "Y"}
    b = {**a, "recipeID": "R1", "recipeDetailId": "X|Y"}
    assert codes(post(exchange_client, "/uploadPrescriptionList", [a], auth)) == [200]
    assert codes(post(exchange_client, "/uploadPrescriptionList", [b], auth)) == [200]
    assert peek.count("record") == 2 and peek.count("record_version") == 2
    both = post(exchange_client, "/uploadPrescriptionList", [a, b], auth)
    assert codes(both) == [201, 201]  # unchanged, not -92 duplicate keys


def test_a_resend_with_nodes_reordered_is_unchanged(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    # The same content in another key order: no new version, on SQLite as on PostgreSQL (JSONB).
    mine = record("doctor", ORG_A, n=1)
    assert codes(post(exchange_client, "/uploadDoctor", [mine], auth)) == [200]
    again = post(exchange_client, "/uploadDoctor", [dict(reversed(mine.items()))], auth)
    assert again["data"]["results"][0]["msg"] == MSG_UNCHANGED
    assert peek.count("record_version") == 1
