"""The exchange service as a hospital meets it: a real server on loopback, real HTTP.

One test walks the issue's whole story in order — token, every service with generated data,
rejections that name the field, resubmission, dry run, a mixed batch, institution isolation and
token expiry on the injected clock — and one drives the service with ``curl`` using
``Transfer-Encoding: chunked``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.standard.model import load_standard
from imsp.standard.sample import generate_all
from tests.exchange.builders import ORG_A, ORG_B, SEED, make_credential, record, records
from tests.exchange.conftest import Peek
from tests.support.live import live_server

JSON = {"Content-Type": "application/json"}


def upload(http: httpx.Client, path: str, body: Any, token: str, **params: str) -> Any:
    r = http.post(
        path, content=orjson.dumps(body), headers={**JSON, "accessToken": token}, params=params
    )
    return r.json()


def codes(receipt: Any) -> list[int]:
    return [r["msgCode"] for r in receipt["data"]["results"]]


def token_for(http: httpx.Client, cred: Any) -> str:
    r = http.get(
        "/auth/accesstoken/create", params={"appId": cred.app_id, "appSecret": cred.app_secret}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["data"]["accessToken"]
    return token


def test_a_hospital_reports_over_loopback(
    settings: Settings, clock: FrozenClock, peek: Peek
) -> None:
    std = load_standard()
    cred_a = make_credential(settings, clock, ORG_A, "甲医院")
    cred_b = make_credential(settings, clock, ORG_B, "乙医院")
    app = create_exchange_app(settings, clock=clock)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as http:
        token = token_for(http, cred_a)

        # 1. every service, generated data (upload order: base data first), all accepted
        everything = generate_all(3, seed=SEED, org_code=ORG_A)
        assert len(everything) == 16
        stored = 0
        for code, recs in everything.items():
            receipt = upload(http, std.dataset(code).path, recs, token)
            assert receipt["code"] == 200, receipt
            assert codes(receipt) == [200] * len(recs), (code, receipt["data"]["results"])
            stored += len(recs)
        assert peek.count("record") == stored
        assert peek.scalar("SELECT count(DISTINCT dataset) FROM record") == 16

        # 2. mutated records are rejected, naming the field
        rx = everything["prescription"][0]
        bad = {**rx, "recipeID": "RX-BAD-1", "totalFee": "十元", "recipeType": "Z"}
        result = upload(http, "/uploadPrescriptionInfo", [bad], token)["data"]["results"][0]
        assert result["msgCode"] < 0
        assert {e["field"] for e in result["errors"]} >= {"totalFee", "recipeType"}
        assert peek.scalar("SELECT count(*) FROM record WHERE key = 'RX-BAD-1'") == 0

        # 3. resubmission updates in place, versions kept
        patient = everything["patient"][0]
        changed = {**patient, "address": "河北省石家庄市长安区中山东路 1 号"}
        assert codes(upload(http, "/uploadPatientFile", [changed], token)) == [201]
        assert peek.count("record") == stored
        versions = peek.rows(
            "SELECT v.version FROM record_version v JOIN record r ON r.id = v.record_id "
            "WHERE r.dataset = 'patient' AND r.key = :k ORDER BY v.version",
            k=patient["patientId"],
        )
        assert versions == [(1,), (2,)]

        # 4. a dry run stores nothing
        fresh = records("register", 2, ORG_A, start=10)
        assert codes(upload(http, "/uploadRegister", fresh, token, dryRun="true")) == [202, 202]
        assert peek.count("record") == stored

        # 5. a mixed batch stores the good records
        broken = {**fresh[1], "appointDate": "2025/06/01"}
        assert codes(upload(http, "/uploadRegister", [fresh[0], broken], token)) == [200, -96]
        assert peek.count("record") == stored + 1

        # 6. one institution cannot write or overwrite another's records
        token_b = token_for(http, cred_b)
        doctor = everything["doctor"][0]
        forged = {**doctor, "doctorName": "冒名顶替"}
        assert codes(upload(http, "/uploadDoctor", [forged], token_b)) == [-93]
        own = {**doctor, "organID": ORG_B}
        assert codes(upload(http, "/uploadDoctor", [own], token_b)) == [200]
        a_doctor = peek.scalar(
            "SELECT r.version FROM record r JOIN institution i ON i.id = r.institution_id "
            "WHERE i.org_code = :o AND r.dataset = 'doctor' AND r.key = :k",
            o=ORG_A,
            k=doctor["doctorCertID"],
        )
        assert a_doctor == 1

        # 7. an expired token gets the expired code; a new token works again
        clock.advance(days=1, seconds=1)
        expired = upload(http, "/uploadRegister", [fresh[1]], token)
        assert expired == {"code": 40103, "msg": expired["msg"], "data": None}
        assert codes(upload(http, "/uploadRegister", [fresh[1]], token_for(http, cred_a))) == [200]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_uploads_with_chunked_transfer_encoding(
    settings: Settings, clock: FrozenClock, peek: Peek, tmp_path: Path
) -> None:
    cred = make_credential(settings, clock)
    body = orjson.dumps(records("outpatient", 5))
    file = tmp_path / "outpatient.json"
    file.write_bytes(body)
    with live_server(create_exchange_app(settings, clock=clock)) as base:
        with httpx.Client(base_url=base) as http:
            token = token_for(http, cred)
        done = subprocess.run(
            [
                "curl", "-sS", "-v", "--max-time", "60",
                "-H", "Transfer-Encoding: chunked",
                "-H", "Content-Type: application/json;charset=UTF-8",
                "-H", f"accessToken: {token}",
                "--data-binary", f"@{file}",
                f"{base}/uploadOutpatient",
            ],
            capture_output=True, text=True, check=True, timeout=90,
        )  # fmt: skip
    sent = [line for line in done.stderr.splitlines() if line.startswith("> ")]
    assert "> Transfer-Encoding: chunked" in sent
    assert not any(line.lower().startswith("> content-length") for line in sent)
    receipt = orjson.loads(done.stdout)
    assert receipt["code"] == 200 and codes(receipt) == [200] * 5
    assert peek.rows("SELECT size FROM exchange_log WHERE service = 'uploadOutpatient'") == [
        (len(body),)
    ]
    assert record("outpatient")["caseNo"] in {k for (k,) in peek.rows("SELECT key FROM record")}
