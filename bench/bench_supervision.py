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
When the cluster runs with autovacuum off, the database is ``ANALYZE``d before each leg, while
the server runs (``bench_ingest.autoanalyze``) and when the load stops (what autovacuum would do;
without statistics the worker's and the receipts' key lookups scan).

    flock /tmp/imsp-bench.lock .venv/bin/python bench/bench_supervision.py ingest --duration 30 \
        --rounds 1 --workers 2 --connections 32 --drain-limit 60 [--data world,prescriptions] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import itertools
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_ingest as bi  # noqa: E402
import world_stream as ws  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
SECTION = "## 监管规则 / Supervision"
BEIJING = dt.timezone(dt.timedelta(hours=8))
COLS = (
    "institution_id, dataset, key, version, business_time, patient_id, patient_cert_id, "
    "doctor_cert_id, visit_no, dept_code, reviewer_cert_id, voided, data, created_at, "
    "updated_at, exchange_id"
)


# --------------------------------------------------------------------------- sweep


def _mutate(ds: str, doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """About 1 % of business records break a rule (a different one each time)."""
    if rng.random() >= 0.01:
        return doc
    if ds == "prescription":
        breaks: list[dict[str, Any]] = [
            {"recipeCategory": "4"},  # R19
            {"auditDoctorCertID": doc["doctorCertID"]},  # R24, R09
            {"doctorSign": None, "caCertSN": None},  # R21
            {"effectivePeriod": 5},  # R25
            {"totalFee": 1.0},  # R34
        ]
        return doc | rng.choice(breaks)
    if ds == "outpatient":
        visit_breaks: list[dict[str, Any]] = [{"visitType": "0"}, {"processDataURL": None}]
        return doc | rng.choice(visit_breaks)
    if ds == "telemedicine":
        return dict(doc, consentFlag="0")
    return doc


def _rows(
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
            doc = _mutate(code, doc, rng)
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


def _clean(world: dict[str, list[dict[str, Any]]]) -> None:
    """Make the generated world compliant where the generator is looser than the rules, so the
    ~1 % mutations are (nearly) the only violations: insurance in force for the whole year (R07),
    a consent form in force (R17)."""
    for d in world["doctor"]:
        if d.get("policyNo"):
            d.update(policyStartDate="2025-01-01", policyEndDate="2025-12-31")
    consent = next(a for a in world["agreement"] if a["protocolType"] == "3")
    consent.update(status="1", effectiveDate="2020-01-01", expireDate=None)


def load(url: str, count: int, copies: int) -> int:
    from imsp.standard.sample import generate_all

    started = time.perf_counter()
    world = generate_all(count, seed=11, org_code=bi.ORG)
    print(
        f"generated {sum(len(v) for v in world.values())} records in {time.perf_counter() - started:.0f} s"
    )
    _clean(world)
    rng = random.Random(20251130)
    total = 0
    with psycopg.connect(url, autocommit=True) as conn:
        partners = sorted({t["invitedOrgCode"] for t in world["telemedicine"]} - {bi.ORG})
        for code in partners:  # the invited hospitals are registered institutions (R42)
            conn.execute(
                "INSERT INTO institution (org_code, name, created_at) VALUES (%s, '合作医院', now()) "
                "ON CONFLICT (org_code) DO NOTHING",
                (code,),
            )
        for n in range(copies):
            org = bi.ORG if n == 0 else f"1213{n:04d}MB1A2B3C4R"[:18]
            inst = conn.execute(
                "INSERT INTO institution (org_code, name, created_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (org_code) DO UPDATE SET name = excluded.name RETURNING id",
                (org, f"基准测试医院 {n}"),
            ).fetchone()[0]  # type: ignore[index]
            rows = _rows(world, inst, rng)
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
def _sweep_database(args: argparse.Namespace) -> Iterator[str]:
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


def _digest(url: str) -> str:
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
    load = _load()

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
    return SweepRun(jobs, stats, seconds, cpu, pg.seconds, load, _digest(url))


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


def sweep_report(args: argparse.Namespace, host: str, total: int, runs: list[SweepRun]) -> str:
    from imsp.standard.ruleset import load_rules

    names = {r.id: r.name for r in load_rules()}
    best = max(runs, key=lambda r: r.stats.records / r.seconds)
    stats = best.stats
    predicate_total = sum(stats.seconds.values())
    same = len({r.digest for r in runs}) == 1
    lines = [
        f"### 全量重新评估 / Full sweep ({dt.date.today():%Y-%m-%d})",
        "",
        f"Command: `.venv/bin/python bench/bench_supervision.py sweep --count {args.count} "
        f"--copies {args.copies} --batch {args.batch} --jobs {args.jobs}`"
        + (
            " (on a database loaded by an earlier run of the same command, `--database`)"
            if args.database
            else ""
        )
        + f". Machine: {host}.",
        "",
        f"{total:,} generated records ({args.copies} institutions × one sample world of "
        f"{args.count} objects per dataset, every dataset; ~1 % of prescriptions, follow-up "
        "and telemedicine records mutated to break a rule), stored with `COPY`; then a full "
        "sweep of all 45 rules (`imsp.supervision.sweep.sweep`, PostgreSQL, batches of "
        f"{args.batch} records, a transaction each) with each number of processes in "
        f"`--jobs`, the findings emptied before each. *CPU*: CPU seconds of the sweep's own "
        "processes; *PostgreSQL CPU*: of every PostgreSQL process of the machine during the "
        "sweep (other sessions' queries included).",
        "",
        "| processes | wall s | records/s | records/s per process | sweep CPU s | records per "
        "sweep CPU s | PostgreSQL CPU s | load 1/5/15 min before | findings digest |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *(
            f"| {r.jobs} | {r.seconds:.1f} | {r.stats.records / r.seconds:,.0f} | "
            f"{r.stats.records / r.seconds / r.jobs:,.0f} | {r.cpu:.1f} | "
            f"{r.stats.records / r.cpu if r.cpu else 0:,.0f} | {r.pg_cpu:.1f} | {r.load} | "
            f"`{r.digest}` |"
            for r in runs
        ),
        "",
        f"**Best: {best.stats.records / best.seconds:,.0f} records/s** with {best.jobs} "
        f"process(es) (target ≥ 20,000); {stats.records:,} records, {stats.raised:,} findings "
        f"raised. Findings and pending checks identical across runs: {'yes' if same else 'NO'}.",
        "",
        f"Per rule, in the best run (evaluations of its predicate; {predicate_total:.1f} CPU s "
        "in predicates in all; a rule is evaluated on the records of the datasets it applies to):",
        "",
        "| rule | name | evaluations | predicate s | evaluations/s |",
        "|---|---|---:|---:|---:|",
    ]
    for rid in sorted(stats.checks):
        n, t = stats.checks[rid], stats.seconds.get(rid, 0.0)
        lines.append(f"| {rid} | {names[rid]} | {n:,} | {t:.2f} | {n / t if t else 0:,.0f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- ingest on/off


#: The commands the README tells operators to run ("Running in production"): the exchange
#: service in ``--workers`` processes (bench_ingest's preset ``exchange``) and the supervision
#: worker as a process of its own, which lowers its CPU priority to ``supervision.nice`` (10).
EXCHANGE = "exchange"
WORKER = "imsp serve worker"


def _env(url: str, workdir: Path, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | {
        "IMSP_DATABASE_URL": url,
        "IMSP_DATA_DIR": str(workdir / "var"),
        **extra,
    }


@contextmanager
def _server(url: str, port: int, workers: int, workdir: Path, on: bool) -> Iterator[Any]:
    """``imsp serve exchange --workers N`` with supervision's receipt lookups on or off (the
    exchange role never runs the worker: that is ``imsp serve worker``)."""
    env = _env(url, workdir, IMSP_SUPERVISION__REFERENCE_WARNINGS="true" if on else "false")
    cmd = bi.server_argv(bi.command_text(EXCHANGE, workers), port)
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        bi.wait_healthy(proc, port, "the exchange server")
        time.sleep(2)  # let every process finish starting
        with bi.autoanalyze(url):  # what autovacuum would do while it runs (see there)
            yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def _depth(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM record_change").fetchone()[0])  # type: ignore[index]


def _analyze(url: str) -> bool:
    """``ANALYZE`` the database when the cluster runs with autovacuum off (as this machine's
    does), standing in for the autoanalyze a production server runs: without statistics the
    planner takes the tables for empty and reads the record table by ``(institution, dataset,
    business_time)`` instead of the business-key index, a cost that grows with every upload."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SHOW autovacuum").fetchone() != ("off",):
            return False
        conn.execute("ANALYZE")
    return True


def _drain(url: str, limit: float) -> tuple[float, int]:
    """Seconds until the change feed is empty (polled every 0.5 s), at most ``limit``; and the
    depth left then (0 when it emptied)."""
    t0 = time.monotonic()
    while (left := _depth(url)) and time.monotonic() - t0 < limit:
        time.sleep(0.5)
    return time.monotonic() - t0, left


@dataclass
class Leg:
    run: Any
    worker_cpu: float = 0.0  # CPU seconds per second of the worker process during the load
    depth: int = 0  # change-feed depth when the load stopped
    drained: float = 0.0  # seconds until it was empty (or the wait gave up)
    left: int = 0  # depth when the wait ended (0: empty)
    rejected: int = 0  # records the receipts refused during the load (a renaming gone wrong)

    def us(self, cpu: float) -> float:
        """µs of CPU per record for a CPU column (seconds per second)."""
        return cpu / self.run.rps * 1e6 if self.run.rps else 0.0


@dataclass(frozen=True)
class Stream:
    """What every leg uploads (``--data``)."""

    data: str  # "prescriptions" or "world"
    workdir: Path  # wrk's work directory: upload.lua, token.txt, the bodies
    body: Path  # request templates, one a line
    path: str  # URL path wrk is given (a world's requests name their own)
    once: tuple[tuple[str, bytes], ...] = ()  # (path, body) uploaded before each leg
    doctors: int = 0  # world: doctors per copy (their ID numbers are made per copy)
    per_copy: int = 0  # world: records per copy


#: Business events of a world copy: one day (the sample generator spreads them over 30).
_WORLD_DAYS = 1
_serials = itertools.count(1)


def world_of(count: int) -> dict[str, list[dict[str, Any]]]:
    """One sample world (every dataset, ``count`` objects each) for ``--data world``: its
    business events on one day, tomorrow in Beijing — registrations and payments made up to two
    days before their visit are then today or yesterday, so T+1 holds for every record —, made
    compliant where the generator is looser than the rules (``_clean``; and every doctor
    insured on that day, R07), then mutated like the sweep's data (~1 % of prescriptions,
    visits and telemedicine records break a rule)."""
    from imsp.standard.sample import generate_all

    day = dt.datetime.now(BEIJING).date() + dt.timedelta(days=1)
    world = generate_all(count, seed=11, org_code=bi.ORG, start=day, span_days=_WORLD_DAYS)
    _clean(world)
    insured = next(d for d in world["doctor"] if d.get("policyNo"))
    for n, d in enumerate(world["doctor"]):
        d.update(
            policyNo=d.get("policyNo") or f"{insured['policyNo']}{n:02d}",
            policyStartDate=f"{day.year - 1}-01-01",
            policyEndDate=f"{day.year + 1}-12-31",
        )
    rng = random.Random(20251130)
    return {code: [_mutate(code, doc, rng) for doc in docs] for code, docs in world.items()}


def _world_stream(workdir: Path, url: str, count: int) -> Stream:
    """``--data world``: :func:`world_of` written as a wrk stream of renamed copies
    (``world_stream``). The partner hospitals of its telemedicine records are registered
    (R42); the institution's own record (机构信息) and its agreements are uploaded once before
    each leg rather than once per copy (``world_stream.ONCE``)."""
    from imsp.standard.model import load_standard

    world = world_of(count)
    with psycopg.connect(url, autocommit=True) as conn:
        for code in sorted({t["invitedOrgCode"] for t in world["telemedicine"]} - {bi.ORG}):
            conn.execute(
                "INSERT INTO institution (org_code, name, created_at) VALUES (%s, '合作医院', now()) "
                "ON CONFLICT (org_code) DO NOTHING",
                (code,),
            )
    lines, doctors = ws.templates(world)
    ws.preflight(lines, doctors)
    std = load_standard()
    once = tuple(
        (f"/{std.datasets[code].service}", orjson.dumps(world[code])) for code in sorted(ws.ONCE)
    )
    where = workdir / "world"
    return Stream("world", where, ws.write(where, lines), "/", once, doctors, len(lines))


def _stream(data: str, workdir: Path, url: str, count: int) -> Stream:
    if data == "world":
        return _world_stream(workdir, url, count)
    where = workdir / "prescriptions"
    where.mkdir()
    return Stream(data, where, bi.bodies(where, 50).one, "/uploadPrescriptionInfo")


def _wrk(
    args: argparse.Namespace, stream: Stream, name: str, seconds: int, server: int, url: str
) -> Any:
    os.environ |= {
        "BENCH_SERIAL": str(next(_serials)),
        "BENCH_LANES": str(max(1, args.connections // 2)),  # bench_ingest's wrk runs 2 threads
        "BENCH_THREADS": "2",
        "BENCH_DOCTORS": str(stream.doctors),
    }
    return bi.wrk(
        name, f"http://127.0.0.1:{args.port}{stream.path}", stream.body, stream.workdir,
        connections=args.connections, seconds=seconds, server=server, db_url=url,
    )  # fmt: skip


def _rejected(url: str) -> int:
    """Records refused by the receipts so far (every upload is logged with its counts)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(fail), 0) FROM exchange_log WHERE dataset IS NOT NULL"
        ).fetchone()
    return int(row[0]) if row else 0


def _leg(args: argparse.Namespace, url: str, stream: Stream, mode: str, seconds: int) -> Leg:
    base = f"http://127.0.0.1:{args.port}"
    on = mode == "on"
    _analyze(url)
    with _server(url, args.port, args.workers, stream.workdir, on) as proc:
        worker = None
        if on:
            worker = subprocess.Popen(
                bi.server_argv(WORKER, args.port), env=_env(url, stream.workdir), cwd=ROOT,
                start_new_session=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        token = httpx.get(
            f"{base}/auth/accesstoken/create",
            params={"appId": args.app_id, "appSecret": args.secret},
        ).json()["data"]["accessToken"]
        (stream.workdir / "token.txt").write_text(token + "\n")
        for path, body in stream.once:
            answer = httpx.post(
                f"{base}{path}", content=body,
                headers={"accessToken": token, "Content-Type": "application/json"},
            ).json()  # fmt: skip
            if answer["data"]["fail"]:
                raise SystemExit(f"{path} refused: {answer}")
        if worker is not None:
            _started(worker)
        _wrk(args, stream, "warm-up", 3, proc.pid, url)
        # the worker role is a supervisor process and its child: count the whole tree
        w0 = bi._cpu_of(bi._children(worker.pid)) if worker else 0.0
        rejected = _rejected(url)
        leg = Leg(_wrk(args, stream, mode, seconds, proc.pid, url))
        leg.rejected = _rejected(url) - rejected
        if worker is not None:
            leg.worker_cpu = (bi._cpu_of(bi._children(worker.pid)) - w0) / leg.run.seconds
            leg.depth = _depth(url)
            _analyze(url)
            leg.drained, leg.left = _drain(url, args.drain_limit)
            _stop(worker)
    return leg


def _started(worker: subprocess.Popen[bytes]) -> None:
    """Wait (up to 60 s) until the worker role has forked its process, so the leg's CPU
    accounting starts after its imports."""
    deadline = time.monotonic() + 60
    while len(bi._children(worker.pid)) < 2:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit("the supervision worker did not start")
        time.sleep(0.2)
    time.sleep(1)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the worker finishes its batch), then SIGKILL after 30 s: a batch can take longer
    on a loaded machine, and a killed worker loses nothing (its claims are leased)."""
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)


def _drained(leg: Leg) -> str:
    if leg.left:
        return f"{leg.depth:,} → {leg.left:,} after {leg.drained:.0f} s (not empty)"
    return f"{leg.depth:,} → 0 in {leg.drained:.0f} s"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


@dataclass
class Outcome:
    """One ``--data`` mode's legs and what supervision made of them."""

    stream: Stream
    legs: list[tuple[str, Leg, str]]  # (off|on, leg, load before)
    stream_leg: tuple[Leg, str] | None
    stored: int  # records in the database at the end
    findings: list[tuple[str, int]]  # (rule, findings), most first
    waiting: int  # records with pending checks (supervision_pending) at the end

    @property
    def ratio(self) -> float:
        off = sum(leg.run.rps for m, leg, _ in self.legs if m == "off")
        on = sum(leg.run.rps for m, leg, _ in self.legs if m == "on")
        return on / off if off else 0.0


def _outcome(args: argparse.Namespace, data: str) -> Outcome:
    with bi.fresh_database(args.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        args.app_id, args.secret = bi.prepare(url)
        stream = _stream(data, Path(tmp), url, args.world_count)
        # off, on, on, off, off, on …: each pair's order alternates so drift in the machine's
        # load weighs on both modes alike
        order = [
            m for r in range(args.rounds) for m in (("off", "on") if r % 2 == 0 else ("on", "off"))
        ]
        legs: list[tuple[str, Leg, str]] = []
        for mode in order:
            before = _load()
            legs.append((mode, _leg(args, url, stream, mode, args.duration), before))
            leg = legs[-1][1]
            print(f"{data} {mode}: {leg.run.rps:,.1f} records/s, {leg.rejected} rejected, "
                  f"load before {before}", flush=True)  # fmt: skip
        stream_leg = None
        if args.stream:
            before = _load()
            stream_leg = (_leg(args, url, stream, "on", args.stream), before)
        with psycopg.connect(url) as conn:
            findings = conn.execute(
                "SELECT rule_id, count(*) FROM supervision_finding GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
            waiting = conn.execute("SELECT count(*) FROM supervision_pending").fetchone()
        return Outcome(
            stream, legs, stream_leg, bi.stored(url), [(r, int(n)) for r, n in findings],
            int(waiting[0]) if waiting else 0,
        )  # fmt: skip


#: How each ``--data`` mode is described in the report.
_DATA = {
    "world": (
        "真实数据流 / realistic stream",
        "copies of one sample world (`imsp.standard.sample.generate_all({count})`, every dataset "
        "but the institution's own record and agreements, uploaded once before each leg: "
        "{per_copy} records a copy, {doctors} doctors) whose "
        "events fall on one day, tomorrow (registrations and payments made up to two days ahead "
        "fall today or yesterday: T+1 holds for every record), made compliant where the "
        "generator is looser than the rules and ~1 % of its business records mutated to break a "
        "rule (as the sweep's data: ~1 finding per 100 records); each record a single-record upload to its own service (`/uploadPatientFile`, "
        "`/uploadRegister`, `/uploadOutpatient`, `/uploadPrescriptionInfo`, "
        "`/uploadPrescriptionList`, `/uploadPayment`, …) in the world's upload order (base data "
        "first), {lanes} copies interleaved per wrk thread over the {connections} connections; "
        "every business key and reference renamed per copy (`bench/world_stream.py`), so every "
        "request is a new insert whose references resolve in its copy — what a hospital's "
        "traffic looks like. This is the realistic measure of the target.",
    ),
    "prescriptions": (
        "最坏情况 / worst case",
        "generated prescriptions only (`POST /uploadPrescriptionInfo`), each arriving without "
        "its patient, doctor, department, visit and items and with a business date in the past: "
        "every receipt carries -95 warnings, every change leaves a pending check and raises R45 "
        "(T+1) — a worst case for supervision, kept to show its bound.",
    ),
}


def ingest_report(args: argparse.Namespace, host: str, out: Outcome) -> str:
    from imsp.config import SupervisionSettings

    s = out.stream
    title, what = _DATA[s.data]
    what = what.format(
        count=args.world_count, per_copy=s.per_copy, doctors=s.doctors,
        lanes=max(1, args.connections // 2), connections=args.connections,
    )  # fmt: skip

    def cpu(leg: Leg, group: str) -> str:
        share = leg.worker_cpu if group == "worker" else leg.run.cpu.get(group, 0.0)
        return f"{share:.2f} ({leg.us(share):,.0f})"

    rows = [
        f"| {i + 1} | {m} | {leg.run.rps:,.1f} | {leg.run.p50:.1f} | {leg.run.p99:.1f} | "
        f"{leg.run.errors} | {leg.rejected} | {cpu(leg, 'server')} | {cpu(leg, 'worker')} | "
        f"{cpu(leg, 'postgres')} | {load} |" + (f" {_drained(leg)} |" if m == "on" else " – |")
        for i, (m, leg, load) in enumerate(out.legs)
    ]
    total = sum(n for _, n in out.findings)
    command = (
        f"flock /tmp/imsp-bench.lock .venv/bin/python bench/bench_supervision.py ingest "
        f"--data {s.data} --duration {args.duration} --rounds {args.rounds} "
        f"--workers {args.workers} --connections {args.connections}"
        + (f" --world-count {args.world_count}" if s.data == "world" else "")
        + (f" --stream {args.stream}" if args.stream else "")
        + f" --drain-limit {args.drain_limit:g}"
    )
    lines = [
        f"### 上传与监管同时运行（{s.data}）/ Ingest with supervision on and off, {title} "
        f"({dt.date.today():%Y-%m-%d})",
        "",
        f"Command: `{command}`. Machine: {host}.",
        "",
        "Processes: the exchange service "
        f"`{bi.command_text(EXCHANGE, args.workers).replace('{port}', str(args.port))}` and, in the "
        f"on legs, the supervision worker `{WORKER}` (nice {SupervisionSettings().nice}, "
        "`IMSP_SUPERVISION__NICE`) beside it on the same cores, both from the README's "
        "production section.",
        "",
        f"Data: {what}",
        "",
        f"Method: one fresh database; {args.connections} connections, {args.duration} s per leg "
        "after a 3 s warm-up, legs alternating off/on. *Off*: no reference lookup in the "
        "receipt, no worker (an off leg's changes stay in the change feed: the next on leg's "
        "worker starts with them). *On*: every receipt carries the -95 reference warnings "
        "(`supervision/references.py`, run alongside the write) and the worker evaluates the "
        "change feed while the uploads run. The cluster runs with autovacuum off, so the "
        "benchmark runs `ANALYZE` before each leg and when the load stops, and analyses each "
        "table past autovacuum's threshold every 2 s while the server runs "
        "(`bench_ingest.autoanalyze`), as autovacuum would. "
        "CPU columns: CPU seconds per second of wall time (1.00 = one core) and, in brackets, "
        "µs of CPU per uploaded record, of the server processes, the worker, and the PostgreSQL "
        "processes of the benchmark's database (+ the shared writer processes). *Rejected*: "
        "records the receipts refused (must be 0: every request is valid).",
        "",
        "| leg | supervision | records/s | p50 ms | p99 ms | errors | rejected | server CPU (µs/record) "
        "| worker CPU (µs/record) | PostgreSQL CPU (µs/record) | load 1/5/15 min before "
        "| feed depth at the end → drained |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *rows,
        "",
        f"**On / off: {out.ratio:.0%}** (sum of the on legs' records/s over the off legs'; "
        "target ≥ 85 %).",
        "",
        f"Supervision's verdict at the end ({out.stored:,} records stored): {total:,} findings "
        f"({total / out.stored * 1000 if out.stored else 0:.1f} per 1,000 records"
        + (": " + ", ".join(f"{r} {n:,}" for r, n in out.findings[:8]) if out.findings else "")
        + (", …" if len(out.findings) > 8 else "")
        + f"); {out.waiting:,} records waiting for a reference (`supervision_pending`).",
    ]
    if out.stream_leg is not None:
        leg, load = out.stream_leg
        r = leg.run
        lines += [
            "",
            f"**Stream**: one on leg of {args.stream} s at the same single-record rate "
            f"(load before: {load}): {r.rps:,.1f} records/s, {r.requests:,} requests, "
            f"{r.errors} errors, {leg.rejected} rejected, p99 {r.p99:.1f} ms; server CPU "
            f"{cpu(leg, 'server')}, worker CPU {cpu(leg, 'worker')}, PostgreSQL CPU "
            f"{cpu(leg, 'postgres')}. Change-feed depth when the stream stopped → after the "
            f"wait: {_drained(leg)} (target: empty within 60 s — "
            f"{'met' if not leg.left and leg.drained <= 60 else 'NOT met'}).",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def write(part: str, marker: str) -> None:
    text = DOC.read_text("utf-8")
    if SECTION not in text:
        text = (
            text.rstrip()
            + f"\n\n{SECTION}\n\nMethod and figures of `bench/bench_supervision.py`.\n"
        )
    head, _, rest = text.partition(SECTION)
    nxt = rest.find("\n## ")
    body, tail = (rest, "") if nxt < 0 else (rest[:nxt], rest[nxt:])
    blocks = body.split("\n### ")
    kept = [blocks[0]] + [b for b in blocks[1:] if not b.startswith(marker)]
    body = "\n### ".join(kept).rstrip() + "\n\n" + part + "\n"
    DOC.write_text(head + SECTION + body + tail, "utf-8")


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
    ap.add_argument("--drain-limit", type=float, default=120, help="longest wait for the feed (s)")
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
        with _sweep_database(args) as url:
            total = bi.stored(url)
            runs = []
            for jobs in (int(j) for j in args.jobs.split(",")):
                runs.append(run_sweep(url, args.batch, jobs))
                r = runs[-1]
                print(f"jobs {jobs}: {r.stats.records / r.seconds:,.0f} records/s {r.digest}")
            with psycopg.connect(url) as conn:
                by_rule = conn.execute(
                    "SELECT rule_id, count(*) FROM supervision_finding GROUP BY 1 ORDER BY 2 DESC"
                ).fetchall()
        part = sweep_report(args, host, total, runs)
        part += "\n\nFindings by rule: " + ", ".join(f"{r} {n:,}" for r, n in by_rule) + "."
        marker = "全量重新评估"
    else:
        for data in args.data.split(","):
            if data not in _DATA:
                raise SystemExit(f"--data: {data!r} is not one of {', '.join(_DATA)}")
            part = ingest_report(args, host, _outcome(args, data))
            print(part, flush=True)
            if args.write:
                write(part, f"上传与监管同时运行（{data}）")
        return
    print(part)
    if args.write:
        write(part, marker)


if __name__ == "__main__":
    main()
