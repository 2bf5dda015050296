"""Records whose month was archived and that hospitals send again (PostgreSQL: partitions exist
only there). Each is stored — once, in the current month, as a new record (version 1), never
called unchanged — and its trace says that its earlier versions were archived; also while the
archive is being made (between the detach and the end of the dump), and when a dump fails.

The months used (2022) are apart from the other tests' (2024 in ``test_partitions``, 2023 in
``test_lookup_pruning``, 2026 for the frozen clock): archiving them leaves the shared test
database as the others expect it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.cli.main import cli
from imsp.clock import BEIJING, FrozenClock
from imsp.config import Settings
from imsp.exchange import history, partitions
from imsp.standard.model import load_standard
from tests.exchange.builders import ORG_A, get_token, records
from tests.exchange.conftest import Peek
from tests.support.database import run

PATIENT = load_standard().dataset("patient")


def _at(month: int, day: int = 10) -> datetime:
    return datetime(2022, month, day, 9, 0, tzinfo=BEIJING)


@pytest.fixture
def pg(settings: Settings) -> Settings:
    if settings.is_sqlite:
        pytest.skip("partitions are a PostgreSQL feature; SQLite keeps one table each")
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        partitions.ensure(
            conn, now=_at(6), ahead=0, months=[date(2022, m, 1) for m in range(6, 12)]
        )
    engine.dispose()
    return settings


def _upload(pg: Settings, cred: IssuedCredential, at: datetime, batch: list[Any]) -> list[int]:
    with TestClient(create_exchange_app(pg, clock=FrozenClock(at))) as client:
        r = client.post(
            PATIENT.path,
            content=orjson.dumps(batch),
            headers={"accessToken": get_token(client, cred), "Content-Type": "application/json"},
        )
    assert r.status_code == 200, r.text
    return [x["msgCode"] for x in r.json()["data"]["results"]]


def _key(doc: dict[str, Any]) -> str:
    return "|".join(str(doc[k]) for k in PATIENT.key)


def _archive(pg: Settings, month: date, directory: Path) -> list[partitions.Archived]:
    conn = create_engine(pg.sync_url).connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        return partitions.archive(
            conn, url=pg.sync_url, month=month, directory=directory, keep=False,
            now=datetime.now(UTC),
        )  # fmt: skip
    finally:
        conn.close()
        conn.engine.dispose()


@pytest.fixture
def held_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """``pg_dump`` that waits for a signal before dumping: the archive stays between the detach
    and the end of its dump for as long as the test needs. Yields (started, go) files."""
    real = shutil.which("pg_dump")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started, go = tmp_path / "started", tmp_path / "go"
    wrapper = bin_dir / "pg_dump"
    wrapper.write_text(
        f'#!/bin/sh\ntouch "{started}"\nwhile [ ! -e "{go}" ]; do sleep 0.05; done\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}")
    yield started, go
    go.touch()


def test_records_sent_again_while_their_month_is_being_archived_start_over_once(
    pg: Settings, cred: IssuedCredential, peek: Peek, tmp_path: Path, held_dump: tuple[Path, Path]
) -> None:
    batch = records(PATIENT, 4)
    assert _upload(pg, cred, _at(9), batch[:3]) == [200, 200, 200]
    corrected = {**batch[0], "patientName": batch[0]["patientName"] + "更正"}
    assert _upload(pg, cred, _at(10), [corrected]) == [201]  # version 2, in October

    started, go = held_dump
    done: list[partitions.Archived] = []
    worker = threading.Thread(
        target=lambda: done.extend(_archive(pg, date(2022, 9, 1), tmp_path / "archive"))
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not started.exists():  # September is detached; its dump has not been made
            assert time.monotonic() < deadline and worker.is_alive(), "the archive did not start"
            time.sleep(0.05)
        changed = {**batch[2], "address": "河北省石家庄市新华区"}
        # sent again, unchanged and changed, and a new key: each is stored as new
        assert _upload(pg, cred, _at(11), [batch[1], changed, batch[3]]) == [200, 200, 200]
    finally:
        go.touch()
        worker.join(60)
    assert [(a.parent, a.rows) for a in done] == [
        ("record", 3),
        ("record_version", 3),
        ("exchange_log", 2),  # the token request and the upload
    ]

    # nothing was written with the archived month: no row in the default partition
    assert peek.count("record_default") == 0
    for doc in (batch[1], changed):
        assert peek.rows(
            "SELECT tableoid::regclass::text, version FROM record WHERE key = :k", k=_key(doc)
        ) == [("record_m202211", 1)]
        assert peek.rows(
            "SELECT month, archived_month FROM record_key WHERE key = :k", k=_key(doc)
        ) == [(date(2022, 11, 1), date(2022, 9, 1))]
    assert peek.rows(
        "SELECT month, archived_month FROM record_key WHERE key = :k", k=_key(batch[3])
    ) == [(date(2022, 11, 1), None)]
    assert peek.scalar("SELECT count(*) FROM record WHERE key = :k", k=_key(batch[0])) == 0

    # the trace: the version stored since, and where the earlier ones went
    traced = run(
        pg,
        lambda s: history.trace_record(
            s, org_code=ORG_A, dataset=PATIENT, key=_key(batch[1]), with_content=True
        ),
    )
    assert [(t.version.version, t.version.current) for t in traced] == [(1, True)]
    assert traced[0].content is not None
    note = run(
        pg,
        lambda s: history.archived_record(s, org_code=ORG_A, dataset=PATIENT, key=_key(batch[1])),
    )
    assert note is not None and note.month == date(2022, 9, 1)
    assert note.location == done[0].location
    env = {"IMSP_DATABASE_URL": pg.database_url or "", "IMSP_DATA_DIR": str(pg.data_dir)}
    out = CliRunner().invoke(
        cli, ["exchange", "trace", "patient", _key(batch[1]), "--org", ORG_A], env=env
    )
    assert out.exit_code == 0, out.output
    assert "更早的版本已归档" in out.output and "2022-09" in out.output
    # batch[0]'s record row went with September, but its correction (version 2, October) is
    # online: shown, and version 1 named with September's archive
    archived = CliRunner().invoke(
        cli, ["exchange", "trace", "patient", _key(batch[0]), "--org", ORG_A], env=env
    )
    assert archived.exit_code == 0, archived.output
    assert "记录行已归档（2022-09）" in archived.output and "版本 1 已归档" in archived.output
    assert done[1].location in archived.output  # record_version's September dump
    gone = CliRunner().invoke(
        cli, ["exchange", "trace", "patient", _key(batch[2]), "--org", ORG_A], env=env
    )
    assert gone.exit_code == 0 and "更早的版本已归档（此后重新上报" in gone.output

    # from now on, an unchanged resend is unchanged again
    assert _upload(pg, cred, _at(11, 20), [batch[1]]) == [201]
    assert peek.scalar("SELECT count(*) FROM record WHERE key = :k", k=_key(batch[1])) == 1


def test_a_failed_dump_keeps_the_month_archived_and_a_second_run_finishes_it(
    pg: Settings,
    cred: IssuedCredential,
    peek: Peek,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = records(PATIENT, 2, start=4)
    assert _upload(pg, cred, _at(6), batch) == [200, 200]
    real = shutil.which("pg_dump")
    assert real is not None
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump: disk full' >&2\nexit 1\n")
    (broken / "pg_dump").chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}:{Path(real).parent}")

    with pytest.raises(partitions.ArchiveError, match="已记为归档") as failed:
        _archive(pg, date(2022, 6, 1), tmp_path / "archive")
    assert "disk full" in str(failed.value) and "2022-06" in str(failed.value)
    # the month counts as archived; its detached table is kept, with every row
    assert peek.rows(
        "SELECT rows, sha256 FROM archived_partition WHERE parent = 'record'"
        " AND month = '2022-06-01'"
    ) == [(2, None)]
    assert peek.scalar("SELECT count(*) FROM record_m202206") == 2
    assert peek.scalar("SELECT count(*) FROM record WHERE key = :k", k=_key(batch[0])) == 0
    # a resend meanwhile starts over in the current month: stored, once
    assert _upload(pg, cred, _at(7), [batch[0]]) == [200]
    assert peek.rows(
        "SELECT tableoid::regclass::text FROM record WHERE key = :k", k=_key(batch[0])
    ) == [("record_m202207",)]

    monkeypatch.setenv("PATH", str(Path(real).parent))
    done = _archive(pg, date(2022, 6, 1), tmp_path / "archive")
    assert [(a.parent, a.rows) for a in done] == [
        ("record", 2),
        ("record_version", 2),
        ("exchange_log", 2),
    ]
    assert all(a.sha256 for a in done)
    assert peek.scalar("SELECT to_regclass('record_m202206')") is None
    assert _archive(pg, date(2022, 6, 1), tmp_path / "archive") == []  # done: nothing left
