"""The change feed (``record_change``): written with the records by both writers, in the same unit
of work; claimed with a lease, acknowledged, claimable again when a lease runs out."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.service import IssuedCredential
from imsp.config import Settings
from imsp.errors import ImspError
from imsp.exchange import changes
from imsp.exchange.archive import new_exchange_id
from imsp.exchange.pg_writer import PgWriter
from imsp.exchange.sqlite_writer import SqliteWriter
from imsp.exchange.writer import Batch, LogEntry, Writer
from imsp.storage.db import Database
from tests.exchange.builders import ORG_A, record, records
from tests.exchange.conftest import Peek
from tests.exchange.test_upload import codes, post
from tests.support.database import run, with_database

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def feed(peek: Peek) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in peek.rows(
            "SELECT c.dataset, c.business_key, c.version, c.record_id = r.id, "
            "c.institution_id = r.institution_id FROM record_change c "
            "JOIN record r ON r.dataset = c.dataset AND r.key = c.business_key ORDER BY c.id"
        )
    ]


def test_new_and_updated_records_enter_the_feed_unchanged_resends_do_not(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    batch = records("consult", 3)
    assert codes(post(exchange_client, "/uploadConsult", batch, auth)) == [200] * 3
    keys = [k for (_, k) in peek.rows("SELECT id, key FROM record ORDER BY id")]
    assert feed(peek) == [("consult", k, 1, True, True) for k in keys]

    changed = [batch[0], {**batch[1], "answerContent": "建议复诊"}, batch[2]]
    assert codes(post(exchange_client, "/uploadConsult", changed, auth)) == [201] * 3
    assert feed(peek)[3:] == [("consult", keys[1], 2, True, True)]
    assert peek.count("record_change") == 4
    assert peek.count("record_version") == 4


def test_dry_runs_and_failed_atomic_batches_add_nothing_to_the_feed(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    post(exchange_client, "/uploadLis", records("lis", 2), auth, dryRun="true")
    bad = [*records("lis", 2, start=2), record("lis", n=4, organID="bad")]
    post(exchange_client, "/uploadLis", bad, auth, atomic="true")
    assert peek.count("record") == 0
    assert peek.count("record_change") == 0
    assert peek.count("exchange_log") == 3  # token + 2 uploads, all logged


def _writer(settings: Settings, db: Database) -> Writer:
    if db.dialect == "postgresql":
        return PgWriter(settings.sqlalchemy_url)
    return SqliteWriter(db)


def _store(settings: Settings, institution_id: int, keys: list[str]) -> None:
    """Store one batch straight through the writer of ``settings``' database."""

    async def work(db: Database) -> None:
        writer = _writer(settings, db)
        rows = [{"i": i, "k": k, "vd": False, "d": {"k": k}} for i, k in enumerate(keys)]
        entry = LogEntry(
            new_exchange_id(NOW), NOW, institution_id, "app", "uploadLis", "lis", "", 0, None, 200
        )
        try:
            await writer.store(
                Batch(institution_id, "lis", "app", rows), log=entry, started=time.perf_counter()
            )
        finally:
            await writer.close()

    with_database(settings, work)


def test_a_failed_write_leaves_neither_records_nor_changes(
    settings: Settings, cred: IssuedCredential, peek: Peek
) -> None:
    institution = peek.scalar("SELECT id FROM institution WHERE org_code = :o", o=ORG_A)
    _store(settings, institution, ["a", "b"])
    assert peek.count("record_change") == 2
    # An unknown institution breaks the record's foreign key: the whole write is undone —
    # on PostgreSQL the key is checked after every CTE of the statement (the change rows
    # included) has run.
    with pytest.raises(ImspError):
        _store(settings, institution + 999, ["c", "d"])
    assert peek.count("record") == 2
    assert peek.count("record_change") == 2
    assert peek.count("record_version") == 2


def _seed(peek: Peek, settings: Settings, cred: IssuedCredential, n: int) -> None:
    institution = peek.scalar("SELECT id FROM institution WHERE org_code = :o", o=ORG_A)
    _store(settings, institution, [f"k{i}" for i in range(n)])


def test_claim_leases_oldest_first_and_ack_deletes(
    settings: Settings, cred: IssuedCredential, peek: Peek
) -> None:
    _seed(peek, settings, cred, 5)

    async def first(s: AsyncSession) -> list[changes.Change]:
        return await changes.claim(s, worker="w1", limit=3, now=NOW, lease=LEASE)

    got = run(settings, first)
    assert [c.business_key for c in got] == ["k0", "k1", "k2"]
    assert all(c.dataset == "lis" and c.version == 1 and c.stored_at == NOW for c in got)

    async def second(s: AsyncSession) -> list[changes.Change]:
        return await changes.claim(s, worker="w2", limit=10, now=NOW + LEASE / 2, lease=LEASE)

    assert [c.business_key for c in run(settings, second)] == ["k3", "k4"]

    async def ack_and_depth(s: AsyncSession) -> int:
        await changes.ack(s, [c.id for c in got])
        return await changes.depth(s)

    assert run(settings, ack_and_depth) == 2
    assert peek.rows("SELECT business_key, claimed_by FROM record_change ORDER BY id") == [
        ("k3", "w2"),
        ("k4", "w2"),
    ]


def test_an_expired_lease_makes_changes_claimable_again(
    settings: Settings, cred: IssuedCredential, peek: Peek
) -> None:
    _seed(peek, settings, cred, 2)

    def claim(worker: str, at: datetime) -> list[str]:
        async def work(s: AsyncSession) -> list[changes.Change]:
            return await changes.claim(s, worker=worker, limit=10, now=at, lease=LEASE)

        return [c.business_key for c in run(settings, work)]

    assert claim("crashed", NOW) == ["k0", "k1"]
    assert claim("other", NOW + LEASE - timedelta(seconds=1)) == []
    assert claim("other", NOW + LEASE) == ["k0", "k1"]
    assert peek.rows("SELECT DISTINCT claimed_by FROM record_change") == [("other",)]


def test_concurrent_claimers_never_get_the_same_change(
    settings: Settings, cred: IssuedCredential, peek: Peek
) -> None:
    if settings.sqlalchemy_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers; row locks are PostgreSQL's")
    _seed(peek, settings, cred, 40)

    async def work(db: Database) -> list[list[int]]:
        async def claimer(name: str) -> list[int]:
            got: list[int] = []
            while True:
                async with db.session() as s:
                    batch = await changes.claim(s, worker=name, limit=3, now=NOW, lease=LEASE)
                    await asyncio.sleep(0.005)  # hold the row locks while the other claims
                if not batch:
                    return got
                got += [c.id for c in batch]

        return list(await asyncio.gather(*(claimer(f"w{n}") for n in range(3))))

    claimed = with_database(settings, work)
    flat = [i for ids in claimed for i in ids]
    assert len(flat) == len(set(flat)) == 40
    assert all(claimed), "every claimer got some work"
