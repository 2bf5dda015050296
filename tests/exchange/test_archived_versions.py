"""Versions that outlive their record's month: a record of an archived month that was corrected
after the month ended has later versions, stored in later months' ``record_version``. They stay
online, so its history stays reproducible — ``exchange show`` of the request that carried such a
version lists it, ``exchange trace`` shows every version still online and says which earlier
versions are in which archive file, ``exchange record`` shows the last version from its request.

Archiving is PostgreSQL's (``imsp db partitions archive``): the end-to-end test runs there. The
reads run on both databases: the second test builds by hand the state an archive leaves (the
record row and the archived month's version rows gone, ``archived_record`` and
``archived_partition`` written) on SQLite and PostgreSQL alike.

The months used (2021) are apart from the other tests' (2022 ``test_archived_keys``, 2023
``test_lookup_pruning``, 2024 ``test_partitions``, 2026 the frozen clock).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic import command
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.cli.main import cli
from imsp.clock import BEIJING, FrozenClock
from imsp.config import Settings
from imsp.exchange import history, partitions, queries
from imsp.standard.model import load_standard
from imsp.storage import migrate
from tests.exchange.builders import ORG_A, get_token, make_credential, records
from tests.exchange.conftest import Peek
from tests.support.database import run

PATIENT = load_standard().dataset("patient")


def _at(month: int, day: int = 10) -> datetime:
    return datetime(2021, month, day, 9, 0, tzinfo=BEIJING)


def _upload(settings: Settings, cred: IssuedCredential, at: datetime, batch: list[Any]) -> Any:
    with TestClient(create_exchange_app(settings, clock=FrozenClock(at))) as client:
        r = client.post(
            PATIENT.path,
            content=orjson.dumps(batch),
            headers={"accessToken": get_token(client, cred), "Content-Type": "application/json"},
        )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _key(doc: dict[str, Any]) -> str:
    return "|".join(str(doc[k]) for k in PATIENT.key)


def _fix(doc: dict[str, Any], n: int) -> dict[str, Any]:
    return {**doc, "address": f"北京市东城区更正{n}号"}


def _archive(settings: Settings, month: date, directory: Path) -> list[partitions.Archived]:
    conn = create_engine(settings.sync_url).connect()
    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        return partitions.archive(
            conn, url=settings.sync_url, month=month, directory=directory, keep=False,
            now=datetime.now(UTC),
        )  # fmt: skip
    finally:
        conn.close()
        conn.engine.dispose()


def _cli(settings: Settings, *args: str) -> Result:
    env = {
        "IMSP_DATABASE_URL": settings.database_url or "",
        "IMSP_DATA_DIR": str(settings.data_dir),
    }
    return CliRunner().invoke(cli, list(args), env=env)


def test_later_versions_of_an_archived_months_record_stay_shown_with_where_the_rest_went(
    settings: Settings, cred: IssuedCredential, peek: Peek, tmp_path: Path
) -> None:
    if settings.is_sqlite:
        pytest.skip("archiving detaches PostgreSQL partitions; SQLite keeps one table each")
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        partitions.ensure(conn, now=_at(3), ahead=0, months=[date(2021, m, 1) for m in range(3, 8)])
    engine.dispose()
    a, b, c = records(PATIENT, 3)
    _upload(settings, cred, _at(3), [a, b, c])
    _upload(settings, cred, _at(3, 20), [_fix(c, 1)])  # c: version 2, still in March
    april = _upload(settings, cred, _at(4), [_fix(a, 2)])  # a: version 2, in April
    _upload(settings, cred, _at(5), [_fix(a, 3)])  # a: version 3, in May
    [a_id] = peek.scalar("SELECT array_agg(id) FROM record WHERE key = :k", k=_key(a))

    done = _archive(settings, date(2021, 3, 1), tmp_path / "archive")
    where = {x.parent: x.location for x in done}
    # only a has versions after March: its identity is kept, b's and c's went with the month
    assert peek.rows("SELECT record_id, dataset, key, month, version FROM archived_record") == [
        (a_id, PATIENT.code, _key(a), date(2021, 3, 1), 3)
    ]
    assert peek.scalar("SELECT count(*) FROM record WHERE id = :i", i=a_id) == 0
    # a month archived before archived_record existed (migration 0055): recovered the same
    kept = peek.rows("SELECT * FROM archived_record")
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM archived_record"))
        assert partitions.recover_identities(conn) == 1
        assert partitions.recover_identities(conn) == 0  # once
    engine.dispose()
    assert peek.rows("SELECT * FROM archived_record") == kept
    assert (
        peek.scalar("SELECT count(*) FROM record_version WHERE record_id = :i", i=a_id) == 2
    )  # versions 2 and 3, in April and May

    # the request of April still lists the version it stored
    shown = run(
        settings,
        lambda s: history.show_exchange(
            s, exchange_id=uuid.UUID(april["exchangeId"]), now=datetime.now(UTC)
        ),
    )
    assert shown is not None
    assert [(v.key, v.version, v.current, v.archived_month) for v in shown.versions] == [
        (_key(a), 2, False, date(2021, 3, 1))
    ]
    out = _cli(settings, "exchange", "show", april["exchangeId"])
    assert out.exit_code == 0, out.output
    assert "记录行已归档（2021-03）" in out.output

    # the trace: versions 2 and 3 online, version 1 in March's record_version archive
    trace = run(
        settings,
        lambda s: history.trace_key(
            s, org_code=ORG_A, dataset=PATIENT, key=_key(a), with_content=True
        ),
    )
    assert [(t.version.version, t.version.archived_month) for t in trace.versions] == [
        (2, date(2021, 3, 1)),
        (3, date(2021, 3, 1)),
    ]
    assert [t.content is not None and t.content["address"] for t in trace.versions] == [
        _fix(a, 2)["address"],
        _fix(a, 3)["address"],
    ]
    assert [(g.first, g.last, [n.location for n in g.notes]) for g in trace.offline] == [
        (1, 1, [where["record_version"]])
    ]
    out = _cli(settings, "exchange", "trace", "patient", _key(a), "--org", ORG_A)
    assert out.exit_code == 0, out.output
    assert "版本 1 已归档" in out.output and where["record_version"] in out.output
    assert "记录（版本 1–3）的存储行" in out.output and where["record"] in out.output
    # its last version, re-read from the request that carried it
    out = _cli(settings, "exchange", "record", "patient", _key(a), "--org", ORG_A)
    assert out.exit_code == 0, out.output
    assert "版本 3" in out.output and "记录的存储行已归档" in out.output
    # b and c had no version after March: gone with it, as before
    for doc in (b, c):
        out = _cli(settings, "exchange", "trace", "patient", _key(doc), "--org", ORG_A)
        assert out.exit_code != 0 and "记录已归档" in out.output

    # April archived too: version 2 goes; the trace names both archives for versions 1–2
    done = _archive(settings, date(2021, 4, 1), tmp_path / "archive")
    april_versions = next(x.location for x in done if x.parent == "record_version")
    trace = run(
        settings,
        lambda s: history.trace_key(
            s, org_code=ORG_A, dataset=PATIENT, key=_key(a), with_content=False
        ),
    )
    assert [t.version.version for t in trace.versions] == [3]
    assert [(g.first, g.last, [n.location for n in g.notes]) for g in trace.offline] == [
        (1, 2, [where["record_version"], april_versions])
    ]

    # a sent again in June starts over (version 1); its history keeps the archived record's
    assert _upload(settings, cred, _at(6), [a])["results"][0]["msgCode"] == 200
    trace = run(
        settings,
        lambda s: history.trace_key(
            s, org_code=ORG_A, dataset=PATIENT, key=_key(a), with_content=False
        ),
    )
    assert [
        (t.version.version, t.version.current, t.version.archived_month) for t in trace.versions
    ] == [
        (3, False, date(2021, 3, 1)),
        (1, True, None),
    ]
    out = _cli(settings, "exchange", "record", "patient", _key(a), "--org", ORG_A)
    assert out.exit_code == 0 and "版本 1" in out.output and "已归档" not in out.output


def test_reads_show_online_versions_of_a_record_whose_row_was_archived(
    settings: Settings, cred: IssuedCredential, peek: Peek
) -> None:
    """The state ``imsp db partitions archive`` leaves for a record corrected after its month,
    made by hand (SQLite has no partitions to detach): the reads are the same on both."""
    [a] = records(PATIENT, 1)
    first = _upload(settings, cred, _at(3), [a])
    second = _upload(settings, cred, _at(4), [_fix(a, 2)])
    [(rid, inst)] = peek.rows("SELECT id, institution_id FROM record WHERE key = :k", k=_key(a))
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        # the March month archived: the record row and version 1 are in the dump
        conn.execute(text("DELETE FROM record WHERE id = :i"), {"i": rid})
        conn.execute(
            text("DELETE FROM record_version WHERE record_id = :i AND version = 1"), {"i": rid}
        )
        conn.execute(
            text(
                "INSERT INTO archived_record (record_id, institution_id, dataset, key, month,"
                " version) VALUES (:i, :inst, :ds, :k, :m, 2)"
            ),
            {"i": rid, "inst": inst, "ds": PATIENT.code, "k": _key(a), "m": date(2021, 3, 1)},
        )
        for parent in ("record", "record_version"):
            conn.execute(
                text(
                    "INSERT INTO archived_partition (parent, month, partition, rows, location,"
                    " sha256, kept, archived_at) VALUES (:p, :m, :n, 1, :loc, :sha, false, :at)"
                ),
                {"p": parent, "m": date(2021, 3, 1), "n": f"{parent}_m202103",
                 "loc": f"/backup/imsp.{parent}_m202103.dump", "sha": "0" * 64,
                 "at": datetime(2021, 5, 2, tzinfo=UTC)},
            )  # fmt: skip
    engine.dispose()

    assert (
        run(settings, lambda s: queries.versions_of_exchange(s, uuid.UUID(first["exchangeId"])))
        == []
    )
    [v] = run(settings, lambda s: queries.versions_of_exchange(s, uuid.UUID(second["exchangeId"])))
    assert (v.record_id, v.dataset, v.key, v.version, v.current, v.archived_month) == (
        rid, PATIENT.code, _key(a), 2, False, date(2021, 3, 1),
    )  # fmt: skip
    # the current record's history alone (the supervision viewer's) is unchanged: none
    assert (
        run(
            settings,
            lambda s: queries.record_history(s, org_code=ORG_A, dataset=PATIENT.code, key=_key(a)),
        )
        == []
    )
    trace = run(
        settings,
        lambda s: history.trace_key(
            s, org_code=ORG_A, dataset=PATIENT, key=_key(a), with_content=True
        ),
    )
    assert [(t.version.version, t.content and t.content["address"]) for t in trace.versions] == [
        (2, _fix(a, 2)["address"])
    ]
    assert [(g.first, g.last, [n.location for n in g.notes]) for g in trace.offline] == [
        (1, 1, ["/backup/imsp.record_version_m202103.dump"])
    ]
    last = run(
        settings,
        lambda s: history.last_online_version(s, org_code=ORG_A, dataset=PATIENT, key=_key(a)),
    )
    assert last is not None and last.version.version == 2
    assert last.content is not None and last.content["address"] == _fix(a, 2)["address"]
    out = _cli(settings, "exchange", "trace", "patient", _key(a), "--org", ORG_A)
    assert out.exit_code == 0, out.output
    assert (
        "版本 1 已归档" in out.output and "/backup/imsp.record_version_m202103.dump" in out.output
    )


def test_migration_0055_recovers_the_identities_of_months_archived_before_it(
    unmigrated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at 0051 whose March was archived by the archive as it was then (no
    ``archived_record``): upgrading fills it from the requests still online; downgrading drops
    it. On SQLite (nothing archived) the table is simply created."""
    cfg = migrate.alembic_config(unmigrated)
    unmigrated.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(cfg, "heads")
    command.downgrade(cfg, "0051")  # every other branch at its head, this table gone
    peek = Peek(unmigrated)
    assert "archived_record" not in inspect(peek.engine).get_table_names()
    cred = make_credential(unmigrated, FrozenClock(_at(3)), ORG_A)
    [a] = records(PATIENT, 1)
    _upload(unmigrated, cred, _at(3), [a])
    _upload(unmigrated, cred, _at(4), [_fix(a, 2)])
    [(rid,)] = peek.rows("SELECT id FROM record")
    if not unmigrated.is_sqlite:
        engine = create_engine(unmigrated.sync_url)
        with engine.begin() as conn:
            partitions.ensure(conn, now=_at(3), ahead=0, months=[date(2021, 4, 1)])
        engine.dispose()
        monkeypatch.setattr(partitions, "_keep_identities", lambda *args: None)  # as before 0055
        _archive(unmigrated, date(2021, 3, 1), tmp_path / "archive")
        monkeypatch.undo()
        assert peek.count("record") == 0

    command.upgrade(cfg, "heads")
    expected = [] if unmigrated.is_sqlite else [(rid, PATIENT.code, _key(a), date(2021, 3, 1), 2)]
    query = "SELECT record_id, dataset, key, month, version FROM archived_record"
    assert peek.rows(query) == expected
    command.downgrade(cfg, "0051")
    command.upgrade(cfg, "heads")
    assert peek.rows(query) == expected
    peek.engine.dispose()
