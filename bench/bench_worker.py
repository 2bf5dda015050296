"""Benchmark: the supervision worker's CPU per change on PostgreSQL (not a test).

    .venv/bin/python bench/bench_worker.py fill [--shape a,b,c] [--count 6000] [--world 300]
        [--copies 32] [--lanes 16]
    .venv/bin/python bench/bench_worker.py run  [--shape a,b,c] [--code new=src,old=/tmp/main/src]
        [--mode worker,sweep] [--rounds 8] [--batch 500] [--limit 0] [--repeat 2] [--profile DIR]

``fill`` makes one template database per data shape, filled with real uploads through the
exchange's own code (``imsp.exchange.ingest.ingest`` with the PostgreSQL writer, 100 records an
upload, every record leaving its change in the feed), and keeps it:

* ``a`` — ``--count`` prescriptions alone (``imsp.standard.sample``, June 2025), each with a new
  prescription and visit number: no patient, doctor, department, organization, visit or items
  ever arrive, and the business dates are past, so every change leaves a pending check (12
  rules wait) and raises R45 (T+1). What the ingest benchmark's single-record stream sends, so
  the worker's cost in ``bench_supervision.py ingest``.
* ``b`` — a whole sample world (``--world`` objects per dataset, every dataset, ~16 records per
  object) with business times from today on, uploaded in dependency order (base data first),
  ~1 % of the business records mutated to break a rule (``supervision_data.mutate``).
* ``c`` — the realistic stream of ``bench_supervision.py ingest --data world`` as the worker
  meets it when behind: ``--copies`` renamed copies of one small world (``world_of(20)``,
  ``world_stream``; the institution's record and agreements once first), ``--lanes`` copies
  interleaved record by record as one wrk thread sends them. ``--copies 320`` gives a feed of
  ~100,000 changes, about what the ingest benchmark leaves queued; ``run --limit 20000``
  measures the first 20,000 of it (``--batch 50`` / ``200``: the rounds of a worker that
  keeps up).

``run`` copies a template (``CREATE DATABASE … TEMPLATE``) before each measurement and runs, in a
child process whose ``PYTHONPATH`` puts the code under test first (``--code name=src-dir``, old
and new alternating within each ``--repeat``), one warm-up round of ``worker.run_once`` and then
``--rounds`` rounds of 500 changes (shape a; ``--batch`` sets the round's size, the same number
of changes) or every round until the feed is empty (shapes b, c; or ``--limit`` changes), with a
frozen clock one minute
after the fill. It reports per change: the
worker's CPU (``time.process_time``), the CPU of the PostgreSQL backends serving the copy (from
``/proc``), statements per round, and a digest of the findings and pending checks written (the
same changes in the same order: old and new code must write the same rows). ``--mode sweep``
(or ``worker,sweep``) measures instead the full sweep (``sweep.sweep``, one process, batches of
1,000) over the same copied records — the sweep's cost per record on exactly the worker's data.
``--profile DIR`` also writes a cProfile of the first repeat per code, shape and mode.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_ingest as bi  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEMPLATE = "imsp_bench_worker_{shape}"
BEIJING = dt.timezone(dt.timedelta(hours=8))
#: Records per upload while filling (each record still leaves its own change).
UPLOAD = 100


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


# --------------------------------------------------------------------------- fill


def _shape_a(count: int) -> dict[str, list[dict[str, Any]]]:
    from imsp.standard.sample import generate

    recs = generate("prescription", count, seed=7, org_code=bi.ORG)
    return {
        "prescription": [
            dict(r, recipeID=f"RX{i:07d}", bussID=f"VX{i:07d}") for i, r in enumerate(recs)
        ]
    }


def _shape_b(count: int, today: dt.date) -> dict[str, list[dict[str, Any]]]:
    import supervision_data as sd
    from imsp.standard.sample import generate_all

    world = generate_all(count, seed=11, org_code=bi.ORG, start=today)
    rng = random.Random(20251130)
    return {ds: [sd.mutate(ds, doc, rng) for doc in docs] for ds, docs in world.items()}


def _shape_c(copies: int, lanes: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """The realistic stream (``bench_supervision.py ingest --data world``) as uploads in the order
    its requests arrive: the institution's own record and agreements once, then ``copies``
    renamed copies of one small world (``world_of(20)``, ``world_stream``), ``lanes`` copies
    interleaved — record ``i`` of each of ``lanes`` copies, then record ``i + 1`` … (as one wrk
    thread sends them). Consecutive requests of one service go as one upload (their changes keep
    the stream's order)."""
    import orjson

    import supervision_data as sd
    import world_stream as ws

    world = sd.world_of(20)
    lines, doctors = ws.templates(world)
    uploads: list[tuple[str, list[dict[str, Any]]]] = [
        (code, world[code]) for code in sorted(ws.ONCE)
    ]
    by_service = _services()
    for first in range(0, copies, lanes):
        group = range(first, min(first + lanes, copies))
        for line in lines:
            path, body = line.split("\t", 1)
            docs = [
                orjson.loads(ws.instantiate(body, serial=1, copy=c, doctors=doctors))[0]
                for c in group
            ]
            uploads.append((by_service[path[1:]], docs))
    return uploads


def _services() -> dict[str, str]:
    from imsp.standard.model import load_standard

    return {d.service: d.code for d in load_standard().datasets.values()}


def _partners(url: str, world: dict[str, list[dict[str, Any]]] | list[Any]) -> None:
    """Register the hospitals the telemedicine records invite (R42)."""
    docs = (
        world.get("telemedicine", [])
        if isinstance(world, dict)
        else [d for code, part in world if code == "telemedicine" for d in part]
    )
    codes = sorted({c for t in docs for c in (t["applyOrgCode"], t["invitedOrgCode"])} - {bi.ORG})
    with psycopg.connect(url, autocommit=True) as conn:
        for code in codes:
            conn.execute(
                "INSERT INTO institution (org_code, name, created_at) VALUES (%s, '合作医院', now()) "
                "ON CONFLICT (org_code) DO NOTHING",
                (code,),
            )


async def _upload(
    url: str,
    world: dict[str, list[dict[str, Any]]] | list[tuple[str, list[dict[str, Any]]]],
    now: dt.datetime,
) -> int:
    from imsp.auth.service import ensure_institution
    from imsp.config import Settings
    from imsp.exchange.ingest import ingest
    from imsp.exchange.pg_writer import PgWriter
    from imsp.exchange.tokens import Grant
    from imsp.exchange.writer import LogEntry
    from imsp.standard.model import load_standard
    from imsp.storage.db import Database

    settings = Settings(database_url=url)
    db = Database(settings)
    writer = PgWriter(settings.sqlalchemy_url)
    stored = 0
    try:
        async with db.session() as s:
            inst = await ensure_institution(s, org_code=bi.ORG, name="基准测试医院", now=now)
        grant = Grant(inst.id, bi.ORG, "app-bench", now + dt.timedelta(days=3650))
        for code, docs in world.items() if isinstance(world, dict) else world:
            ds = load_standard().datasets[code]
            for i in range(0, len(docs), UPLOAD):
                entry = LogEntry(
                    id=uuid.uuid4(), at=now.astimezone(dt.UTC), institution_id=inst.id,
                    app_id=grant.app_id, service=ds.service, dataset=ds.code,
                    client_addr="127.0.0.1", size=0, sha256=None, code=200, body=b"[]",
                )  # fmt: skip
                receipt = await ingest(
                    writer, dataset=ds, records=docs[i : i + UPLOAD], grant=grant,
                    dry_run=False, atomic=False, entry=entry, started=time.perf_counter(),
                )  # fmt: skip
                stored += receipt.data["success"]
    finally:
        await writer.close()
        await db.dispose()
    return stored


def fill(args: argparse.Namespace) -> None:
    now = dt.datetime.now(BEIJING).replace(microsecond=0)
    for shape in args.shape.split(","):
        name = TEMPLATE.format(shape=shape)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _url(name)
        bi.prepare(url)
        world: Any = (
            _shape_a(args.count)
            if shape == "a"
            else _shape_b(args.world, now.date())
            if shape == "b"
            else _shape_c(args.copies, args.lanes)
        )
        _partners(url, world)  # invited hospitals are registered (R42)
        t0 = time.perf_counter()
        stored = asyncio.run(_upload(url, world, now))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            conn.execute("CREATE TABLE bench_meta AS SELECT %s::timestamptz AS filled_at", (now,))
            depth = conn.execute("SELECT count(*) FROM record_change").fetchone()
        print(
            f"shape {shape}: {sum(len(d) for _, d in _parts(world))} records sent, {stored} stored, "
            f"{depth[0] if depth else 0} changes queued, {time.perf_counter() - t0:.0f} s"
        )


def _parts(world: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    return list(world.items()) if isinstance(world, dict) else list(world)


# --------------------------------------------------------------------------- measure (child)


def _backend_cpu(url: str) -> float:
    """CPU seconds of the backends connected to this database (not this monitor's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = {
            int(r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        }
    return bi._cpu_of(pids)


async def _measure(
    url: str, rounds: int, profile: str | None, mode: str, batch: int
) -> dict[str, Any]:
    from sqlalchemy import event

    from imsp.clock import FrozenClock
    from imsp.config import Settings
    from imsp.standard.ruleset import load_rules
    from imsp.storage.db import Database
    from imsp.supervision.sweep import sweep
    from imsp.supervision.worker import run_once

    settings = Settings(database_url=url)
    settings = settings.model_copy(
        update={"supervision": settings.supervision.model_copy(update={"batch": batch})}
    )
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT filled_at FROM bench_meta").fetchone()
    assert row is not None
    clock = FrozenClock(row[0] + dt.timedelta(minutes=1))
    db = Database(settings)
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        if mode == "sweep":  # the same records by the full sweep instead (one process)
            warm = None
            load_rules()  # what the worker's warm-up round loads once (the standard, ~0.4 s)
        else:
            warm = await run_once(db, settings=settings, clock=clock, worker="bench", chores=False)
        changes = done = evaluated = 0
        pg0, st0 = _backend_cpu(url), statements[0]
        prof = cProfile.Profile() if profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if prof is not None:
            prof.enable()
        if mode == "sweep":
            stats = await sweep(db, now=clock.now(), grace=dt.timedelta(hours=48), batch=1000)
            changes = evaluated = stats.records
            done = -(-stats.records // 1000)
        while mode != "sweep" and (rounds <= 0 or done < rounds):
            r = await run_once(db, settings=settings, clock=clock, worker="bench", chores=False)
            if not r.claimed:
                break
            changes += r.claimed
            evaluated += r.stats.records
            done += 1
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)  # type: ignore[arg-type]
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        pg = _backend_cpu(url) - pg0
        st = statements[0] - st0
    finally:
        await db.dispose()
    return {
        "warm": warm.claimed if warm is not None else 0,
        "changes": changes,
        "evaluated": evaluated,
        "rounds": done,
        "cpu": cpu,
        "pg": pg,
        "wall": wall,
        "statements": st,
    }


def _digest(url: str) -> str:
    import supervision_sweep as sw

    return sw.digest(url)


def measure(args: argparse.Namespace) -> None:
    out = asyncio.run(_measure(args.url, args.rounds, args.profile, args.mode, args.batch))
    out["digest"] = _digest(args.url)
    print("RESULT " + json.dumps(out))


# --------------------------------------------------------------------------- run (parent)


def _one(
    shape: str, code: str, src: str, rounds: int, profile: str | None, mode: str, batch: int
) -> dict[str, Any]:
    copy = f"imsp_bench_worker_copy_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{TEMPLATE.format(shape=shape)}"')
    try:
        env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
        argv = [sys.executable, __file__, "measure", "--url", _url(copy), "--rounds", str(rounds)]
        argv += ["--mode", mode, "--batch", str(batch)]
        if profile:
            argv += ["--profile", str(Path(profile) / f"{shape}-{code}-{mode}.prof")]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{code}/{shape} failed:\n{done.stderr[-3000:]}")
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        return dict(json.loads(line[7:]), load=os.getloadavg()[0])
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def run(args: argparse.Namespace) -> None:
    codes = [tuple(c.split("=", 1)) for c in args.code.split(",")]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    print(bi.machine())
    print(
        "| shape | code | mode | changes (records) | rounds (batches) | Python CPU ms / change "
        "| PostgreSQL CPU ms / change | statements / round | records evaluated / change "
        "| changes/s (wall) | load | digest |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for shape in args.shape.split(","):
        # shape a: as many changes as --rounds of the default batch (500), whatever --batch;
        # b and c: until the feed is empty
        rounds = args.rounds * 500 // args.batch if shape == "a" else args.limit // args.batch
        for rep in range(args.repeat):
            order = codes if rep % 2 == 0 else codes[::-1]
            for (code, src), mode in itertools.product(order, args.mode.split(",")):
                profile = args.profile if rep == 0 else None
                r = _one(shape, code, src, rounds, profile, mode, args.batch)
                n = max(r["changes"], 1)
                print(
                    f"| {shape} | {code} | {mode} | {r['changes']:,} | {r['rounds']} | "
                    f"{r['cpu'] / n * 1000:.3f} | {r['pg'] / n * 1000:.3f} | "
                    f"{r['statements'] / max(r['rounds'], 1):.1f} | {r['evaluated'] / n:.2f} | "
                    f"{n / r['wall']:,.0f} | "
                    f"{r['load']:.1f} | `{r['digest']}` |",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["fill", "run", "measure"])
    ap.add_argument("--shape", default="a,b")
    ap.add_argument("--count", type=int, default=6000, help="shape a: prescriptions")
    ap.add_argument("--world", type=int, default=300, help="shape b: objects per dataset")
    ap.add_argument("--copies", type=int, default=32, help="shape c: copies of the world")
    ap.add_argument("--lanes", type=int, default=16, help="shape c: copies interleaved")
    ap.add_argument("--code", default=f"new={ROOT / 'src'}", help="name=src-dir,…")
    ap.add_argument("--rounds", type=int, default=8, help="shape a: rounds of 500 measured")
    ap.add_argument(
        "--batch", type=int, default=500, help="changes a round (a stream's rounds are smaller)"
    )
    ap.add_argument(
        "--limit", type=int, default=0, help="shapes b, c: changes measured (0: until empty)"
    )
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--profile", help="directory for cProfile dumps (first repeat)")
    ap.add_argument(
        "--mode", default="worker", help="worker rounds, and/or the full sweep of the same records"
    )
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    {"fill": fill, "run": run, "measure": measure}[args.what](args)


if __name__ == "__main__":
    main()
