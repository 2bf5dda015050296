"""IMSP behind a real PgBouncer in transaction-pooling mode (``IMSP_DATABASE_PGBOUNCER=true``).

PgBouncer is started by the test on a free loopback port in front of the test's PostgreSQL, with
a server pool of TWO connections: every transaction of every client lands on whichever server
connection is free, so anything session-bound (a statement prepared by name on one server
connection, a start-up option) would break. Uploads (the exchange's own psycopg pool) and the
supervision worker (the SQLAlchemy engine) run through it; without the setting, the
connection is refused — the setting is what makes it work.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.storage.db import Database
from imsp.supervision.worker import run_once
from tests.exchange.builders import ORG_A, get_token, make_credential, records
from tests.support.database import with_database

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bouncer(settings: Settings) -> Iterator[Settings]:
    """Settings of the test database reached through PgBouncer (transaction mode)."""
    if settings.is_sqlite:
        pytest.skip("PgBouncer pools PostgreSQL connections")
    if not Path(PGBOUNCER).exists():
        pytest.skip("pgbouncer not installed (scripts/install-system-deps.sh --dev)")
    target = make_url(settings.sync_url)
    port = _free_port()
    # PgBouncer refuses to run as root: it switches to the PostgreSQL account, which must be
    # able to read its files.
    home = Path(tempfile.mkdtemp(prefix="imsp-pgbouncer-"))
    home.chmod(0o777)
    (home / "users.txt").write_text(f'"{target.username or "postgres"}" ""\n')
    (home / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {home / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 200\n"
        f"logfile = {home / 'pgbouncer.log'}\npidfile = {home / 'pgbouncer.pid'}\n"
    )
    for f in home.iterdir():
        f.chmod(0o666)
    command = [PGBOUNCER, str(home / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = home / "pgbouncer.log"
                    out = log.read_text() if log.exists() else ""
                    pytest.fail(f"pgbouncer did not start: {out}")
                time.sleep(0.05)
        url = target.set(drivername="postgresql", port=port, host="127.0.0.1")
        yield settings.model_copy(
            update={
                "database_url": url.render_as_string(hide_password=False),
                "database_pgbouncer": True,
            }
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def test_uploads_and_the_supervision_worker_run_through_pgbouncer_in_transaction_mode(
    bouncer: Settings, settings: Settings
) -> None:
    clock = FrozenClock()
    cred = make_credential(bouncer, clock, ORG_A)
    batch = records("patient", 24)
    with TestClient(create_exchange_app(bouncer, clock=clock)) as client:
        token = get_token(client, cred)
        # Many requests of the same shape: psycopg would prepare them by name after 5 runs.
        for i in range(12):
            r = client.post(
                "/uploadPatientFile",
                content=orjson.dumps(batch[2 * i : 2 * i + 2]),
                headers={"accessToken": token, "Content-Type": "application/json"},
            )
            assert r.status_code == 200 and r.json()["data"]["success"] == 2, r.text

    async def drain(db: Database) -> int:
        claimed = 0
        for _ in range(20):
            done = await run_once(db, settings=bouncer, clock=clock, worker="bouncer-test")
            claimed += done.claimed
            if done.claimed == 0 and claimed:
                break
        return claimed

    assert with_database(bouncer, drain) == 24

    # Read back directly from PostgreSQL, not through PgBouncer.
    engine = create_engine(settings.sync_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM record")).scalar() == 24
        assert conn.execute(text("SELECT count(*) FROM record_change")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM exchange_log")).scalar() == 13
    engine.dispose()


def test_without_the_setting_pgbouncer_refuses_the_connection(bouncer: Settings) -> None:
    plain = bouncer.model_copy(update={"database_pgbouncer": False})

    async def ping(db: Database) -> dict[str, object]:
        return await db.ping()

    assert with_database(plain, ping)["status"] == "error"  # "unsupported startup parameter"
    assert with_database(bouncer, ping)["status"] == "ok"
