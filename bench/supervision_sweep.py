"""``bench_supervision.py sweep`` (not a test): a million generated records stored with ``COPY``,
then full sweeps of every rule, timed, their CPU counted and their findings digested."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import random
import resource
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

import bench_ingest as bi
import supervision_data as sd
from supervision_data import BEIJING

COLS = (
    "institution_id, dataset, key, version, business_time, patient_id, patient_cert_id, "
    "doctor_cert_id, visit_no, dept_code, reviewer_cert_id, voided, data, created_at, "
    "updated_at, exchange_id"
)


def record_rows(
    world: dict[str, list[dict[str, Any]]], inst: int, rng: random.Random
) -> list[tuple[Any, ...]]:
    from imsp.exchange import codec
    from imsp.standard.model import load_standard

    std = load_standard()
    out = []
    xid = uuid.uuid4()
    for code, docs in world.items():
        ds = std.datasets[code]
        cols = ds.columns
        for doc in docs:
            doc = sd.mutate(code, doc, rng)
            bt_raw = doc.get(cols.get("business_time", ""), None)
            bt = None
            if isinstance(bt_raw, str) and bt_raw:
                bt = dt.datetime.fromisoformat(bt_raw if len(bt_raw) > 10 else bt_raw + " 00:00:00")
                bt = bt.replace(tzinfo=BEIJING)
            received = (bt or dt.datetime(2025, 6, 1, tzinfo=BEIJING)) + dt.timedelta(hours=1)

            def col(
                role: str, doc: dict[str, Any] = doc, cols: Mapping[str, str] = cols
            ) -> str | None:
                v = doc.get(cols[role]) if role in cols else None
                return v if isinstance(v, str) and v else None

            out.append(
                (
                    inst, code, "|".join(str(doc[k]) for k in ds.key), 1, bt,
                    col("patient_id"), col("patient_cert_id"), col("doctor_cert_id"),
                    col("visit_no"), col("dept_code"), col("reviewer_cert_id"), False,
                    codec.encode(doc),
                    received, received, xid,
                )
            )  # fmt: skip
    return out


def load(url: str, count: int, copies: int) -> int:
    from imsp.standard.sample import generate_all

    started = time.perf_counter()
    world = generate_all(count, seed=11, org_code=bi.ORG)
    print(
        f"generated {sum(len(v) for v in world.values())} records in {time.perf_counter() - started:.0f} s"
    )
    rng = random.Random(20251130)
    total = 0
    with psycopg.connect(url, autocommit=True) as conn:
        sd.register_partners(conn, world)
        for n in range(copies):
            org = bi.ORG if n == 0 else f"1213{n:04d}MB1A2B3C4R"[:18]
            inst = conn.execute(
                "INSERT INTO institution (org_code, name, created_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (org_code) DO UPDATE SET name = excluded.name RETURNING id",
                (org, f"基准测试医院 {n}"),
            ).fetchone()[0]  # type: ignore[index]
            rows = record_rows(world, inst, rng)
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY record ({COLS}) FROM STDIN") as cp,
            ):
                for row in rows:
                    cp.write_row(row)
            total += len(rows)
        conn.execute("ANALYZE record")
    return total


@dataclass
class SweepRun:
    jobs: int
    stats: Any
    seconds: float
    cpu: float  # CPU seconds of this process and the sweep's worker processes
    pg_cpu: float  # CPU seconds of every PostgreSQL process of the machine
    load: str  # load average before
    digest: str  # hash of the findings and pending checks written


@contextmanager
def sweep_database(args: argparse.Namespace) -> Iterator[str]:
    """A fresh database loaded by :func:`load`, or (``--database``) one a previous run of
    this benchmark loaded and kept (generating and loading a million records takes minutes)."""
    if args.database:
        yield args.database
        return
    with bi.fresh_database(args.admin_url) as url:
        bi.prepare(url)
        load(url, args.count, args.copies)
        yield url


def _forget(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE supervision_finding, supervision_finding_event, supervision_pending CASCADE"
        )


def digest(url: str) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT rule_id, institution_id, dataset, key, record_version, severity, status, "
            "evidence::text, records::text FROM supervision_finding ORDER BY 1, 2, 3, 4"
        ).fetchall()
        pending = conn.execute(
            "SELECT institution_id, dataset, key, checks::text, due_at "
            "FROM supervision_pending ORDER BY 1, 2, 3"
        ).fetchall()
    return hashlib.sha256(repr((rows, pending)).encode()).hexdigest()[:12]


def _rusage() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_sweep(url: str, batch: int, jobs: int = 1) -> SweepRun:
    from imsp.config import Settings
    from imsp.storage.db import Database
    from imsp.supervision.sweep import sweep

    _forget(url)
    load = bi.load_average()

    async def go() -> tuple[Any, float]:
        db = Database(Settings(database_url=url))
        try:
            t0 = time.perf_counter()
            stats = await sweep(
                db, now=dt.datetime(2025, 7, 15, 9, tzinfo=BEIJING),
                grace=dt.timedelta(hours=48), batch=batch, jobs=jobs,
            )  # fmt: skip
            return stats, time.perf_counter() - t0
        finally:
            await db.dispose()

    cpu0, pg = _rusage(), _PostgresCpu(url)
    with pg:
        stats, seconds = asyncio.run(go())
    cpu = _rusage() - cpu0
    return SweepRun(jobs, stats, seconds, cpu, pg.seconds, load, digest(url))


class _PostgresCpu:
    """CPU seconds of the PostgreSQL processes serving the benchmark's database (and the shared
    writer processes) while the block runs, re-listed every second so the connections the sweep
    opens (one database each per process with ``--jobs``) are counted from their start."""

    def __init__(self, url: str) -> None:
        self.url, self.seconds = url, 0.0
        self._stop = threading.Event()

    def _watch(self) -> None:
        watch = bi._Watch(os.getpid(), self.url)
        while not self._stop.wait(1.0):
            watch.refresh()
        self.seconds = watch.spent()["postgres"]

    def __enter__(self) -> _PostgresCpu:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
