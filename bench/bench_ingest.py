"""Benchmark: the data exchange service's ingest against PostgreSQL (not a test).

    .venv/bin/python bench/bench_ingest.py [--duration 20] [--workers 2] [--command both] [--write]

What it does, all on this machine over loopback:

1. creates a fresh PostgreSQL database (dropped at the end), migrates it, creates a credential;
2. starts the exchange service in its own process group, with the hidden ``/bench/echo`` endpoint
   switched on, by each ``--command`` in turn: ``serve`` — ``imsp serve``, the command the README
   tells operators to run (both servers, one process) — and ``uvicorn`` — ``uvicorn --factory``
   with ``--workers`` processes (default 2, one per core); every figure says which command;
3. loads it from a second process, ``wrk`` (C, Lua scripts), with generated prescription records
   (``imsp.standard.sample``, 处方, ~1.8 KB each) — every request carries new business keys:
   * baseline: ``POST /bench/echo`` — a trivial JSON endpoint on the same server (parse, answer);
   * single-record uploads: ``POST /uploadPrescriptionInfo`` with one record, 32 connections;
   * batch uploads: 500 records a request, ``--batch-connections`` connections;
4. baseline for records/s: a raw ``COPY`` of the same records (typed columns + JSONB) into a table
   like ``record`` (same indexes), from one client connection;
5. checks that every upload was stored, reads CPU time used by the server processes, PostgreSQL
   and wrk during each run (``/proc``), prints the figures, and with ``--write`` puts them into
   ``docs/performance.md`` (its section "数据交换服务 / Exchange ingest" only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
SECTION = "## 数据交换服务 / Exchange ingest"
ORG = "12130000MB1A2B3C4R"
TARGET_SINGLE = 1500
TARGET_P99_MS = 50
TARGET_RECORDS = 20_000

LUA = r"""
local token = io.open(os.getenv("BENCH_DIR") .. "/token.txt"):read("*l")
local templates = {}
for line in io.lines(os.getenv("BENCH_BODY")) do templates[#templates + 1] = line end
local run = os.getenv("BENCH_RUN")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["accessToken"] = token
local counter = 0
threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) prefix = run .. "T" .. tostring(id) .. "N" end
function request()
  counter = counter + 1
  local template = templates[(counter + id * 7919) % #templates + 1]
  local body = string.gsub(template, "@@KEY@@", prefix .. counter)
  return wrk.format(nil, nil, nil, body)
end
"""


@dataclass
class Run:
    name: str
    requests: int
    rps: float
    p50: float
    p90: float
    p99: float
    errors: int
    cpu: dict[str, float]
    seconds: float


# --------------------------------------------------------------------------- processes and CPU


def _cpu_of(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _children(root: int) -> set[int]:
    out = {root}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in out:
            out.add(int(stat.parent.name))
    return out


def _pids_named(word: str) -> set[int]:
    out = set()
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if word.encode() in cmd.read_bytes().split(b"\0")[0]:
                out.add(int(cmd.parent.name))
        except OSError:
            continue
    return out


def _groups(server: int) -> dict[str, set[int]]:
    return {"server": _children(server), "postgres": _pids_named("postgres")}


# --------------------------------------------------------------------------- setup


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"imsp_bench_{os.getpid()}"
    with _admin(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin(admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(url: str) -> tuple[str, str]:
    import asyncio

    from imsp.auth.credentials import create_credential
    from imsp.clock import SystemClock
    from imsp.config import Settings
    from imsp.storage import migrate
    from imsp.storage.db import Database

    settings = Settings(database_url=url)
    migrate.upgrade(settings)

    async def issue() -> tuple[str, str]:
        db = Database(settings)
        try:
            async with db.session() as s:
                c = await create_credential(
                    s, org_code=ORG, institution_name="基准测试医院", now=SystemClock().now()
                )
        finally:
            await db.dispose()
        return c.app_id, c.app_secret

    return asyncio.run(issue())


#: --command → what is run (shown with every figure).
COMMANDS = {
    "serve": "imsp serve",
    "uvicorn": "uvicorn --factory exchange_server:create --workers N --loop uvloop --http httptools",
}


def server_command(command: str, port: int, workers: int) -> list[str]:
    if command == "serve":
        return [
            sys.executable, "-m", "imsp.cli.main", "serve", "--host", "127.0.0.1",
            "--exchange-port", str(port), "--portal-port", "0",  # any free port
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "--factory", "exchange_server:create",
        "--app-dir", str(ROOT / "bench"), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip


@contextmanager
def server(
    url: str, port: int, workers: int, command: str, workdir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | {
        "IMSP_DATABASE_URL": url,
        "IMSP_DATA_DIR": str(workdir / "var"),
        "IMSP_EXCHANGE__BENCH_ECHO": "true",
    }
    cmd = server_command(command, port, workers)
    print("server:", " ".join(cmd[1:] if command == "uvicorn" else ["imsp", *cmd[3:]]))
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the exchange server did not start")
            time.sleep(0.2)
        time.sleep(1)  # let every worker finish starting
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# --------------------------------------------------------------------------- bodies


def bodies(workdir: Path, batch: int) -> tuple[list[dict[str, Any]], Path, Path]:
    """Request templates, one per line, cycled through by wrk: distinct patients, doctors,
    visits and times (as real traffic has — identical values in every request would make every
    secondary index insert hit the same pages); ``@@KEY@@`` becomes a new key per request."""
    from imsp.standard.sample import generate

    recs = generate("prescription", 20 * batch, seed=7, org_code=ORG)
    (workdir / "singles.jsonl").write_bytes(
        b"\n".join(orjson.dumps([dict(r, recipeID="@@KEY@@")]) for r in recs) + b"\n"
    )
    lines = [
        orjson.dumps(
            [dict(r, recipeID=f"@@KEY@@-{i:04d}") for i, r in enumerate(recs[n : n + batch])]
        )
        for n in range(0, len(recs), batch)
    ]
    (workdir / "batches.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (workdir / "upload.lua").write_text(LUA)
    return recs, workdir / "singles.jsonl", workdir / "batches.jsonl"


# --------------------------------------------------------------------------- wrk


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNIT[m.group(2)]


def wrk(
    name: str, url: str, body: Path, workdir: Path, *, connections: int, seconds: int, server: int
) -> Run:
    env = os.environ | {
        "BENCH_DIR": str(workdir),
        "BENCH_BODY": str(body),
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    groups = _groups(server)
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-s", str(workdir / "upload.lua"), url]  # fmt: skip
    before = {k: _cpu_of(v) for k, v in groups.items()}
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    groups["wrk"] = {proc.pid}
    before["wrk"] = 0.0
    wrk_cpu = 0.0
    while proc.poll() is None:
        wrk_cpu = max(wrk_cpu, _cpu_of({proc.pid}))
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    elapsed = time.monotonic() - started
    after = {k: _cpu_of(v) for k, v in groups.items() if k != "wrk"}
    after["wrk"] = wrk_cpu
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    errors = sum(
        int(n)
        for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout|read|write|connect) (\d+)", out)
    )
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Run(
        name=name,
        requests=requests,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50=_ms(pct["50"]),
        p90=_ms(pct["90"]),
        p99=_ms(pct["99"]),
        errors=errors,
        cpu={k: (after[k] - before[k]) / elapsed for k in after},
        seconds=elapsed,
    )


# --------------------------------------------------------------------------- COPY baseline


def copy_baseline(url: str, recs: list[dict[str, Any]], total: int) -> float:
    """Records/s of a raw COPY of ``total`` rows built from ``recs`` into a copy of ``record``."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for n in range(total):
        r = recs[n % len(recs)]
        rows.append(
            (
                1,
                "prescription",
                f"COPY-{n}",
                1,
                dt.datetime.fromisoformat(r["datein"]).replace(
                    tzinfo=dt.timezone(dt.timedelta(hours=8))
                ),
                r["patientId"],
                r["patientCertID"],
                r["doctorCertID"],
                r["bussID"],
                r["deptID"],
                False,
                orjson.dumps(r).decode(),
                now,
                now,
                uuid.uuid4(),
            )
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_copy (LIKE record INCLUDING ALL)")
        cols = (
            "institution_id, dataset, key, version, business_time, patient_id, patient_cert_id, "
            "doctor_cert_id, visit_no, dept_code, voided, data, created_at, updated_at, exchange_id"
        )
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY bench_copy ({cols}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
    return total / elapsed


# --------------------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        pg = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {pg} (default configuration: fsync and synchronous_commit on), "
        f"{platform.system()} {platform.release()}; 1-minute load average before the run "
        f"{os.getloadavg()[0]:.1f}"
    )


def stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM record").fetchone()[0])  # type: ignore[index]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--batch-connections", type=int, default=8)
    ap.add_argument("--port", type=int, default=18888)
    ap.add_argument(
        "--command",
        choices=["serve", "uvicorn", "both"],
        default="both",
        help="server command: imsp serve (the README's), uvicorn with workers, or both in turn",
    )
    ap.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = ap.parse_args()
    args.commands = ["serve", "uvicorn"] if args.command == "both" else [args.command]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    host = machine()
    print(host)
    base = f"http://127.0.0.1:{args.port}"
    with fresh_database(args.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        app_id, secret = prepare(url)
        recs, one, batch = bodies(workdir, args.batch)
        args.workdir, args.one, args.batch_body = workdir, one, batch
        BATCH_SIZE[0] = args.batch
        args.record_bytes = round(sum(len(orjson.dumps(r)) for r in recs) / len(recs))
        results: list[Result] = []
        for command in args.commands:
            with server(url, args.port, args.workers, command, workdir) as proc:
                results.append(measure(command, proc.pid, url, base, app_id, secret, args))
        copy_rate = copy_baseline(url, recs, max(max(r.stored for r in results), 50_000))
    for r in results:
        print_results(r, args, copy_rate)
    if args.write:
        write_doc(host, args, results, copy_rate)
        print(f"wrote {DOC.relative_to(ROOT)}")
    if any(run.errors for r in results for run in r.runs[1:]):
        raise SystemExit("some uploads failed — see wrk's output")


@dataclass(frozen=True)
class Result:
    """The three runs against one server command."""

    command: str
    runs: list[Run]  # echo, single, batch
    stored: int  # records stored by the batch run

    @property
    def records_s(self) -> float:
        return self.runs[2].rps * BATCH_SIZE[0]


BATCH_SIZE = [500]


def measure(
    command: str,
    pid: int,
    url: str,
    base: str,
    app_id: str,
    secret: str,
    args: argparse.Namespace,
) -> Result:
    workdir: Path = args.workdir
    one: Path = args.one
    batch: Path = args.batch_body
    token = httpx.get(
        f"{base}/auth/accesstoken/create", params={"appId": app_id, "appSecret": secret}
    ).json()["data"]["accessToken"]
    (workdir / "token.txt").write_text(token + "\n")
    common = {"seconds": args.duration, "server": pid}
    upload = f"{base}/uploadPrescriptionInfo"
    wrk("warm-up", upload, one, workdir, connections=args.connections, seconds=3, server=pid)
    runs = [
        wrk("echo", f"{base}/bench/echo", one, workdir, connections=args.connections, **common),
        wrk("single", upload, one, workdir, connections=args.connections, **common),
    ]
    before = stored(url)
    runs.append(wrk("batch", upload, batch, workdir, connections=args.batch_connections, **common))
    return Result(command, runs, stored(url) - before)


#: Measured once by hand (2026-11-25), kept with the generated section: why the records/s target is
#: out of reach of storage-level changes on this machine.
CEILING = (
    "**The storage ceiling** (measured 2026-11-25 on the same machine, to know the real limit). "
    "20,000 records/s on 2 cores is a budget of 100 µs of CPU per record for server, PostgreSQL "
    "and wrk together; server (~68 µs: parsing 3.8 µs, validator and row building ~27 µs, "
    "array parameters 2.5 µs, SHA-256 1.2 µs in-process, the rest HTTP, psycopg and the event "
    "loop) and wrk (~18 µs) leave ≤ 14 µs for PostgreSQL. Storage levers, each measured end to "
    "end with the batch run's method (applied by hand to a copy of the code; 20 s, 8 "
    "connections, same records; one run after another in a session separate from the table "
    "above, 1-minute load average 1.9 before; CPU saturated in every run; PostgreSQL = all its "
    "processes) and in isolation on one connection (500 rows a statement, 40,000 rows, CPU of "
    "the backend process only):\n"
    "\n"
    "| storage variant | end to end records/s | PostgreSQL µs/record | CPU ceiling "
    "2,000,000 ÷ (server + PostgreSQL + wrk) | upsert alone: rows/s · backend µs/row |\n"
    "|---|---|---|---|---|\n"
    "| as built: JSONB, a version row for every insert, 7 indexes | 11,740 | 79 | 12,100 | "
    "15,449 · 55.8 |\n"
    "| (1) a version row only when a record is replaced | 12,560 | 69 | 13,100 | "
    "15,889 · 53.3 |\n"
    "| (1) + (2) `json` instead of `jsonb` for `record.data` | 13,795 | 55 | 14,100 | "
    "21,639 · 37.8 |\n"
    "| (1) + (2) + no secondary index — gives up a requirement, shown as the floor | 15,280 | "
    "42 | 15,700 | 28,241 · 27.7 |\n"
    "\n"
    "(3) Indexes: none can be merged (each of the five secondary indexes serves a different "
    "queried column: business time, patient id, visit number, patient and doctor ID numbers); "
    "partial indexes (`WHERE col IS NOT NULL`) measured the same (21,773 · "
    "38.0) because every benchmark record carries all identifiers — they only pay where "
    "identifiers are missing; fillfactor only helps replacements, not inserts. (4) The raw COPY "
    "baseline is limited by the same shape: COPY into `record`'s shape 20,343 rows/s (47.7 µs "
    "backend CPU a row), with `json` 27,967 (34.3 µs), with `jsonb` and only the key indexes "
    "25,736 (37.5 µs), with `json` and only the key indexes 44,799 (21.5 µs) — the 73,000 "
    "rows/s yardstick is for ~30-field records, not these 65-field ~2.3 KB ones. "
    "Conclusion: even PostgreSQL at the cheapest shape measured (COPY, `json`, "
    "no secondary index: 21.5 µs in the backend alone, before the WAL writer and checkpointer) "
    "costs more than the 14 µs left, so storage-level changes cannot reach 20,000 records/s on "
    "2 cores; keeping every requirement, the best measured is ~13,800 (+17%, levers 1 and 2). "
    "Neither was adopted, as they do not reach the target and each has a cost: (1) needs the "
    "body position on the record row and a history/trace that unions the record row with the "
    'version rows; (2) makes "unchanged" a byte comparison of the normalised JSON instead of '
    "JSONB equality. The target needs the server's ~68 µs roughly halved (the validator is the "
    "largest part) or more CPU (PostgreSQL on its own cores)."
)


def _per_f(run: Run, group: str, per: int) -> float:
    """µs of CPU of ``group`` per request (``per`` = 1) or per record (``per`` = batch size)."""
    return run.cpu.get(group, 0.0) * 1e6 / (run.rps * per) if run.rps else 0.0


def _per(run: Run, group: str, per: int) -> str:
    return f"{_per_f(run, group, per):,.0f}"


NOTES = (
    "**What was optimised** (profiled with py-spy and `cProfile` on CPU time; each step "
    "measured with the same records): (1) the write is one SQL statement per request — "
    "records, versions and the log row in data-modifying CTEs — run on a small psycopg pool of "
    "autocommit connections instead of SQLAlchemy's async session (a third of the server CPU "
    "of a single-record upload went to per-statement execution machinery); (2) group commit: "
    "requests that arrive while a statement is in flight are merged into the next one (up to "
    "1,000 records), so PostgreSQL's per-statement and per-commit cost is shared; (3) the "
    "per-record values travel as binary array parameters (`unnest`) instead of one JSON "
    "document PostgreSQL had to parse first; (4) `lz4` column compression for records and "
    "archived bodies instead of `pglz` in the database and zlib in Python (zlib alone was "
    "~17 µs a record); (5) no per-row foreign-key check on version rows, no index on the "
    "department column; (6) upload routes reached by a small ASGI fast path instead of "
    "FastAPI's router and dependency machinery (~65 µs a request); (7) `gc.freeze()` after "
    "start-up, so full garbage collections (30–60 ms over the ~170,000 objects of the code "
    "tables and validators) stop landing in the tail latency. Not done, on purpose: giving up "
    "durability (`synchronous_commit`), JSONB, the indexes supervision queries by, the version "
    "history or the request archive."
)


def _cpu(run: Run) -> str:
    return " · ".join(f"{k} {v * 100:.0f}%" for k, v in run.cpu.items())


def print_results(result: Result, args: argparse.Namespace, copy_rate: float) -> None:
    echo, single, _ = result.runs
    print(f"== {COMMANDS[result.command]}")
    for r in result.runs:
        print(
            f"{r.name:<7} {r.rps:>9,.0f} req/s  p50 {r.p50:6.1f} ms  p90 {r.p90:6.1f} ms  "
            f"p99 {r.p99:6.1f} ms  errors {r.errors}  CPU: {_cpu(r)}"
        )
    print(
        f"single-record uploads: {single.rps:,.0f}/s = {single.rps / echo.rps:.0%} of the echo "
        f"baseline; target ≥ {TARGET_SINGLE:,}/s with p99 < {TARGET_P99_MS} ms"
    )
    print(
        f"{args.batch}-record batches: {result.records_s:,.0f} records/s "
        f"({result.stored:,} stored) = {result.records_s / copy_rate:.0%} of raw COPY "
        f"({copy_rate:,.0f} records/s); target ≥ {TARGET_RECORDS:,} records/s"
    )


def _command_label(command: str, args: argparse.Namespace) -> str:
    if command == "serve":
        return "`imsp serve` (README; one process)"
    return f"`uvicorn --factory`, {args.workers} workers"


def write_doc(host: str, args: argparse.Namespace, results: list[Result], copy_rate: float) -> None:
    def ok(good: bool) -> str:
        return "met" if good else "**not met**"

    commands = " and ".join(f"`{COMMANDS[r.command]}`" for r in results)
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `bench/bench_ingest.py --write` "
        f"(`--duration {args.duration} --workers {args.workers} --command {args.command}`). "
        "To run it: PostgreSQL at "
        "127.0.0.1:5432 (the `--admin-url` role must be allowed to create databases), `wrk` "
        "(`apt-get install -y wrk`), then `.venv/bin/python bench/bench_ingest.py [--write]`.",
        "",
        "**Method.** A fresh PostgreSQL database is created and migrated; the exchange service runs "
        f"in its own process group, started in turn by each server command — {commands}: "
        "`imsp serve` is the command the README tells operators to run (the exchange service and "
        "the portal in one process, one event loop, with its connection limits); `uvicorn "
        f"--factory bench/exchange_server.py:create` runs {args.workers} worker processes (one "
        "per core), each doing what `imsp serve` does at start-up (`imsp.server.settle`) — "
        "loopback, no TLS. Load comes from a second process, `wrk` (2 threads, "
        "Lua script), with generated prescription records (`imsp.standard.sample`, 处方, "
        f"{20 * args.batch:,} distinct records cycled through, "
        f"{args.record_bytes:,} bytes of JSON each on average); every request carries new business keys, so "
        "every record is a real insert (record row with 7 indexes, version row with 2, log row "
        "with the archived body, all committed durably). Runs, in this order, against each "
        "command's server: "
        f"(1) baseline `POST /bench/echo` — parse the same one-record bodies and answer — at "
        f"{args.connections} connections; (2) single-record uploads at {args.connections} "
        f"connections; (3) {args.batch}-record uploads at {args.batch_connections} connections; "
        f"then (4) baseline for records/s: a raw `COPY` of the same records "
        "(typed columns + JSONB) from one connection into a table `LIKE record INCLUDING ALL`. "
        f"{args.duration} s per run after a 3 s warm-up; latencies are wrk's; CPU is the share of "
        "one core used by each group of processes during the run (from `/proc`; the PostgreSQL "
        "group is every `postgres` process on the machine).",
        "",
        f"**Machine.** {host}. Compare figures only within one run: other work on the machine "
        "(see its load average) takes CPU from server, PostgreSQL and wrk alike, and a group's "
        "CPU share can come out negative when other `postgres` processes end during a run.",
        "",
        "| command | run | requests/s | records/s | p50 | p90 | p99 | errors | CPU (server · PostgreSQL · wrk) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for r, per in zip(result.runs, (1, 1, args.batch), strict=True):
            label = {
                "echo": "baseline: trivial JSON endpoint",
                "single": "single-record uploads",
                "batch": f"{args.batch}-record uploads",
            }[r.name]
            lines.append(
                f"| {_command_label(result.command, args)} | {label} | {r.rps:,.0f} | "
                f"{r.rps * per:,.0f} | {r.p50:.1f} ms | {r.p90:.1f} ms | {r.p99:.1f} ms | "
                f"{r.errors} | {_cpu(r)} |"
            )
    lines += [
        f"| — | baseline: raw COPY, one connection | — | {copy_rate:,.0f} | — | — | — | — | — |",
        "",
    ]
    for result in results:
        echo, single, batched = result.runs
        name = _command_label(result.command, args)
        lines += [
            f"**Against the targets, {name}.** Single-record uploads: {single.rps:,.0f}/s "
            f"({single.rps / echo.rps:.0%} of the trivial endpoint on the same server), p99 "
            f"{single.p99:.1f} ms — target ≥ {TARGET_SINGLE:,}/s with p99 < {TARGET_P99_MS} ms: "
            f"{ok(single.rps >= TARGET_SINGLE and single.p99 < TARGET_P99_MS)}. "
            f"{args.batch}-record batches: {result.records_s:,.0f} records/s "
            f"({result.records_s / copy_rate:.0%} of raw COPY) — target ≥ "
            f"{TARGET_RECORDS:,} records/s: {ok(result.records_s >= TARGET_RECORDS)}. "
            "Where the CPU goes (CPU time of each group ÷ work done): single-record upload: "
            f"server {_per(single, 'server', 1)} µs, PostgreSQL {_per(single, 'postgres', 1)} µs, "
            f"wrk {_per(single, 'wrk', 1)} µs per request (trivial endpoint: server "
            f"{_per(echo, 'server', 1)} µs); {args.batch}-record upload: server "
            f"{_per(batched, 'server', args.batch)} µs, PostgreSQL "
            f"{_per(batched, 'postgres', args.batch)} µs, wrk {_per(batched, 'wrk', args.batch)} "
            "µs per record, so 2 cores allow at most "
            f"{2e6 / sum(_per_f(batched, k, args.batch) for k in batched.cpu):,.0f} records/s.",
            "",
        ]
    lines += [
        "One record costs about as much in PostgreSQL alone (parsing the ~2 KB document into "
        "JSONB, the heap row, 7 indexes, the version row and its 2 indexes, WAL, all durable) as "
        "the whole 20,000 records/s budget allows. `imsp serve` is one process: on 2 cores it "
        "leaves the second core to PostgreSQL and wrk; the multi-worker command uses both for "
        "the server. Before issue 16 item 5, `imsp serve`'s listening socket lacked "
        "`IPPROTO_TCP`, so TCP_NODELAY was never set and every keep-alive response waited "
        "~40 ms for a delayed ACK (595 single-record uploads/s against 3,759/s under uvicorn, "
        "measured by the issue's reporter).",
        "",
        NOTES,
        "",
        CEILING,
        "",
    ]
    text = DOC.read_text("utf-8") if DOC.exists() else "# Performance\n\n"
    start = text.find(SECTION)
    body = "\n".join(lines)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + ("\n" + text[end + 1 :] if end >= 0 else "")
    DOC.write_text(text.rstrip("\n") + "\n", "utf-8")


if __name__ == "__main__":
    main()
