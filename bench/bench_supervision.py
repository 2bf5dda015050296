"""Benchmark: supervision (监管规则) on PostgreSQL (not a test).

    .venv/bin/python bench/bench_supervision.py sweep  [--count 2000] [--copies 30] [--jobs 1,2] [--write]
    .venv/bin/python bench/bench_supervision.py ingest [--data world,prescriptions] [--duration 30]
        [--rounds 1] [--stream 600] [--write]

``sweep``: generates a sample world (``imsp.standard.sample``, every dataset, ``--count`` objects
each: ~16 records per object) and stores ``--copies`` copies of it under different institutions
with ``COPY`` into the ``record`` table of a fresh database (received one hour after their
business time, so T+1 holds); ~1 % of the prescriptions and follow-up records are mutated to
break a rule (``--copies 30`` of ``--count 2000``: 1,002,930 records). Then it runs a full sweep
of every rule (``imsp.supervision.sweep``, batches of ``--batch`` records, one transaction each)
once per number of processes in ``--jobs``, and reports records/s in total and per process, the
CPU seconds spent, whether every run wrote the same findings, and, per rule, evaluations/s of its
predicate.

``ingest``: the exchange service as the README runs it in production (``imsp serve exchange
--workers N``, bench/bench_ingest.py's preset ``exchange``, and its wrk driver) loaded with
single-record uploads, in legs alternating supervision off (no receipt reference lookup, no
worker) and on (reference warnings in every receipt, ``imsp serve worker`` — niced to
``supervision.nice`` — running beside it on the same 2 cores), ``--rounds`` pairs of
``--duration`` s, for each data mode of ``--data`` on a fresh database of its own:

* ``world`` (realistic): copies of a sample world (``--world-count`` objects per dataset, every
  dataset, ~1 % of its business records mutated to break a rule, business times around today),
  each record uploaded to its own service in the world's order, copies interleaved, keys and
  references renamed per copy (``bench/world_stream.py``);
* ``prescriptions`` (worst case): prescriptions only, none of their references ever uploaded,
  business dates in the past — every record leaves a pending check and raises R45.

Reported: records/s of both and their ratio, the CPU of server, worker and PostgreSQL (share of
a core and µs per record), records the receipts refused, the change-feed depth at the end of
each "on" leg and how long the worker took to drain it, and supervision's findings and waiting
records at the end. ``--stream N`` adds one "on" leg of N s (the issue's 10-minute stream: 600).
When the cluster runs with autovacuum off, the database is ``ANALYZE``d before each leg and when
the load stops, and vacuumed and analysed as autovacuum would while the server runs
(``bench_ingest.autoanalyze``: the cluster's own naptime and thresholds; without statistics the
worker's and the receipts' key lookups scan, without vacuum the change feed bloats).

    flock /tmp/imsp-bench.lock .venv/bin/python bench/bench_supervision.py ingest --duration 30 \
        --rounds 1 --workers 2 --connections 32 --drain-limit 60 [--data world,prescriptions] [--write]

This file is the command line; the parts are modules beside it: ``supervision_data`` (the
worlds and their ~1 % mutations), ``supervision_sweep`` (loading and sweeping),
``supervision_ingest`` (the on/off legs), ``supervision_report`` (the tables and the writer of
``docs/performance.md``), with ``world_stream`` (a world as a wrk stream) and ``bench_ingest``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_ingest as bi  # noqa: E402
import supervision_ingest as ing  # noqa: E402
import supervision_report as report  # noqa: E402
import supervision_sweep as sw  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["sweep", "ingest"])
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--copies", type=int, default=30)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--jobs", default="1,2", help="sweep processes, one run each (sweep)")
    ap.add_argument("--database", help="sweep: an already loaded database (skips loading)")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=1, help="off/on pairs (ingest)")
    ap.add_argument("--stream", type=int, default=0, help="then one on leg of this many s")
    ap.add_argument(
        "--receipts",
        action="store_true",
        help="ingest: a third leg per round with the receipts' lookups and no worker (the "
        "exchange's own share of supervision, as with the worker on other cores)",
    )
    ap.add_argument("--drain-limit", type=float, default=120, help="longest wait for the feed (s)")
    ap.add_argument(
        "--fill",
        type=int,
        default=20,
        help="ingest: s of the same stream, supervision off, before the first leg (not measured)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--data",
        default="world,prescriptions",
        help="ingest: what the legs upload, one database each: world (a realistic stream of "
        "sample worlds), prescriptions (the worst case: prescriptions without their references)",
    )
    ap.add_argument("--world-count", type=int, default=20, help="objects per dataset of a world")
    ap.add_argument("--port", type=int, default=18889)
    ap.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = ap.parse_args()
    host = bi.machine()
    print(host)
    if args.what == "sweep":
        with sw.sweep_database(args) as url:
            total = bi.stored(url)
            runs = []
            for jobs in (int(j) for j in args.jobs.split(",")):
                runs.append(sw.run_sweep(url, args.batch, jobs))
                r = runs[-1]
                print(f"jobs {jobs}: {r.stats.records / r.seconds:,.0f} records/s {r.digest}")
            with psycopg.connect(url) as conn:
                by_rule = conn.execute(
                    "SELECT rule_id, count(*) FROM supervision_finding GROUP BY 1 ORDER BY 2 DESC"
                ).fetchall()
        part = report.sweep_report(args, host, total, runs)
        part += "\n\nFindings by rule: " + ", ".join(f"{r} {n:,}" for r, n in by_rule) + "."
        marker = "全量重新评估"
    else:
        for data in args.data.split(","):
            if data not in report.DATA:
                raise SystemExit(f"--data: {data!r} is not one of {', '.join(report.DATA)}")
            part = report.ingest_report(args, host, ing.outcome(args, data))
            print(part, flush=True)
            if args.write:
                report.write(part, f"上传与监管同时运行（{data}）")
        return
    print(part)
    if args.write:
        report.write(part, marker)


if __name__ == "__main__":
    main()
