"""Observability of real ``imsp serve`` processes: one scrape sums every process writing to
``PROMETHEUS_MULTIPROC_DIR``, and JSON logs follow an upload by its exchange id — without ever
writing a resident ID number."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange.models import ExchangeLog
from imsp.metrics import prepare_multiprocess_dir
from tests.exchange.builders import ORG_A, make_credential, record, records
from tests.exchange.test_metrics import scrape, value
from tests.support.database import run
from tests.support.live import served_urls

SERVE = (sys.executable, "-m", "imsp.cli.main", "serve")


class Node:
    """One ``imsp serve`` process on kernel-chosen ports, on the test's database."""

    def __init__(self, settings: Settings, tmp: Path, env: dict[str, str]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")}
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        full = base | {
            "IMSP_DATA_DIR": str(tmp),
            "IMSP_DATABASE_URL": settings.database_url or "",
            "IMSP_SUPERVISION__WORKER": "false",
            "IMSP_METRICS__SAMPLE_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.proc = subprocess.Popen(
            [*SERVE, "--exchange-port", "0", "--portal-port", "0"],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        urls = served_urls(self.proc.stdout.readline)
        self.http = httpx.Client(base_url=urls["exchange"], timeout=30)
        self.portal = httpx.Client(base_url=urls["portal"], timeout=30)

    def stop(self) -> str:
        """SIGTERM; returns stderr (where the logs go)."""
        self.http.close()
        self.portal.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for n in started:
        n.http.close()
        n.portal.close()
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.communicate(timeout=30)


def _token(http: httpx.Client, app_id: str, secret: str) -> str:
    r = http.get("/auth/accesstoken/create", params={"appId": app_id, "appSecret": secret})
    assert r.status_code == 200, r.text
    token: str = r.json()["data"]["accessToken"]
    return token


def _upload(http: httpx.Client, body: Any, token: str) -> Any:
    r = http.post(
        "/uploadRegister",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json", "accessToken": token},
    )
    return r.json()


def test_one_scrape_sums_every_process(
    settings: Settings, clock: FrozenClock, tmp_path: Path, nodes: list[Node]
) -> None:
    prom = tmp_path / "prom"
    prepare_multiprocess_dir(prom)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(prom)}
    a = Node(settings, tmp_path / "a", env)
    nodes.append(a)
    b = Node(settings, tmp_path / "b", env)
    nodes.append(b)
    cred = make_credential(settings, clock, ORG_A)

    assert (
        _upload(a.http, records("register", 2), _token(a.http, cred.app_id, cred.app_secret))[
            "data"
        ]["success"]
        == 2
    )
    token_b = _token(b.http, cred.app_id, cred.app_secret)
    assert _upload(b.http, records("register", 3, start=2), token_b)["data"]["success"] == 3
    assert _upload(b.http, records("register", 1), "not-a-token")["code"] == 40102
    assert a.portal.get("/login").status_code == 200

    for node in (a, b):  # whichever process answers, it reports both
        s = scrape(node.http)
        assert value(s, "imsp_exchange_tokens_issued_total") == 2
        assert value(s, "imsp_exchange_requests_total", service="uploadRegister", code="200") == 2
        assert value(s, "imsp_exchange_requests_total", service="uploadRegister", code="40102") == 1
        assert value(s, "imsp_exchange_request_seconds_count", service="uploadRegister") == 3
        stored = value(
            s, "imsp_exchange_records_total", dataset="register", outcome="warned"
        ) + value(s, "imsp_exchange_records_total", dataset="register", outcome="accepted")
        assert stored == 5
        assert value(s, "imsp_supervision_queue_depth") == 5
        assert (
            value(
                s,
                "imsp_http_requests_total",
                server="portal",
                route="/login",
                method="GET",
                status="2xx",
            )
            == 1
        )
    # each process wrote its own files; the scrape merged them
    assert {p.name.split("_")[-1] for p in prom.glob("*.db")} >= {
        f"{a.proc.pid}.db",
        f"{b.proc.pid}.db",
    }


def test_json_logs_follow_an_upload_without_an_id_number(
    settings: Settings, clock: FrozenClock, tmp_path: Path, nodes: list[Node]
) -> None:
    node = Node(settings, tmp_path / "n", {"IMSP_LOG_FORMAT": "json", "IMSP_NODE_NAME": "node-a"})
    nodes.append(node)
    cred = make_credential(settings, clock, ORG_A)
    token = _token(node.http, cred.app_id, cred.app_secret)
    good = record("register", n=0)
    wrong_id = "130126198501291790"  # check digit wrong (GB 11643): rejected, echoed in the receipt
    bad = record("register", n=1, patientCertID=wrong_id)
    receipt = _upload(node.http, [good, bad], token)
    results = receipt["data"]["results"]
    assert [r["msgCode"] for r in results] == [200, -96]
    assert any(e["field"] == "patientCertID" for e in results[1]["errors"])
    exchange_id = receipt["data"]["exchangeId"]
    refused = _upload(node.http, [good], "not-a-token")
    assert refused["code"] == 40102

    err = node.stop()
    lines = [orjson.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, "no log lines at all"
    assert all({"ts", "level", "logger", "node", "pid", "msg"} <= set(doc) for doc in lines)
    access = [doc for doc in lines if doc["logger"] == "imsp.access"]
    (line,) = [doc for doc in access if doc.get("exchange_id") == exchange_id]
    assert line["node"] == "node-a" and line["pid"] == node.proc.pid
    assert line["service"] == "uploadRegister" and line["dataset"] == "register"
    assert line["app_id"] == cred.app_id and line["code"] == 200
    assert (line["total"], line["success"], line["fail"]) == (2, 1, 1)
    assert line["ms"] > 0
    assert {doc["service"] for doc in access} == {"accesstoken", "uploadRegister"}
    assert [doc["code"] for doc in access if doc["service"] == "uploadRegister"] == [200, 40102]
    # the same id is the exchange log row's
    row = run(settings, lambda s: s.get(ExchangeLog, uuid.UUID(exchange_id)))
    assert row is not None and row.service == "uploadRegister"
    # never an ID number, a secret or a token in the logs
    for secret in (
        wrong_id,
        good["patientCertID"],
        good["doctorCertID"],
        bad["doctorCertID"],
        cred.app_secret,
        token,
    ):
        assert secret not in err
