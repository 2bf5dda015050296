"""Monthly partitions on PostgreSQL (``imsp.exchange.partitions``): uploads of several months land
in their partitions, a correction in a later month stays on its key's row, and an archived
month is gone from every query — its trace says where it went — while nothing else changed.

The months used (2024) are far from the other tests' frozen clock (2026-01), so archiving them
here leaves the shared test database as the other tests expect it.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from imsp.app import create_exchange_app
from imsp.cli.main import cli
from imsp.clock import BEIJING, FrozenClock
from imsp.config import Settings
from imsp.exchange import history, partitions
from imsp.standard.model import load_standard
from imsp.supervision import records as supervision_records
from tests.exchange.builders import ORG_A, get_token, make_credential, records
from tests.exchange.conftest import Peek
from tests.support.database import run

PATIENT = load_standard().dataset("patient")
MONTHS = [datetime(2024, m, 10, 9, 0, tzinfo=BEIJING) for m in (3, 4, 5)]


@pytest.fixture
def pg(settings: Settings) -> Settings:
    if settings.is_sqlite:
        pytest.skip("partitions are a PostgreSQL feature; SQLite keeps one table each")
    return settings


def _upload(client: TestClient, token: str, batch: list[dict[str, Any]]) -> list[int]:
    r = client.post(
        PATIENT.path,
        content=orjson.dumps(batch),
        headers={"accessToken": token, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    return [x["msgCode"] for x in r.json()["data"]["results"]]


def _where(peek: Peek, table: str) -> dict[str, int]:
    rows = peek.rows(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
    return {name: n for name, n in rows}


def _snapshot(peek: Peek, month: str) -> tuple[list[Any], ...]:
    """Every row of the three tables outside ``month`` (YYYY-MM, Beijing), in a fixed order."""
    return (
        peek.rows(
            "SELECT id, key, version, data::text, month FROM record"
            " WHERE to_char(month, 'YYYY-MM') <> :m ORDER BY id",
            m=month,
        ),
        peek.rows(
            "SELECT record_id, version, exchange_id FROM record_version"
            " WHERE to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') <> :m ORDER BY 1, 2",
            m=month,
        ),
        peek.rows(
            "SELECT id, service, total FROM exchange_log"
            " WHERE to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') <> :m ORDER BY id",
            m=month,
        ),
        peek.rows("SELECT * FROM record_key WHERE to_char(month, 'YYYY-MM') <> :m", m=month),
    )


def test_months_land_in_partitions_and_an_archived_month_is_gone_with_a_note(
    pg: Settings, peek: Peek, tmp_path: Path
) -> None:
    clock = FrozenClock(MONTHS[0])
    cred = make_credential(pg, clock, ORG_A)
    batch = records(PATIENT, 6)
    engine = create_engine(pg.sync_url)
    with TestClient(create_exchange_app(pg, clock=clock)) as client:
        # March: the partition exists before the upload.
        with engine.begin() as conn:
            partitions.ensure(conn, now=MONTHS[0], ahead=0)
        assert _upload(client, get_token(client, cred), batch[:2]) == [200, 200]
        key = dict(
            peek.rows(
                "SELECT v.position, r.key FROM record r JOIN record_version v ON v.record_id = r.id"
            )
        )
        # April: no partition yet — the default partition catches the rows; creating the month
        # later moves them into it.
        clock.advance(days=31)
        assert _upload(client, get_token(client, cred), batch[2:4]) == [200, 200]
        assert _where(peek, "record")["record_default"] == 2
        with engine.begin() as conn:
            assert "record_m202404" in partitions.ensure(conn, now=MONTHS[1], ahead=1)
        # May: two new keys, and a correction of a March key (its row stays in March).
        clock.advance(days=30)
        corrected = {**batch[0], "patientName": batch[0]["patientName"] + "更正"}
        assert _upload(client, get_token(client, cred), [*batch[4:], corrected]) == [200, 200, 201]
    engine.dispose()

    assert _where(peek, "record") == {
        "record_m202403": 2,
        "record_m202404": 2,
        "record_m202405": 2,
    }
    assert _where(peek, "record_version") == {
        "record_version_m202403": 2,
        "record_version_m202404": 2,
        "record_version_m202405": 3,
    }
    assert _where(peek, "exchange_log")["exchange_log_m202405"] == 2  # token + upload
    assert peek.rows(
        "SELECT tableoid::regclass::text, version FROM record WHERE key = :k", k=key[0]
    ) == [("record_m202403", 2)]
    assert peek.count("record_key") == 6
    parents = {
        child: parent
        for child, parent in peek.rows(
            "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits"
        )
    }
    assert parents["record_m202404"] == "record" and parents["exchange_log_m202403"] == (
        "exchange_log"
    )

    # Archive March: detached, dumped, dropped — never DELETE.
    before = _snapshot(peek, "2024-03")
    march_ids = [i for (i,) in peek.rows("SELECT id FROM record WHERE month = '2024-03-01'")]
    conn = create_engine(pg.sync_url).connect().execution_options(isolation_level="AUTOCOMMIT")
    done = partitions.archive(
        conn,
        url=pg.sync_url,
        month=MONTHS[0].date().replace(day=1),
        directory=tmp_path,
        keep=False,
        now=datetime.now(UTC),
    )
    conn.close()
    conn.engine.dispose()
    assert [(a.parent, a.rows) for a in done] == [
        ("record", 2),
        ("record_version", 2),
        ("exchange_log", 2),  # the token request and the upload
    ]
    for a in done:
        listing = subprocess.run(
            ["pg_restore", "--list", a.location], capture_output=True, text=True, check=True
        ).stdout
        assert a.partition in listing
    assert _snapshot(peek, "2024-03") == before  # nothing else changed
    assert "record_m202403" not in _where(peek, "record")
    assert peek.scalar("SELECT count(*) FROM record WHERE id = ANY(:ids)", ids=march_ids) == 0
    assert peek.scalar("SELECT to_regclass('record_m202403')") is None

    # The trace of an archived record says so, with where and when.
    ds = PATIENT
    traced = run(
        pg,
        lambda s: history.trace_record(
            s, org_code=ORG_A, dataset=ds, key=key[1], with_content=False
        ),
    )
    assert traced == []
    note = run(pg, lambda s: history.archived_record(s, org_code=ORG_A, dataset=ds, key=key[1]))
    assert note is not None and note.location == done[0].location
    assert "2024-03" in note.text() and done[0].location in note.text()
    by_id = run(pg, lambda s: supervision_records.archived_note(s, record_id=march_ids[0]))
    assert by_id is not None and by_id.month == note.month
    env = {"IMSP_DATABASE_URL": pg.database_url or "", "IMSP_DATA_DIR": str(pg.data_dir)}
    out = CliRunner().invoke(
        cli,
        ["exchange", "trace", "patient", key[1], "--org", ORG_A],
        env=env,
    )
    assert out.exit_code != 0 and "已归档" in out.output and "2024-03" in out.output
    listed = CliRunner().invoke(cli, ["db", "partitions", "list"], env=env)
    assert listed.exit_code == 0 and "已归档" in listed.output and "record_m202404" in listed.output

    # A record of an archived month sent again starts over in the current month.
    clock2 = FrozenClock(datetime(2024, 5, 20, 9, 0, tzinfo=BEIJING))
    with TestClient(create_exchange_app(pg, clock=clock2)) as client:
        assert _upload(client, get_token(client, cred), [batch[1]]) == [200]
    assert peek.rows(
        "SELECT tableoid::regclass::text, version FROM record WHERE key = :k", k=key[1]
    ) == [("record_m202405", 1)]


def test_archiving_a_month_that_has_not_ended_is_refused(pg: Settings, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    conn = create_engine(pg.sync_url).connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(partitions.ArchiveError, match="尚未结束"):
            partitions.archive(
                conn,
                url=pg.sync_url,
                month=partitions.month_of(now),
                directory=tmp_path,
                keep=False,
                now=now,
            )
    finally:
        conn.close()
        conn.engine.dispose()
    assert not any(tmp_path.iterdir())


def test_month_arithmetic() -> None:
    from datetime import date

    assert partitions.add_months(date(2024, 11, 1), 3) == date(2025, 2, 1)
    assert partitions.month_of(datetime(2024, 2, 29, 16, 30, tzinfo=UTC)) == date(2024, 3, 1)
    assert partitions.parse_month("2024-07") == date(2024, 7, 1)
    with pytest.raises(ValueError):
        partitions.parse_month("2024-13")
    assert partitions.is_partition("record_version_m202401")
    assert not partitions.is_partition("record_key")
