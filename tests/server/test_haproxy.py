"""``deploy/haproxy/haproxy.cfg`` at work on loopback: HAProxy terminates HTTPS in front of two
``imsp serve exchange`` nodes, checks their ``/readyz``, and the SDK keeps uploading while one
node is stopped — every record stored once, no error seen by the hospital."""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from imsp.client import Client
from imsp.clock import SystemClock
from imsp.config import Settings
from tests.exchange.builders import make_credential, records
from tests.support.live import RoleProcess
from tests.support.pki import make_pki

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("haproxy") is None,
        reason="haproxy not installed (scripts/install-system-deps.sh --dev installs it)",
    ),
]

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _node_address(url: str) -> str:
    return url.removeprefix("http://")


@contextmanager
def haproxy(tmp_path: Path, exchange_nodes: list[str], bundle: Path) -> Iterator[tuple[str, str]]:
    """The deploy configuration with its listening addresses replaced by sockets this test bound
    (``fd@``: no port race) and its servers by the nodes; yields (exchange URL, stats URL)."""
    sockets = {name: _listener() for name in ("exchange", "portal_tls", "portal", "stats")}
    fd = {name: s.fileno() for name, s in sockets.items()}
    cfg = CONFIG.read_text("utf-8")
    replacements = [
        (r"log /dev/log local0\n", ""),
        # 40,000 connections need more file descriptors than a test may raise its limit to
        (r"maxconn 40000", "maxconn 2000"),
        (r"bind :8888 ssl crt \S+", f"bind fd@{fd['exchange']} ssl crt {bundle}"),
        (r"bind :443 ssl crt \S+", f"bind fd@{fd['portal_tls']} ssl crt {bundle}"),
        (r"bind :80\n", f"bind fd@{fd['portal']}\n"),
        (r"bind 127\.0\.0\.1:8404", f"bind fd@{fd['stats']}"),
        (r"server exchange1 \S+", f"server exchange1 {_node_address(exchange_nodes[0])}"),
        (r"server exchange2 \S+", f"server exchange2 {_node_address(exchange_nodes[1])}"),
        (r"server portal1 \S+", "server portal1 127.0.0.1:1"),
        (r"server portal2 \S+", "server portal2 127.0.0.1:1"),
    ]
    for pattern, new in replacements:
        cfg, n = re.subn(pattern, new, cfg)
        assert n == 1, f"deploy/haproxy/haproxy.cfg no longer has {pattern!r}"
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg, "utf-8")
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(path)],
        pass_fds=tuple(fd.values()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = {name: s.getsockname()[1] for name, s in sockets.items()}
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"haproxy ended: {proc.communicate()[0]}")
            try:
                httpx.get(f"http://127.0.0.1:{port['stats']}/;csv", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"https://127.0.0.1:{port['exchange']}", f"http://127.0.0.1:{port['stats']}/;csv"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        for s in sockets.values():
            s.close()


def _stats(stats: str, column: str) -> dict[str, str]:
    rows = csv.reader(io.StringIO(httpx.get(stats, timeout=5).text.lstrip("# ")))
    header = next(rows)
    i, j, k = header.index("pxname"), header.index("svname"), header.index(column)
    return {r[j]: r[k] for r in rows if r and r[i] == "exchange_nodes"}


def _status(stats: str) -> dict[str, str]:
    return _stats(stats, "status")


def _wait_status(stats: str, want: dict[str, str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = _status(stats)
        if all(seen.get(k, "").startswith(v) for k, v in want.items()):
            return
        time.sleep(0.2)
    pytest.fail(f"HAProxy never saw {want}; last {seen}")


def test_haproxy_checks_readyz_and_uploads_survive_stopping_a_node(
    settings: Settings, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.cert.read_bytes() + pki.key.read_bytes())
    cred = make_credential(settings, SystemClock())
    batches = [records("prescription", 10, start=10 * i) for i in range(12)]
    with ExitStack() as stack:
        a = stack.enter_context(RoleProcess(settings, "exchange"))
        b = stack.enter_context(RoleProcess(settings, "exchange"))
        front, stats = stack.enter_context(haproxy(tmp_path, [a.url, b.url], bundle))
        _wait_status(stats, {"exchange1": "UP", "exchange2": "UP"})
        sdk = stack.enter_context(
            Client(front, cred.app_id, cred.app_secret, ca_file=str(pki.ca), backoff=0.2)
        )
        accepted = 0
        nodes = {"exchange1": a, "exchange2": b}
        stopped = ""
        for i, batch in enumerate(batches):
            if i == 4:  # stop the node that served most so far: SIGTERM, it drains
                served = _stats(stats, "stot")
                stopped = max(nodes, key=lambda name: int(served[name] or 0))
                assert int(served[stopped]) > 0
                nodes[stopped].stop()
                assert nodes[stopped].proc.returncode == 0
            accepted += sdk.upload("prescription", batch).success
        other = next(name for name in nodes if name != stopped)
        _wait_status(stats, {stopped: "DOWN", other: "UP"})
    assert accepted == 120
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM record")).scalar_one() == 120
    finally:
        engine.dispose()
