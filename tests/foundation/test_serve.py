"""`imsp serve --migrate --demo` as a real process: both servers healthy, credentials printed once,
a clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int, int]:
    ex, po = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | {
        "IMSP_DATA_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imsp.cli.main",
            "serve",
            "--exchange-port",
            str(ex),
            "--portal-port",
            str(po),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, ex, po


def _wait_healthy(port: int, proc: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            if r.status_code == 200:
                body: dict[str, object] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"port {port} not healthy within 60 s")


@pytest.mark.slow
def test_serve_starts_both_servers_prints_demo_credentials_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    proc, ex, po = _start(tmp_path, "--migrate", "--demo")
    try:
        assert _wait_healthy(ex, proc)["service"] == "exchange"
        assert _wait_healthy(po, proc)["service"] == "portal"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "appId=hb" in out and "appSecret=hbs_" in out
    assert f"http://127.0.0.1:{ex}" in out and f"http://127.0.0.1:{po}" in out
    for role in ("operator", "reviewer", "regulator", "applicant"):
        assert role in out

    # A second start keeps the data and does not print the (hashed, unrecoverable) secret again.
    proc, ex, po = _start(tmp_path, "--demo")
    try:
        _wait_healthy(ex, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "appSecret=hbs_" not in out
    assert "imsp demo seed --reset" in out
