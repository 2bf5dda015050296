"""The worker survives ``kill -9`` mid-batch (a real subprocess): the interrupted batch stays
claimed but unacknowledged, is claimed again after its lease, and in the end every queued change
is evaluated exactly once in effect — each finding raised once, none missing (a later full sweep
finds nothing new to raise or close)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from sqlalchemy import create_engine, text

from imsp.clock import BEIJING
from imsp.config import Settings
from tests.supervision.builders import Platform, run
from tests.supervision.test_order import WORLD


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        IMSP_DATABASE_URL=settings.database_url or "",
        IMSP_DATA_DIR=str(settings.data_dir),
        IMSP_SUPERVISION__BATCH="4",
        IMSP_SUPERVISION__LEASE_SECONDS="2",
        IMSP_SUPERVISION__POLL_SECONDS="0.2",
    )
    return env


def _worker(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imsp.cli.main", "supervise", "worker"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def _scalar(settings: Settings, sql: str) -> int:
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(settings: Settings) -> None:
    async def upload() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(WORLD)
        finally:
            await p.close()

    run(upload())
    queued = _scalar(settings, "SELECT count(*) FROM record_change")
    assert queued > 50

    kills = 0
    for _ in range(3):  # kill -9 while a batch is claimed and not yet acknowledged
        before = _scalar(settings, "SELECT count(*) FROM record_change")
        if before == 0:
            break
        proc = _worker(settings)
        try:
            _wait(
                lambda: _scalar(
                    settings, "SELECT count(*) FROM record_change WHERE claimed_by IS NOT NULL"
                ) > 0,
                60,
                "a claimed batch",
            )  # fmt: skip
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        kills += 1
        assert proc.returncode == -signal.SIGKILL
        # the batch it was working on is still queued (claimed, not acknowledged)
        assert _scalar(settings, "SELECT count(*) FROM record_change") > 0
    assert kills >= 1

    proc = _worker(settings)  # restart: the leases expire, everything is evaluated
    try:
        _wait(lambda: _scalar(settings, "SELECT count(*) FROM record_change") == 0, 120, "drain")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0  # SIGTERM: the worker finishes its round and exits cleanly

    assert (
        _scalar(
            settings,
            "SELECT count(*) FROM (SELECT finding_id FROM supervision_finding_event "
            "WHERE action = 'raise' GROUP BY finding_id HAVING count(*) > 1) AS dup",
        )
        == 0
    )
    findings = _scalar(settings, "SELECT count(*) FROM supervision_finding")
    assert findings > 5
    assert (
        _scalar(settings, "SELECT count(*) FROM supervision_finding_event WHERE action = 'raise'")
        == findings
    )

    async def sweep_again() -> tuple[int, int]:
        p = Platform(settings)
        try:
            stats = await p.sweep(now=datetime.now(BEIJING))
            return stats.raised, stats.rectified
        finally:
            await p.close()

    assert run(sweep_again()) == (0, 0)  # nothing was missed, nothing was wrong
