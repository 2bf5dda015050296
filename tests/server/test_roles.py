"""``imsp serve exchange|portal|worker --workers N`` as an operator runs it: real process trees on
loopback, signals, a killed worker process, an upload in flight during shutdown."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from imsp.cli.main import cli
from imsp.clock import SystemClock
from imsp.config import Settings
from imsp.prefork import METRICS_DIR_ENV, metrics_dir
from tests.exchange.builders import get_token, make_credential, records
from tests.exchange.test_metrics import scrape, value
from tests.support.live import RoleProcess

pytestmark = pytest.mark.slow


def _count(settings: Settings, sql: str) -> int:
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _wait(predicate: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_exchange_role_runs_n_processes_on_one_port_and_restarts_a_killed_one(
    settings: Settings, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with RoleProcess(settings, "exchange", "--workers", "2", env={"TMPDIR": str(scratch)}) as node:
        r = httpx.get(f"{node.url}/readyz", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"database": "ok", "migrations": "ok"}
        assert r.json()["service"] == "exchange"
        _wait(lambda: len(node.children()) == 2, "two worker processes")
        # TCP_NODELAY in the children too: no ~40 ms delayed-ACK wait on a kept-alive connection
        with httpx.Client(base_url=node.url, timeout=10) as client:
            client.get("/standard/v1/codes/yes_no.json")
            took = []
            for _ in range(20):
                t0 = time.perf_counter()
                assert client.get("/standard/v1/codes/yes_no.json").status_code == 200
                took.append(time.perf_counter() - t0)
        assert sorted(took)[10] < 0.015, f"median {sorted(took)[10] * 1000:.1f} ms"
        first = node.children()
        # --workers 2 without PROMETHEUS_MULTIPROC_DIR: a fresh directory for the children
        assert len(list(scratch.glob("imsp-metrics-*"))) == 1

        os.kill(first[0], signal.SIGKILL)
        _wait(
            lambda: len(node.children()) == 2 and first[0] not in node.children(),
            "the killed worker process to be replaced",
        )
        assert first[1] in node.children()
        time.sleep(2)  # one replacement, not one per supervision tick
        assert len(node.children()) == 2, node.children()
        for _ in range(10):  # the port kept answering throughout
            assert httpx.get(f"{node.url}/healthz", timeout=10).status_code == 200
        _, err = node.stop()
    assert node.proc.returncode == 0, err
    assert f"worker process {first[0]}" in err and "SIGKILL" in err
    assert list(scratch.glob("imsp-metrics-*")) == []  # removed on exit


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_lets_an_upload_in_flight_finish_and_refuses_new_connections(
    settings: Settings,
) -> None:
    cred = make_credential(settings, SystemClock())
    body = orjson.dumps(records("prescription", 3))
    with RoleProcess(settings, "exchange", "--workers", "2") as node:
        token = httpx.get(
            f"{node.url}/auth/accesstoken/create",
            params={"appId": cred.app_id, "appSecret": cred.app_secret},
            timeout=10,
        ).json()["data"]["accessToken"]
        parts = urlsplit(node.url)
        host, port = parts.hostname or "", parts.port or 0
        slow = socket.create_connection((host, port), timeout=30)
        slow.sendall(
            b"POST /uploadPrescriptionInfo HTTP/1.1\r\nHost: imsp\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"accessToken: " + token.encode() + b"\r\n\r\n" + _chunk(body[:200])
        )
        time.sleep(0.5)  # the head and the first chunk are in
        node.proc.send_signal(signal.SIGTERM)
        _wait(lambda: _refused(host, port), "new connections to be refused", timeout=15)
        # the upload goes on, slowly, after the port closed
        for i in range(200, len(body), 1000):
            slow.sendall(_chunk(body[i : i + 1000]))
            time.sleep(0.1)
        slow.sendall(b"0\r\n\r\n")
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk
        slow.close()
        _, err = node.stop()  # already stopping: waits for the exit
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    receipt = orjson.loads(payload)
    assert receipt["code"] == 200, receipt
    assert [r["msgCode"] for r in receipt["data"]["results"]] == [200, 200, 200]
    assert node.proc.returncode == 0, err
    assert _count(settings, "SELECT count(*) FROM record") == 3  # stored, not just answered


def test_worker_role_consumes_the_change_feed_and_answers_health(
    settings: Settings, exchange_client: TestClient
) -> None:
    cred = make_credential(settings, SystemClock())
    token = get_token(exchange_client, cred)
    r = exchange_client.post(
        "/uploadPrescriptionInfo",
        content=orjson.dumps(records("prescription", 5)),
        headers={"Content-Type": "application/json", "accessToken": token},
    )
    assert r.json()["code"] == 200
    assert _count(settings, "SELECT count(*) FROM record_change") == 5
    with RoleProcess(settings, "worker", "--workers", "2") as node:
        r = httpx.get(f"{node.url}/readyz", timeout=10)
        assert r.status_code == 200 and r.json()["service"] == "worker"
        assert httpx.get(f"{node.url}/uploadPrescriptionInfo").status_code == 404  # jobs only
        _wait(
            lambda: _count(settings, "SELECT count(*) FROM record_change") == 0,
            "the worker to drain the change feed",
        )
        # /metrics on the health port: whichever of the two processes answers (each in the
        # temporary PROMETHEUS_MULTIPROC_DIR of --workers 2) reports the work of both
        for _ in range(6):  # a new connection each time: any of the processes may take it
            with httpx.Client(base_url=node.url, timeout=10) as http:
                s = scrape(http)
            assert value(s, "imsp_supervision_changes_total") == 5
            assert value(s, "imsp_supervision_queue_depth") == 0
            assert value(s, "imsp_supervision_records_evaluated_total", source="changes") == 5
        _, err = node.stop()
    assert node.proc.returncode == 0, err


def test_worker_role_runs_without_any_port(settings: Settings) -> None:
    with RoleProcess(settings, "worker", port=False) as node:
        assert node.url == ""
        _wait(lambda: len(node.children()) == 1, "one worker process")
        out, err = node.stop()
    assert node.proc.returncode == 0, err
    assert "无 HTTP 端口" in out


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({}, ["exchange"], "imsp db upgrade"),
        ({"IMSP_TLS_CERT_FILE": "/nonexistent/cert.pem"}, ["exchange"], "IMSP_TLS_KEY_FILE"),
        (
            {"IMSP_TLS_CERT_FILE": "/nonexistent/c.pem", "IMSP_TLS_KEY_FILE": "/nonexistent/k"},
            ["portal"],
            "证书或私钥文件无法读取",
        ),
        ({}, ["exchange", "--health-port", "1"], "--health-port 只用于 worker"),
        ({}, ["--workers", "2"], "须与角色一起使用"),
    ],
)
def test_role_start_up_problems_end_in_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], expected: str
) -> None:
    environment = {"IMSP_DATA_DIR": str(tmp_path / "var"), "IMSP_DATABASE_URL": ""} | env
    result = CliRunner().invoke(cli, ["serve", *args], env=environment)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert any(expected in line for line in lines), result.output
    assert "Traceback" not in result.output


def test_metrics_directory_is_made_only_for_several_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(METRICS_DIR_ENV, raising=False)
    with metrics_dir(1) as path:
        assert path is None and METRICS_DIR_ENV not in os.environ
    with metrics_dir(3) as path:
        assert path is not None and os.environ[METRICS_DIR_ENV] == path
        assert Path(path).is_dir()
    assert not Path(path).exists() and METRICS_DIR_ENV not in os.environ
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))  # the operator's own is kept
    with metrics_dir(3) as path:
        assert path == str(tmp_path)
    assert tmp_path.is_dir()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_worker_processes_do_not_outlive_a_killed_parent(settings: Settings) -> None:
    with RoleProcess(settings, "portal", "--workers", "2") as node:
        _wait(lambda: len(node.children()) == 2, "two worker processes")
        children = node.children()
        os.kill(node.proc.pid, signal.SIGKILL)
        _wait(lambda: not any(_alive(p) for p in children), "the orphans to stop", timeout=20)
