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

from tests.support.live import served_urls


class Serve:
    """``imsp serve`` on ports the kernel picks (``0``), read back from what it announces."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.proc = _start(tmp_path, *args)
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def read_line() -> str:
            line = stdout.readline()
            self.seen.append(line)
            return line

        urls = served_urls(read_line)
        self.ex, self.po = urls["exchange"], urls["portal"]

    def stop(self) -> tuple[str, str]:
        """SIGTERM; returns (everything printed, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return "".join(self.seen) + out, err


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
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
            "0",
            "--portal-port",
            "0",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            r = httpx.get(f"{url}/healthz", timeout=2)
            if r.status_code == 200:
                body: dict[str, object] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not healthy within 60 s")


@pytest.mark.slow
def test_serve_starts_both_servers_prints_demo_credentials_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    serve = Serve(tmp_path, "--migrate", "--demo")
    try:
        assert _wait_healthy(serve.ex, serve.proc)["service"] == "exchange"
        assert _wait_healthy(serve.po, serve.proc)["service"] == "portal"
    finally:
        out, err = serve.stop()
    assert serve.proc.returncode == 0, err
    assert "appId=hb" in out and "appSecret=hbs_" in out
    assert serve.ex != serve.po and not serve.ex.endswith(":0")
    for role in ("operator", "reviewer", "regulator", "applicant"):
        assert role in out

    # A second start keeps the data and does not print the (hashed, unrecoverable) secret again.
    serve = Serve(tmp_path, "--demo")
    try:
        _wait_healthy(serve.ex, serve.proc)
    finally:
        out, _ = serve.stop()
    assert "appSecret=hbs_" not in out
    assert "imsp demo seed --reset" in out
