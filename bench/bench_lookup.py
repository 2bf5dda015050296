"""Benchmark: looking a request up by its exchange id with years of monthly partitions (not a
test).

    .venv/bin/python bench/bench_lookup.py [--months 120] [--per-month 2000] [--lookups 300]

1. creates a fresh PostgreSQL database (dropped at the end), migrates it, and creates
   ``--months`` monthly partitions of ``exchange_log`` back from the current month (120: ten
   years of a province's uploads);
2. fills each month with ``--per-month`` log rows whose ids are made as the server makes them
   (``archive.new_exchange_id`` of the row's ``at``), then ``VACUUM ANALYZE``;
3. looks ``--lookups`` random ids up two ways, interleaved, each planned afresh as a one-off
   lookup is (no prepared statement): *by id only* — how every lookup ran before — and *by id
   and its window* — ``imsp.exchange.queries`` now (``archive.id_window``);
4. reports the partitions each plan reads and the time of a lookup (client round trip on
   loopback), and PostgreSQL's own planning and execution times (``EXPLAIN ANALYZE``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import fresh_database  # noqa: E402

OLD = "SELECT id, at, code FROM exchange_log WHERE id = %(id)s"
NEW = "SELECT id, at, code FROM exchange_log WHERE id = %(id)s AND at >= %(lo)s AND at < %(hi)s"


def _fill(conn: psycopg.Connection[Any], url: str, months: int, per_month: int) -> list[uuid.UUID]:
    from imsp.exchange import archive, partitions

    now = datetime.now(UTC)
    first = partitions.add_months(partitions.month_of(now), -(months - 1))
    wanted = [partitions.add_months(first, n) for n in range(months)]
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as sa_conn:
        partitions.ensure(sa_conn, now=now, ahead=0, months=wanted)
    engine.dispose()
    ids: list[uuid.UUID] = []
    rng = random.Random(15)
    for month in wanted:
        start = datetime(month.year, month.month, 1, tzinfo=UTC) - timedelta(hours=8)
        span = (partitions.add_months(month, 1) - month).days * 86400 - 1
        ats = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(per_month))
        batch = [archive.new_exchange_id(at) for at in ats]
        ids += batch
        conn.execute(
            "INSERT INTO exchange_log (id, at, app_id, service, dataset, client_addr, size, code,"
            " total, success, fail, latency_ms, dry_run, atomic, channel, chunked)"
            " SELECT i, a, 'app', 'uploadPrescriptionInfo', 'prescription', '10.0.0.1', 2300,"
            " 200, 1, 1, 0, 5.0, false, false, 'production', false"
            " FROM unnest(%(ids)s::uuid[], %(ats)s::timestamptz[]) AS t(i, a)",
            {"ids": batch, "ats": ats},
        )
    conn.execute("VACUUM ANALYZE exchange_log")
    return ids


def _params(xid: uuid.UUID) -> dict[str, Any]:
    from imsp.exchange import archive

    window = archive.id_window(xid)
    assert window is not None
    return {"id": xid, "lo": window[0], "hi": window[1]}


def _plan(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]
) -> tuple[int, float, float]:
    """(partitions read, planning ms, execution ms) of ``sql`` by ``EXPLAIN ANALYZE``."""
    found = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
    assert found is not None
    plan = found[0][0]
    names: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            names.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return len(names), float(plan["Planning Time"]), float(plan["Execution Time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--months", type=int, default=120)
    parser.add_argument("--per-month", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=300)
    args = parser.parse_args()

    from imsp.config import Settings
    from imsp.storage import migrate

    with fresh_database(args.admin_url) as url:
        migrate.upgrade(Settings(database_url=url))
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
            t0 = time.perf_counter()
            ids = _fill(conn, dsn, args.months, args.per_month)
            print(f"filled {len(ids):,} log rows in {args.months} months"
                  f" ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
            rng = random.Random(1)
            chosen = rng.sample(ids, args.lookups)
            took: dict[str, list[float]] = {"old": [], "new": []}
            plans: dict[str, list[tuple[int, float, float]]] = {"old": [], "new": []}
            for n, xid in enumerate(chosen):
                order = ("old", "new") if n % 2 == 0 else ("new", "old")
                for way in order:
                    sql = OLD if way == "old" else NEW
                    params = _params(xid)
                    t = time.perf_counter()
                    row = conn.execute(sql, params).fetchone()
                    took[way].append(time.perf_counter() - t)
                    assert row is not None and row[0] == xid
                    if n < 50:
                        plans[way].append(_plan(conn, sql, params))
    print(f"\n{args.lookups} lookups each, interleaved; EXPLAIN ANALYZE of the first 50\n")
    print("| lookup | partitions read | round trip p50 | p95 | planning (PostgreSQL) | execution |")
    print("|---|---|---|---|---|---|")
    for way, label in (("old", "by id only (before)"), ("new", "by id + its window (now)")):
        ms = sorted(x * 1000 for x in took[way])
        parts = statistics.mean(p[0] for p in plans[way])
        planning = statistics.mean(p[1] for p in plans[way])
        execution = statistics.mean(p[2] for p in plans[way])
        print(
            f"| {label} | {parts:.0f} | {ms[len(ms) // 2]:.2f} ms | {ms[int(len(ms) * 0.95)]:.2f} ms"
            f" | {planning:.2f} ms | {execution:.3f} ms |"
        )


if __name__ == "__main__":
    main()
