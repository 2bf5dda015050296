"""Outages with real processes: the platform (``imsp serve``) or the sender (``imsp outbox drain``)
is killed mid-way and started again — every record arrives exactly once, none lost, none doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from imsp.client import Client, Outbox, Sender
from imsp.client.records import business_key, dataset
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.client.builders import sample, stored
from tests.client.conftest import make_credential
from tests.support.live import served_urls

IMSP = [sys.executable, "-m", "imsp.cli.main"]
pytestmark = pytest.mark.slow


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | extra


class Platform:
    """``imsp serve`` in its own process against the test's database. The first start takes the
    ports the kernel picks (``0``) and reads them back from the log; a restart reuses them, as a
    restarted platform comes back at its address."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.port, self.portal_port = 0, 0
        self.url = ""
        self.env = _env(
            {"IMSP_DATABASE_URL": settings.database_url or "", "IMSP_DATA_DIR": str(tmp_path)}
        )
        self.log = tmp_path / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["serve", "--exchange-port", str(self.port), "--portal-port", str(self.portal_port)]
        with self.log.open("ab") as log:
            offset = log.tell()
            self.proc = subprocess.Popen(IMSP + args, env=self.env, stdout=log, stderr=log)
        if not self.url:
            with self.log.open("r", encoding="utf-8", errors="replace") as out:
                out.seek(offset)
                urls = served_urls(out.readline)
            self.url = urls["exchange"]
            self.port = int(self.url.rsplit(":", 1)[1])
            self.portal_port = int(urls["portal"].rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text("utf-8", "replace")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("imsp serve did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # a crash, not a graceful stop
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@contextmanager
def platform(settings: Settings, tmp_path: Path) -> Iterator[Platform]:
    p = Platform(settings, tmp_path)
    p.start()
    try:
        yield p
    finally:
        p.stop()


def _wait(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _workload() -> dict[str, list[dict[str, object]]]:
    return {"patient": sample("patient", 240, seed=3), "doctor": sample("doctor", 60, seed=3)}


def _assert_exactly_once(settings: Settings, work: dict[str, list[dict[str, object]]]) -> None:
    rows = stored(settings)
    for code, records in work.items():
        ds = dataset(code)
        expected = sorted(str(business_key(ds, r)) for r in records)
        got = [(key, version) for d, key, version in rows if d == code]
        assert sorted(k for k, _ in got) == expected  # none lost, none doubled
        assert {v for _, v in got} == {1}  # redelivery stored no second version
    assert len(rows) == sum(len(r) for r in work.values())


def test_platform_killed_and_restarted_mid_push_loses_and_doubles_nothing(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    cred = make_credential(settings, clock)
    work = _workload()
    box = Outbox(tmp_path / "outbox.db")
    for code, records in work.items():
        box.enqueue(code, records)
    total = sum(len(r) for r in work.values())

    with platform(settings, tmp_path) as server:
        client = Client(
            server.url, cred.app_id, cred.app_secret, retries=1, backoff=0.05, timeout=5
        )
        stop = threading.Event()
        errors: list[str] = []
        with Sender(box, client, batch_size=10) as sender:
            loop = threading.Thread(
                target=sender.run,
                args=(stop,),
                kwargs={
                    "idle": 0.05,
                    "backoff": 0.1,
                    "max_backoff": 0.5,
                    "on_report": lambda r: r.error and errors.append(r.error),
                },
            )
            loop.start()
            try:
                _wait(lambda: box.status().total("delivered") >= 60)
                server.kill()
                _wait(lambda: len(errors) >= 3)  # the sender meets the outage …
                during = box.status()
                assert during.total("delivered") < total
                assert during.total("pending") + during.total("inflight") > 0
                server.start()  # … and the platform comes back
                _wait(lambda: box.status().total("delivered") == total)
            finally:
                stop.set()
                loop.join(timeout=30)
                client.close()
    assert box.status().total("parked") == 0
    _assert_exactly_once(settings, work)


def test_sender_process_killed_mid_drain_is_taken_over_by_the_next_one(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    cred = make_credential(settings, clock)
    work = _workload()
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    for code, records in work.items():
        box.enqueue(code, records)
    total = sum(len(r) for r in work.values())

    with platform(settings, tmp_path) as server:
        env = _env(
            {
                "IMSP_CLIENT_BASE_URL": server.url,
                "IMSP_CLIENT_APP_ID": cred.app_id,
                "IMSP_CLIENT_APP_SECRET": cred.app_secret,
                "IMSP_CLIENT_OUTBOX": str(path),
                "IMSP_CLIENT_BATCH_SIZE": "5",
                "XDG_CONFIG_HOME": str(tmp_path / "config"),
            }
        )
        sender = subprocess.Popen(
            [*IMSP, "outbox", "drain", "--follow", "--idle", "0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(lambda: box.status().total("delivered") >= 40)
        finally:
            sender.send_signal(signal.SIGKILL)
            sender.wait(timeout=30)
        assert box.status().total("delivered") < total

        again = subprocess.run(
            [*IMSP, "outbox", "drain"], env=env, capture_output=True, text=True, timeout=120
        )
    assert again.returncode == 0, again.stdout + again.stderr
    assert box.status().total("delivered") == total
    _assert_exactly_once(settings, work)


def test_drain_follow_stops_gracefully_on_sigterm(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    cred = make_credential(settings, clock)
    with platform(settings, tmp_path) as server:
        env = _env(
            {
                "IMSP_CLIENT_BASE_URL": server.url,
                "IMSP_CLIENT_APP_ID": cred.app_id,
                "IMSP_CLIENT_APP_SECRET": cred.app_secret,
                "IMSP_CLIENT_OUTBOX": str(tmp_path / "outbox.db"),
                "XDG_CONFIG_HOME": str(tmp_path / "config"),
            }
        )
        follower = subprocess.Popen(
            [*IMSP, "outbox", "drain", "--follow", "--idle", "0.1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        box = Outbox(tmp_path / "outbox.db")
        box.enqueue("patient", sample("patient", 5))
        _wait(lambda: box.status().total("delivered") == 5)
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "已停止" in out
