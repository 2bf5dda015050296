"""``imsp credentials …`` and ``imsp exchange …`` end to end (CliRunner on the test database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from imsp.cli.main import cli
from imsp.config import Settings
from imsp.standard.mask import mask, mask_key
from imsp.standard.model import load_standard
from tests.exchange.builders import ORG_A, record, records
from tests.exchange.conftest import Peek

TOKEN_URL = "/auth/accesstoken/create"


@pytest.fixture
def imsp(settings: Settings) -> Any:
    runner = CliRunner()
    env = {
        "IMSP_DATABASE_URL": settings.database_url or "",
        "IMSP_DATA_DIR": str(settings.data_dir),
    }

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _token(client: TestClient, app_id: str, secret: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(
        TOKEN_URL, params={"appId": app_id, "appSecret": secret}
    ).json()
    return body


def test_credentials_create_prints_the_secret_once_and_stores_its_hash(
    imsp: Any, exchange_client: TestClient, peek: Peek
) -> None:
    out = orjson.loads(imsp("credentials", "create", ORG_A, "--name", "测试医院", "--json").output)
    assert set(out) == {"appId", "appSecret", "organID", "institution", "channel"}
    assert out["channel"] == "production"
    assert _token(exchange_client, out["appId"], out["appSecret"])["code"] == 200
    assert out["appSecret"] not in str(peek.rows("SELECT * FROM app_credential"))
    listing = imsp("credentials", "list").output
    assert out["appId"] in listing and out["appSecret"] not in listing
    assert "测试医院" in listing


def test_credentials_create_refuses_an_invalid_org_code(imsp: Any) -> None:
    result = imsp("credentials", "create", "12345", "--name", "x", ok=False)
    assert result.exit_code != 0
    assert "统一社会信用代码" in result.output and "Traceback" not in result.output


def test_rotate_replaces_the_secret_and_can_revoke_tokens(
    imsp: Any, exchange_client: TestClient
) -> None:
    out = orjson.loads(imsp("credentials", "create", ORG_A, "--name", "测试医院", "--json").output)
    token = _token(exchange_client, out["appId"], out["appSecret"])["data"]["accessToken"]
    new = orjson.loads(imsp("credentials", "rotate", out["appId"], "--json").output)
    assert new["appId"] == out["appId"] and new["appSecret"] != out["appSecret"]
    assert _token(exchange_client, out["appId"], out["appSecret"])["code"] == 40004
    assert _token(exchange_client, out["appId"], new["appSecret"])["code"] == 200
    upload = exchange_client.post(
        "/uploadPatientFile", json=[record("patient")], headers={"accessToken": token}
    )
    assert upload.json()["code"] == 200  # old tokens live on by default …
    assert (
        "tokens revoked: 2" in imsp("credentials", "rotate", out["appId"], "--revoke-tokens").output
    )


def test_revoke_stops_the_credential(imsp: Any, exchange_client: TestClient, peek: Peek) -> None:
    out = orjson.loads(imsp("credentials", "create", ORG_A, "--name", "测试医院", "--json").output)
    _token(exchange_client, out["appId"], out["appSecret"])
    assert "已停用" in imsp("credentials", "revoke", out["appId"]).output
    assert _token(exchange_client, out["appId"], out["appSecret"])["code"] == 40005
    assert peek.count("access_token") == 0
    assert "revoked" in imsp("credentials", "list").output
    actions = {a for (a,) in peek.rows("SELECT action FROM audit_event")}
    assert actions >= {"credential.create", "credential.revoke"}


def _upload(client: TestClient, auth: dict[str, str], path: str, body: bytes) -> Any:
    return client.post(
        path, content=body, headers={**auth, "Content-Type": "application/json"}
    ).json()


def test_exchange_log_lists_and_filters_requests(
    imsp: Any, exchange_client: TestClient, auth: dict[str, str]
) -> None:
    _upload(exchange_client, auth, "/uploadPatientFile", orjson.dumps(records("patient", 2)))
    bad = records("register", 2)
    bad[0]["appointDate"] = "x"
    _upload(exchange_client, auth, "/uploadRegister", orjson.dumps(bad))
    _upload(exchange_client, auth, "/uploadRegister", b"[")
    rows = orjson.loads(imsp("exchange", "log", "--json").output)
    # Newest first (same frozen time: the time-ordered exchange ids decide); the token request too.
    assert [r["service"] for r in rows] == [
        "uploadRegister",
        "uploadRegister",
        "uploadPatientFile",
        "accesstoken",
    ]
    failed = orjson.loads(imsp("exchange", "log", "--failed", "--json").output)
    assert sorted((r["code"], r["fail"]) for r in failed) == [(200, 1), (40000, 0)]
    only = orjson.loads(
        imsp("exchange", "log", "--service", "uploadPatientFile", "--org", ORG_A, "--json").output
    )
    assert [(r["total"], r["success"], r["archived"]) for r in only] == [(2, 2, True)]
    text = imsp("exchange", "log", "--since", "2026-01-05").output  # the frozen clock's day
    assert "uploadPatientFile" in text
    assert "uploadPatientFile" not in imsp("exchange", "log", "--since", "2026-01-06").output


def test_exchange_show_reproduces_the_exact_body(
    imsp: Any, exchange_client: TestClient, auth: dict[str, str], tmp_path: Path, peek: Peek
) -> None:
    body = b"\n  " + orjson.dumps(records("doctor", 2), option=orjson.OPT_INDENT_2) + b"\n"
    xid = _upload(exchange_client, auth, "/uploadDoctor", body)["data"]["exchangeId"]
    out = tmp_path / "body.json"
    shown = imsp("exchange", "show", xid, "--body", str(out)).output
    assert out.read_bytes() == body
    assert "intact" in shown
    doctor_id = records("doctor", 1)[0]["doctorCertID"]
    assert (
        doctor_id not in shown and mask(doctor_id) in shown
    )  # keys that are ID numbers are masked
    assert peek.rows(
        "SELECT action, target FROM audit_event WHERE action = 'exchange.body_export'"
    ) == [("exchange.body_export", xid)]


def test_exchange_trace_follows_a_record_to_its_requests_masked_and_audits_the_viewing(
    imsp: Any, exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    patient = record("patient", n=3)
    first = _upload(
        exchange_client, auth, "/uploadPatientFile", orjson.dumps([record("patient", n=1), patient])
    )
    second = _upload(
        exchange_client,
        auth,
        "/uploadPatientFile",
        orjson.dumps({**patient, "address": "新地址 8 号"}),
    )
    out = imsp(
        "exchange", "trace", "patient", patient["patientId"], "--org", ORG_A, "--show"
    ).output
    assert first["data"]["exchangeId"] in out and second["data"]["exchangeId"] in out
    assert "新地址 8 号" in out
    assert patient["patientCertID"] not in out and mask(patient["patientCertID"]) in out
    assert patient["mobile"] not in out
    missing = imsp("exchange", "trace", "patient", "nobody", "--org", ORG_A, ok=False)
    assert missing.exit_code != 0
    imsp("exchange", "trace", "patient", patient["patientId"], "--org", ORG_A)  # no content
    details = [
        orjson.loads(d) if isinstance(d, str) else d  # SQLite gives the JSON as text
        for (d,) in peek.rows("SELECT detail FROM audit_event WHERE action = 'personal_data.view'")
    ]
    key = mask_key(load_standard().dataset("patient"), patient["patientId"])
    assert details == [
        {"where": "cli_exchange_trace", "dataset": "patient", "key": key, "organID": ORG_A}
    ]
