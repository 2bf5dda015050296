"""Benchmark: bytes on disk per stored record on PostgreSQL (not a test).

    .venv/bin/python bench/bench_storage.py [--records 20000] [--batch 500] [--replace 0.1]

1. creates a fresh PostgreSQL database (dropped at the end), migrates it, creates a credential;
2. pushes ``--records`` generated prescriptions (``imsp.standard.sample``, 处方, distinct keys,
   distinct patients, doctors and times) through the real exchange app in-process (the real
   writer, the same statement as production) in ``--batch``-record uploads, then sends
   ``--replace`` of them again with one field changed (a correction: a second version);
3. ``VACUUM ANALYZE``, then reports ``pg_total_relation_size`` (heap + TOAST + every index,
   summed over the partitions of a partitioned table) of each table the upload path writes,
   divided by the records stored, next to the JSON bytes received per record.

The JSON received is what the hospital sent: the request bodies' bytes, divided by records.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import ORG, fresh_database, prepare  # noqa: E402

TABLES = ("record", "record_version", "record_key", "exchange_log", "record_change")


def _size(conn: psycopg.Connection[Any], table: str) -> int:
    """Heap + TOAST + indexes of ``table``, summed over its partitions if it has any."""
    row = conn.execute(
        "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(relid))"
        " FROM pg_partition_tree(c.oid)) ELSE pg_total_relation_size(c.oid) END::bigint"
        " FROM pg_class c WHERE c.oid = to_regclass(%s)",
        (table,),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _breakdown(conn: psycopg.Connection[Any], table: str) -> tuple[int, int, int]:
    """(heap, TOAST with its index, indexes) bytes of ``table`` over its partitions."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint,"
        " coalesce(sum(CASE WHEN c.reltoastrelid <> 0"
        " THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END), 0)::bigint,"
        " coalesce(sum(pg_indexes_size(c.oid)), 0)::bigint"
        " FROM pg_class c WHERE c.oid = to_regclass(%s)"
        " OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(%s)))",
        (table, table),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _backend_cpu(libpq: str, database: str) -> float:
    """CPU seconds used so far by the client backends connected to ``database`` (``/proc``)."""
    with psycopg.connect(libpq, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'",
                (database,),
            ).fetchall()
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--replace", type=float, default=0.1)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from imsp.app import create_exchange_app
    from imsp.config import Settings
    from imsp.standard.sample import generate

    recs = generate("prescription", min(args.records, 5000), seed=7, org_code=ORG)
    with fresh_database(args.admin_url) as url:
        app_id, secret = prepare(url)
        settings = Settings(database_url=url)
        received = 0
        stored = 0
        started = time.perf_counter()
        with TestClient(create_exchange_app(settings)) as client:
            token = client.get(
                "/auth/accesstoken/create", params={"appId": app_id, "appSecret": secret}
            ).json()["data"]["accessToken"]

            def send(batch: list[dict[str, Any]]) -> int:
                body = orjson.dumps(batch)
                r = client.post(
                    "/uploadPrescriptionInfo",
                    content=body,
                    headers={"accessToken": token, "Content-Type": "application/json"},
                )
                data = r.json()["data"]
                assert r.status_code == 200 and data["fail"] == 0, r.text[:300]
                nonlocal received
                received += len(body)
                return int(data["success"])

            libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            database = make_url(url).database or ""
            stored += send([dict(recs[0], recipeID="WARM-UP")])  # opens the writer's pool
            cpu0, wall0 = _backend_cpu(libpq, database), time.perf_counter()
            own0 = time.process_time()
            for n in range(0, args.records, args.batch):
                batch = [
                    dict(recs[(n + i) % len(recs)], recipeID=f"B-{n + i:09d}")
                    for i in range(min(args.batch, args.records - n))
                ]
                stored += send(batch)
            own_cpu = time.process_time() - own0
            insert_cpu = _backend_cpu(libpq, database) - cpu0
            insert_wall = time.perf_counter() - wall0
            replaced = int(args.records * args.replace)
            for n in range(0, replaced, args.batch):
                batch = [
                    dict(
                        recs[(n + i) % len(recs)],
                        recipeID=f"B-{n + i:09d}",
                        allergyInfo="青霉素过敏（更正）",
                    )
                    for i in range(min(args.batch, replaced - n))
                ]
                send(batch)
        elapsed = time.perf_counter() - started
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            sizes = {t: _size(conn, t) for t in TABLES}
            parts_of = {t: _breakdown(conn, t) for t in TABLES}
            toast = conn.execute(
                "SELECT coalesce(sum(pg_column_size(data)), 0) FROM record"
            ).fetchone()
            body = conn.execute(
                "SELECT coalesce(sum(pg_column_size(body)), 0), coalesce(sum(octet_length(body)), 0)"
                " FROM exchange_log WHERE body IS NOT NULL"
            ).fetchone()
            server = conn.execute("SHOW server_version").fetchone()
            versions = conn.execute("SELECT count(*) FROM record_version").fetchone()
            # What a month costs once archived: the dump `imsp db partitions archive` writes
            # (pg_dump custom format, compressed), of every partition holding these rows.
            parts = [
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent IN ('record'::regclass, 'record_version'::regclass,"
                    " 'exchange_log'::regclass) AND c.reltuples > 0"
                ).fetchall()
            ]
        dumped = 0
        with tempfile.TemporaryDirectory() as tmp:
            for name in parts:
                target = Path(tmp) / f"{name}.dump"
                subprocess.run(
                    ["pg_dump", "--dbname", libpq, "--format=custom", "--compress=9",
                     "--table", f"public.{name}", "--file", str(target)],
                    check=True,
                )  # fmt: skip
                dumped += target.stat().st_size
    total = sum(sizes.values())
    print(f"version rows: {versions[0] if versions else 0:,}")
    print(f"PostgreSQL {server[0] if server else '?'}; pid {os.getpid()}; {elapsed:.1f} s")
    print(
        f"records stored: {stored:,}; replaced (second version): {replaced:,}; "
        f"JSON received: {received / stored:,.0f} B per record (all requests, incl. replacements)"
    )
    inserted = args.records
    print(
        f"first versions: {inserted / insert_wall:,.0f} records/s in-process (wall); PostgreSQL "
        f"client backends {insert_cpu * 1e6 / inserted:,.1f} µs CPU per record; this process "
        f"(test client, the exchange app, its writer) {own_cpu * 1e6 / inserted:,.1f} µs"
    )
    print(f"{'table':<16} {'bytes':>14} {'B/record':>10} {'heap':>7} {'TOAST':>7} {'indexes':>7}")
    for t, b in sizes.items():
        heap, toast_b, idx = (x / stored for x in parts_of[t])
        print(f"{t:<16} {b:>14,} {b / stored:>10,.0f} {heap:>7,.0f} {toast_b:>7,.0f} {idx:>7,.0f}")
    print(f"{'total':<16} {total:>14,} {total / stored:>10,.0f}")
    if parts:
        print(
            f"archived (pg_dump of {', '.join(sorted(parts))}): {dumped:,} bytes = "
            f"{dumped / stored:,.0f} B/record"
        )
    if toast and body:
        print(
            f"record.data as stored (pg_column_size): {toast[0] / stored:,.0f} B/record; "
            f"exchange_log.body stored {body[0] / stored:,.0f} B/record of {body[1] / stored:,.0f} B sent"
        )


if __name__ == "__main__":
    main()
