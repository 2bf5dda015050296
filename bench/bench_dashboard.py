"""Benchmark: the regulator's overview and per-hospital pages over rollups of 10,000,000 records.

    .venv/bin/python bench/bench_dashboard.py [--records 10000000] [--hospitals 150] [--days 365]
                                              [--requests 15] [--write]

What it does, on this machine against PostgreSQL on loopback (not a test):

1. creates a fresh PostgreSQL database (dropped at the end) and migrates it to one migration
   short of the month rollups (0018);
2. synthesises the ``quality_day`` rollup rows that 10,000,000 stored records would produce —
   ``--hospitals`` institutions × every dataset (+ the token-only row) × ``--days`` days, the
   records spread over them with a skewed, seeded random mix (large and small hospitals, busy and
   quiet datasets, a few silent days) — and loads them with ``COPY``, then migrates to the head
   (0018 backfills the month rollups from the day rows, timed). It does NOT ingest 10M
   records: the pages read only the rollups, so what their cost depends on is the number of
   rollup rows in the period, which is what is generated (the record table stays empty);
3. checks that the pages' figures are the same with and without the month tables, then signs a
   regulator in to the real portal app (in-process ASGI, ``TestClient``) and times
   ``GET /supervision`` and ``GET /supervision/hospitals/{id}`` (the largest hospital) over 30
   days, ``--days`` days (whole months) and the same period without its first and last 15 days
   (partial months at both ends), ``--requests`` times each after one warm-up: the wall time of
   the whole request (queries + rendering + SVG), which is the server time plus an in-process hop;
4. prints median and p95, and with ``--write`` puts them into ``docs/performance.md`` (its section
   "监管看板 / Supervision dashboards" only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import os
import platform
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imsp.app import create_portal_app  # noqa: E402
from imsp.config import Settings  # noqa: E402
from imsp.standard.model import load_standard  # noqa: E402
from imsp.storage import migrate  # noqa: E402
from imsp.supervision.quality import SUMMED  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import bench_ingest as bi  # noqa: E402

SECTION = "## 监管看板 / Supervision dashboards"
TARGET_MS = 300
ADMIN_URL = os.environ.get("IMSP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
END = dt.date(2026, 6, 30)


def _pg(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"


def create_database() -> str:
    name = f"imsp_bench_dash_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_pg(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return (
        make_url(ADMIN_URL)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def drop_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_pg(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def synthesise(url: str, *, records: int, hospitals: int, days: int, seed: int = 7) -> int:
    """Institutions and the rollup rows of ``records`` records; returns rows written."""
    rnd = random.Random(seed)
    datasets = [d.code for d in load_standard().ordered()]
    hospital_weight = [rnd.paretovariate(1.5) for _ in range(hospitals)]
    dataset_weight = [rnd.uniform(0.2, 3.0) for _ in datasets]
    hw, dw = sum(hospital_weight), sum(dataset_weight)
    per_day = records / days
    now = dt.datetime.now(dt.UTC)
    start = END - dt.timedelta(days=days - 1)
    rows = 0
    with psycopg.connect(_pg(url)) as conn:
        with conn.cursor().copy(
            "COPY institution (id, org_code, name, created_at) FROM STDIN"
        ) as copy:
            for h in range(hospitals):
                copy.write_row((h + 1, f"91130000BENCH{h:05d}", f"河北省第{h + 1}互联网医院", now))
        buf = io.StringIO()
        for h in range(hospitals):
            share_h = hospital_weight[h] / hw
            quiet = {rnd.randrange(days) for _ in range(rnd.randrange(4))}
            for i in range(days):
                if i in quiet:
                    continue
                day = start + dt.timedelta(days=i)
                buf.write(
                    f"production\t{h + 1}\t{day}\t\t{rnd.randint(1, 4)}\t0\t0\t0\t{{}}\t0\t0\t0\t\\N\t\\N\t0\t0\t{now}\n"
                )
                rows += 1
                for d, code in enumerate(datasets):
                    n = int(per_day * share_h * dataset_weight[d] / dw * rnd.uniform(0.6, 1.4))
                    if n == 0:
                        continue
                    bad = int(n * rnd.uniform(0, 0.05))
                    opt = 10 * n
                    median = rnd.uniform(600, 20000)
                    buf.write(
                        f"production\t{h + 1}\t{day}\t{code}\t{max(1, n // 200)}\t{n}\t{n - bad}\t{bad}\t"
                        f'{{"required": {bad}}}\t{n - bad}\t{int(opt * rnd.uniform(0.7, 1))}\t{opt}\t'
                        f"{median:.0f}\t{median * 4:.0f}\t{n - bad}\t{int((n - bad) * 0.98)}\t{now}\n"
                    )
                    rows += 1
        buf.seek(0)
        findings = _findings(rnd, hospitals=hospitals, days=days, records=records)
        with conn.cursor().copy(
            "COPY quality_day (channel, institution_id, day, dataset, requests, received, accepted,"
            " rejected, rejected_by_code, stored, optional_filled, optional_total, delay_median_s,"
            " delay_p95_s, refs_checked, refs_resolved, computed_at) FROM STDIN"
        ) as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        with conn.cursor().copy(
            "COPY finding_day (channel, institution_id, day, rule_id, severity, status, findings,"
            " computed_at) FROM STDIN"
        ) as copy:
            for row in findings:
                copy.write_row((*row, now))
        conn.execute("SELECT setval('institution_id_seq', %s)", (hospitals,))
        sums = ", ".join(f"sum({c})" for c in SUMMED) + ", max(delay_p95_s)"
        cols = ", ".join(SUMMED) + ", delay_p95_s"
        conn.execute(
            f"INSERT INTO quality_institution_day (channel, day, institution_id, {cols}) "
            f"SELECT channel, day, institution_id, {sums} FROM quality_day GROUP BY 1, 2, 3"
        )
        conn.execute(
            f"INSERT INTO quality_dataset_day (channel, day, dataset, {cols}) "
            f"SELECT channel, day, dataset, {sums} FROM quality_day GROUP BY 1, 2, 3"
        )
        total = conn.execute("SELECT sum(received) FROM quality_day").fetchone()
        conn.commit()
    vacuum(url, ("quality_day", "finding_day", "quality_institution_day", "quality_dataset_day"))
    print(
        f"rollup rows: {rows:,} quality_day + {len(findings):,} finding_day; "
        f"records they cover: {int(total[0] if total else 0):,}; "
        f"findings: {sum(r[-1] for r in findings):,}"
    )
    return rows


MONTH_TABLES = (
    "quality_institution_month", "finding_institution_month", "finding_rule_month",
    "finding_total_day",
)  # fmt: skip


def vacuum(url: str, tables: tuple[str, ...]) -> None:
    """What autovacuum does in production: statistics and the visibility map (index-only)."""
    with psycopg.connect(_pg(url), autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")


STATUSES = ("pending_review", "confirmed", "rectifying", "rectified", "dismissed", "overdue")


def _findings(
    rnd: random.Random, *, hospitals: int, days: int, records: int
) -> list[tuple[Any, ...]]:
    """``finding_day`` rows for ~1 % of the records breaking some rule (issue 10's mix)."""
    from imsp.standard.ruleset import load_rules

    rules = list(load_rules())
    start = END - dt.timedelta(days=days - 1)
    per_day = records * 0.01 / days / hospitals
    out: dict[tuple[Any, ...], int] = {}
    for h in range(hospitals):
        for i in range(days):
            for _ in range(rnd.randint(0, int(per_day * 2) + 1)):
                rule = rnd.choice(rules)
                key = ("production", h + 1, start + dt.timedelta(days=i), rule.id, rule.severity,
                       rnd.choice(STATUSES))  # fmt: skip
                out[key] = out.get(key, 0) + 1
    return [(*k, n) for k, n in out.items()]


def sign_in(client: TestClient, url: str) -> None:
    import asyncio

    from imsp.auth.service import create_portal_user
    from imsp.clock import SystemClock
    from imsp.storage.db import Database

    async def make() -> None:
        db = Database(Settings(database_url=url))
        try:
            async with db.session() as s:
                await create_portal_user(
                    s, username="bench", password="Passw0rd-123", role="regulator",
                    now=SystemClock().now(), must_change_password=False,
                )  # fmt: skip
        finally:
            await db.dispose()

    asyncio.run(make())
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": "bench", "password": "Passw0rd-123", "csrf_token": token.group(1)},
    )
    assert r.status_code == 200 and r.url.path == "/supervision", r.url


def _backend_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``url``'s database (the
    portal's pooled connections; read from /proc, PostgreSQL runs on this machine)."""
    name = make_url(url).database
    with psycopg.connect(_pg(url).replace(f"dbname={name}", "dbname=postgres")) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
        )]  # fmt: skip
    return bi._cpu_of(set(pids))


def timed(client: TestClient, path: str, n: int, url: str) -> dict[str, float]:
    """Wall time of each request, and the CPU it cost: this process's (the app runs in-process)
    and PostgreSQL's — on a machine shared with other work the wall time is the CPU time
    stretched by waiting for a core, and the CPU time is what the page itself costs."""
    r = client.get(path)
    assert r.status_code == 200, r.text[:500]
    samples = []
    cpu0, pg0 = time.process_time(), _backend_cpu(url)
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    cpu, pg = time.process_time() - cpu0, _backend_cpu(url) - pg0
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p95": samples[max(0, math.ceil(len(samples) * 0.95) - 1)],
        "bytes": len(r.content),
        "app_cpu": cpu * 1000 / n,
        "pg_cpu": pg * 1000 / n,
    }


def largest_hospital(url: str) -> int:
    with psycopg.connect(_pg(url)) as conn:
        row = conn.execute(
            "SELECT institution_id FROM quality_day GROUP BY 1 ORDER BY sum(received) DESC LIMIT 1"
        ).fetchone()
    assert row
    return int(row[0])


#: The migration that adds (and backfills) the month rollups: the benchmark loads the day rows
#: into a database just before it, then migrates, as an installation upgrading would.
MONTHS_REVISION = "0018"


def upgrade_before_months(settings: Settings) -> None:
    """Every migration head, except that the month rollups' branch stops before them."""
    cfg = migrate.alembic_config(settings)
    script = ScriptDirectory.from_config(cfg)
    for head in script.get_heads():
        below = {r.revision for r in script.iterate_revisions(head, "base")}
        target = script.get_revision(MONTHS_REVISION)
        assert target is not None
        command.upgrade(cfg, target.down_revision if MONTHS_REVISION in below else head)  # type: ignore[arg-type]


def same_with_and_without_months(url: str, start: dt.date, end: dt.date, biggest: int) -> None:
    """The figures the pages show are those of the day rows alone (on these 10M records'
    rollups too: the property tests check it on random small ones)."""
    import asyncio

    from imsp.storage.db import Database
    from imsp.supervision import dashboard

    async def check() -> None:
        db = Database(Settings(database_url=url))
        try:
            async with db.session() as s:
                for use_months in (False, True):
                    got = (
                        await dashboard.overview(s, start=start, end=end, use_months=use_months),
                        await dashboard.findings_summary(
                            s, start=start, end=end, use_months=use_months
                        ),
                        await dashboard.hospital(
                            s, institution_id=biggest, start=start, end=end, use_months=use_months
                        ),
                    )
                    if not use_months:
                        expected = got
                assert got == expected, "month rollups disagree with the day rollups"
        finally:
            await db.dispose()

    asyncio.run(check())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--hospitals", type=int, default=150)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--requests", type=int, default=15)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the database (for EXPLAIN)")
    args = ap.parse_args()
    url = create_database()
    try:
        settings = Settings(database_url=url)
        upgrade_before_months(settings)
        t0 = time.perf_counter()
        rows = synthesise(url, records=args.records, hospitals=args.hospitals, days=args.days)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        migrate.upgrade(settings)  # the month rollups, backfilled from the day rows
        vacuum(url, MONTH_TABLES)
        months_s = time.perf_counter() - t0
        biggest = largest_hospital(url)
        month = f"start={END - dt.timedelta(days=29)}&end={END}"
        first = END - dt.timedelta(days=args.days - 1)
        year = f"start={first}&end={END}"
        # the same year without its first and last half-month: partial months at both ends
        ragged_start, ragged_end = first + dt.timedelta(days=15), END - dt.timedelta(days=15)
        ragged = f"start={ragged_start}&end={ragged_end}"
        ragged_days = (ragged_end - ragged_start).days + 1
        same_with_and_without_months(url, ragged_start, ragged_end, biggest)
        with TestClient(create_portal_app(settings)) as client:
            sign_in(client, url)
            load_before = os.getloadavg()[0]
            results: dict[str, dict[str, float]] = {
                "监管总览，30 天": timed(client, f"/supervision?{month}", args.requests, url),
                f"监管总览，{args.days} 天": timed(
                    client, f"/supervision?{year}", args.requests, url
                ),
                "单个医院（最大），30 天": timed(
                    client, f"/supervision/hospitals/{biggest}?{month}", args.requests, url
                ),
                f"单个医院（最大），{args.days} 天": timed(
                    client, f"/supervision/hospitals/{biggest}?{year}", args.requests, url
                ),
                f"监管总览，{ragged_days} 天（月中起止）": timed(
                    client, f"/supervision?{ragged}", args.requests, url
                ),
                f"单个医院（最大），{ragged_days} 天（月中起止）": timed(
                    client, f"/supervision/hospitals/{biggest}?{ragged}", args.requests, url
                ),
            }
    finally:
        if args.keep:
            print(f"kept database: {url}")
        else:
            drop_database(url)
    lines = [
        f"{name}: median {r['median']:.1f} ms, p95 {r['p95']:.1f} ms, page {r['bytes'] / 1024:.0f} KB, "
        f"CPU app {r['app_cpu']:.0f} ms + PostgreSQL {r['pg_cpu']:.0f} ms"
        for name, r in results.items()
    ]
    print(f"load {load_s:.1f} s, month rollups (migration 0018 + VACUUM) {months_s:.1f} s")
    print("\n".join(lines))
    if args.write:
        cpu = platform.processor() or platform.machine()
        table = "\n".join(
            f"| {name} | {r['median']:.1f} | {r['p95']:.1f} | {r['app_cpu']:.0f} | "
            f"{r['pg_cpu']:.0f} | {r['app_cpu'] + r['pg_cpu']:.0f} | {r['bytes'] / 1024:.0f} |"
            for name, r in results.items()
        )
        worst_cpu = max(r["app_cpu"] + r["pg_cpu"] for r in results.values())
        worst = max(r["p95"] for r in results.values())
        bi.write_section(
            SECTION,
            [
                f"""{SECTION}

Command: `.venv/bin/python bench/bench_dashboard.py --records {args.records} --hospitals {args.hospitals} --days {args.days} --requests {args.requests} --write`
({dt.date.today()}, {os.cpu_count()} cores ({cpu}), PostgreSQL on loopback, Python {platform.python_version()}).

Method: the pages read only the rollups (`quality_day`, one row per institution, dataset and
Beijing day, its sums, their month sums, `finding_day` and its sums), never the record table.
The benchmark therefore **synthesises the rollup rows that {args.records:,} stored records would
produce** — {args.hospitals} institutions × every dataset (+ the token-only row) × {args.days} days,
records spread with a seeded skewed mix, a few silent days — {rows:,} `quality_day` rows (summed
into `quality_institution_day` and `quality_dataset_day` as the refresh does), plus `finding_day`
rows for ~1 % of the records breaking a rule (random rule and status), loaded with `COPY` in
{load_s:.1f} s into a database one migration short of the head; then migration 0018 adds the month
rollups and backfills them from those day rows, as an installation upgrading would ({months_s:.1f} s
with `VACUUM ANALYZE`). Before timing, the benchmark checks that the overview's and the largest
hospital's figures over the mid-month period are identical with and without the month tables. It
does not ingest {args.records:,} records (the record table is empty; ingest is measured in its own
section). A regulator signs in to the real portal app (in-process ASGI) and each page is requested
once to warm up, then {args.requests} times; the figure is the wall time of the whole request (the
aggregate queries over the rollups, the silent days, rendering, SVG charts). The {args.days}-day
period ends on the last day of a month, so it is whole months; the "月中起止" rows drop its first
and last 15 days, so the pages also read two partial months from the day tables. *CPU app* is this process's CPU time per
request (the app runs in it), *CPU PostgreSQL* that of the PostgreSQL backends serving the
benchmark's database (from /proc): together, what a request costs whatever else the machine runs.

| page | median ms | p95 ms | CPU app ms | CPU PostgreSQL ms | CPU total ms | page size KB |
|---|---:|---:|---:|---:|---:|---:|
{table}

Target: < {TARGET_MS} ms each — worst p95 here {worst:.1f} ms ({"met" if worst < TARGET_MS else "NOT met"}); worst CPU per request {worst_cpu:.0f} ms (the server time on a machine with a free core; 1-minute load average before the timings {load_before:.1f}).""",
                "",
            ],
        )


if __name__ == "__main__":
    main()
