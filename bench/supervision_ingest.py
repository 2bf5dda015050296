"""``bench_supervision.py ingest`` (not a test): the exchange service loaded by wrk with
single-record uploads, in legs alternating supervision off and on, with the worker beside it;
records/s, CPU per process group, change-feed depth and drain time per leg."""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

import bench_ingest as bi
import supervision_data as sd
import world_stream as ws

ROOT = Path(__file__).resolve().parents[1]

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
    exchange role never runs the worker: that is ``imsp serve worker``, started by
    :func:`_leg` in the on legs only — a ``receipts`` leg has the lookups and no worker, as
    an exchange node has when the worker runs on cores of its own)."""
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
    """``VACUUM ANALYZE`` the database when the cluster runs with autovacuum off (as this
    machine's does), standing in for what autovacuum would have done between two legs: without
    statistics the planner takes the tables for empty and reads the record table by
    ``(institution, dataset, business_time)`` instead of the business-key index, a cost that
    grows with every upload; without vacuum the change feed the worker emptied before an on leg
    (:func:`_settle`) holds every acknowledged change as a dead row its claims wade through."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SHOW autovacuum").fetchone() != ("off",):
            return False
        conn.execute("VACUUM ANALYZE")
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


_serials = itertools.count(1)


def _world_stream(workdir: Path, url: str, count: int) -> Stream:
    """``--data world``: :func:`supervision_data.world_of` written as a wrk stream of renamed copies
    (``world_stream``). The partner hospitals of its telemedicine records are registered
    (R42); the institution's own record (机构信息) and its agreements are uploaded once before
    each leg rather than once per copy (``world_stream.ONCE``)."""
    from imsp.standard.model import load_standard

    world = sd.world_of(count)
    with psycopg.connect(url, autocommit=True) as conn:
        sd.register_partners(conn, world)
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
    if on:
        _settle(args, url, stream.workdir)
    _analyze(url)
    lookups = mode in ("on", "receipts")
    with _server(url, args.port, args.workers, stream.workdir, lookups) as proc:
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


def _settle(args: argparse.Namespace, url: str, workdir: Path) -> None:
    """Empty the change feed before an on leg (the worker alone, not measured): the changes of
    the fill and of the off and receipts legs would otherwise be evaluated during the on leg,
    its worker working off another leg's uploads on the cores the leg measures."""
    if not _depth(url):
        return
    worker = subprocess.Popen(
        bi.server_argv(WORKER, args.port), env=_env(url, workdir), cwd=ROOT,
        start_new_session=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _started(worker)
        _drain(url, 1800)
    finally:
        _stop(worker)


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
        return self.share("on")

    def share(self, mode: str) -> float:
        """The ``mode`` legs' records/s over the off legs' (summed)."""
        off = sum(leg.run.rps for m, leg, _ in self.legs if m == "off")
        of_mode = sum(leg.run.rps for m, leg, _ in self.legs if m == mode)
        return of_mode / off if off else 0.0


def outcome(args: argparse.Namespace, data: str) -> Outcome:
    with bi.fresh_database(args.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        args.app_id, args.secret = bi.prepare(url)
        stream = _stream(data, Path(tmp), url, args.world_count)
        # off, on, on, off, off, on …: each pair's order alternates so drift in the machine's
        # load weighs on both modes alike
        pair = ("off", "receipts", "on") if args.receipts else ("off", "on")
        order = [m for r in range(args.rounds) for m in (pair if r % 2 == 0 else pair[::-1])]
        if args.fill:
            # a production database holds data and its statistics: without a fill the first
            # leg would run on plans made for the few rows uploaded "once", ANALYZEd before it
            filled = _leg(args, url, stream, "off", args.fill)
            print(f"{data} fill: {filled.run.rps:,.1f} records/s for {args.fill} s", flush=True)
        legs: list[tuple[str, Leg, str]] = []
        for mode in order:
            before = bi.load_average()
            legs.append((mode, _leg(args, url, stream, mode, args.duration), before))
            leg = legs[-1][1]
            print(f"{data} {mode}: {leg.run.rps:,.1f} records/s, {leg.rejected} rejected, "
                  f"load before {before}", flush=True)  # fmt: skip
        stream_leg = None
        if args.stream:
            before = bi.load_average()
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
