"""Benchmark: what Prometheus metrics and JSON access logs cost the upload path (not a test).

    .venv/bin/python bench/bench_metrics.py [--seconds 8] [--rounds 3] [--write]

1. In-process: the cost of the meter calls one single-record upload makes (its service's
   counter and histogram, one pass over the receipt, the access-log check) — ``timeit`` over
   many calls, plus the cost of one JSON access line when the access log is on.
2. End to end, on PostgreSQL over loopback: ``imsp serve`` (the production command; supervision
   worker off so only request handling is on the CPU) in three variants — metrics off
   (``IMSP_METRICS__ENABLED=false``), metrics on (the default), metrics on plus
   ``IMSP_LOG_FORMAT=json`` (stderr to /dev/null) — loaded by ``wrk`` (8 connections) with
   single-record prescription uploads, each request a new business key. The variants alternate,
   ``--rounds`` times each; reported: the server process's CPU time per request (``/proc``,
   median over rounds), requests/s and p99 — compared within the same run only.

``--write`` puts the figures into ``docs/performance.md`` (its section "指标与日志的开销" only).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import io
import logging
import os
import platform
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import (
    LUA,
    ORG,
    _cpu_of,
    fresh_database,
    prepare,
    wait_healthy,
    write_section,
)

SECTION = "## 指标与日志的开销 / Metrics and logging overhead"

VARIANTS: dict[str, dict[str, str]] = {
    "metrics off": {"IMSP_METRICS__ENABLED": "false"},
    "metrics on": {},
    "metrics on + JSON logs": {"IMSP_LOG_FORMAT": "json"},
}


# --------------------------------------------------------------------------- in-process


def micro() -> dict[str, float]:
    """µs per call of what one single-record upload adds."""
    from prometheus_client import CollectorRegistry

    from imsp import logs
    from imsp.config import Settings
    from imsp.exchange.meters import ExchangeMeters
    from imsp.standard.model import load_standard

    meter = ExchangeMeters(CollectorRegistry()).upload(load_standard().dataset("prescription"))
    results = [
        {"index": 0, "key": "K", "msgCode": 200, "msg": "成功", "errors": [], "warnings": []}
    ]
    n = 200_000

    def request() -> None:
        meter.request(200, 0.004)
        meter.receipt(results)
        logs.ACCESS.isEnabledFor(logging.INFO)

    per_request = min(timeit.repeat(request, number=n, repeat=5)) / n * 1e6
    sink = io.StringIO()
    handler = logs.configure(Settings(log_format="json", node_name="bench"), stream=sink)
    fields = {
        "exchange_id": str(uuid.uuid4()),
        "service": "uploadPrescriptionInfo",
        "dataset": "prescription",
        "app_id": "imsp_app_0123456789abcdef",
        "channel": "production",
        "client": "127.0.0.1",
        "code": 200,
        "ms": 3.21,
        "bytes": 1843,
        "total": 1,
        "success": 1,
        "fail": 0,
        "dry_run": False,
    }

    def line() -> None:
        logs.access("uploadPrescriptionInfo 200", fields)
        sink.seek(0)
        sink.truncate()

    m = 20_000
    per_line = min(timeit.repeat(line, number=m, repeat=5)) / m * 1e6
    logging.getLogger().removeHandler(handler)
    return {"meters": per_request, "json_line": per_line}


# --------------------------------------------------------------------------- in-process ASGI


def asgi_ab(blocks: int, per_block: int) -> dict[str, float]:
    """Process CPU µs per single-record upload through the whole exchange app (ASGI, no sockets,
    SQLite in a temporary directory), metrics off / on / on + JSON access lines; variants
    alternate block by block and the best block of each counts (least disturbed by the other
    processes on the machine)."""
    from imsp import logs
    from imsp.app import create_exchange_app
    from imsp.auth.credentials import create_credential
    from imsp.clock import SystemClock
    from imsp.config import MetricsSettings, Settings
    from imsp.standard.sample import generate
    from imsp.storage import migrate
    from imsp.storage.db import Database

    recs = generate("prescription", 200, seed=11, org_code=ORG)
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp))
        migrate.upgrade(base)
        variants = {
            "metrics off": base.model_copy(update={"metrics": MetricsSettings(enabled=False)}),
            "metrics on": base,
            "metrics on + JSON logs": base,
        }

        async def call(
            app: Any, method: str, path: str, query: bytes, body: bytes, **h: str
        ) -> Any:
            headers = [(k.lower().encode(), v.encode()) for k, v in h.items()]
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                     "query_string": query, "root_path": "", "headers": headers,
                     "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8888)}  # fmt: skip
            sent = False
            chunks: list[bytes] = []

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await app(scope, receive, send)
            return orjson.loads(b"".join(chunks))

        async def run() -> dict[str, float]:
            db = Database(base)
            async with db.session() as s:
                cred = await create_credential(
                    s, org_code=ORG, institution_name="基准测试医院", now=SystemClock().now()
                )
            await db.dispose()
            apps: dict[str, Any] = {}
            tokens: dict[str, str] = {}
            stack = AsyncExitStack()
            for name, settings in variants.items():
                app = apps[name] = create_exchange_app(settings)
                await stack.enter_async_context(app.router.lifespan_context(app))
                q = f"appId={cred.app_id}&appSecret={cred.app_secret}".encode()
                answer = await call(app, "GET", "/auth/accesstoken/create", q, b"")
                tokens[name] = answer["data"]["accessToken"]
            sink = io.StringIO()
            best = dict.fromkeys(variants, float("inf"))
            # the share of the profiled time spent in metering and access lines (a ratio within
            # one profile, so other processes on the machine scale both sides alike)
            profiled = logs.configure(Settings(log_format="json"), stream=sink)
            profile = cProfile.Profile()
            profile.enable()
            for k in range(per_block):
                rec = dict(recs[k % len(recs)], recipeID=f"PROF{os.getpid()}-{k}")
                await call(
                    apps["metrics on"], "POST", "/uploadPrescriptionInfo", b"",
                    orjson.dumps([rec]), accessToken=tokens["metrics on"],
                    **{"Content-Type": "application/json"},
                )  # fmt: skip
            profile.disable()
            logging.getLogger().removeHandler(profiled)
            logs.ACCESS.setLevel(logging.WARNING)
            best["profile share %"] = _share(profile)
            n = 0
            for _ in range(blocks):
                for name in variants:
                    handler: logging.Handler | None = None
                    if name.endswith("JSON logs"):
                        handler = logs.configure(Settings(log_format="json"), stream=sink)
                    started = time.process_time()
                    for _ in range(per_block):
                        n += 1
                        rec = dict(recs[n % len(recs)], recipeID=f"AB{os.getpid()}-{n}")
                        answer = await call(
                            apps[name], "POST", "/uploadPrescriptionInfo", b"",
                            orjson.dumps([rec]), accessToken=tokens[name],
                            **{"Content-Type": "application/json"},
                        )  # fmt: skip
                        assert answer["code"] == 200, answer
                    used = (time.process_time() - started) / per_block * 1e6
                    best[name] = min(best[name], used)
                    if handler is not None:
                        logging.getLogger().removeHandler(handler)
                        logs.ACCESS.setLevel(logging.WARNING)
                    sink.seek(0)
                    sink.truncate()
            await stack.aclose()
            return best

        return asyncio.run(run())


def _share(profile: cProfile.Profile) -> float:
    """Percent of the profile's own time (tottime) spent in metering and logging code."""
    stats = pstats.Stats(profile)
    ours = ("prometheus_client", "imsp/metrics.py", "imsp/logs.py", "exchange/meters.py",
            "logging/__init__.py", "imsp/standard/mask.py")  # fmt: skip
    total = mine = 0.0
    for (filename, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        tottime = row[2]
        total += tottime
        if any(part in filename for part in ours):
            mine += tottime
    return mine / total * 100 if total else 0.0


# --------------------------------------------------------------------------- processes


@contextmanager
def serve(url: str, port: int, workdir: Path, extra: dict[str, str]) -> Iterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | {
        "IMSP_DATABASE_URL": url,
        "IMSP_DATA_DIR": str(workdir / "var"),
        "IMSP_SUPERVISION__WORKER": "false",
        **extra,
    }
    cmd = [sys.executable, "-m", "imsp.cli.main", "serve", "--host", "127.0.0.1",
           "--exchange-port", str(port), "--portal-port", "0"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(proc, port, "imsp serve")
        yield proc.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def bodies(workdir: Path) -> Path:
    from imsp.standard.sample import generate

    recs = generate("prescription", 400, seed=11, org_code=ORG)
    path = workdir / "singles.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps([dict(r, recipeID="@@KEY@@")]) for r in recs) + b"\n")
    (workdir / "upload.lua").write_text(LUA)
    return path


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def load(url: str, body: Path, workdir: Path, seconds: int, pid: int) -> dict[str, float]:
    env = os.environ | {
        "BENCH_DIR": str(workdir),
        "BENCH_BODY": str(body),
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    cmd = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-s", str(workdir / "upload.lua"), url]  # fmt: skip
    before = _cpu_of({pid})
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    cpu = _cpu_of({pid}) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout) (\d+)", out))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    assert p99 is not None
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "us_per_request": cpu / requests * 1e6,
        "p99_ms": float(p99.group(1)) * _UNIT[p99.group(2)],
        "errors": errors,
        "requests": requests,
    }


def end_to_end(admin_url: str, seconds: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp, fresh_database(admin_url) as url:
        workdir = Path(tmp)
        _app_id, _secret = prepare(url)
        body = bodies(workdir)
        port = 18931
        names = list(VARIANTS)
        for r in range(rounds):
            # each round starts with another variant: a slow drift of the machine (other work,
            # the database growing) must not always favour the same one
            for name in names[r % len(names) :] + names[: r % len(names)]:
                extra = VARIANTS[name]
                with serve(url, port, workdir, extra) as pid:
                    base = f"http://127.0.0.1:{port}"
                    answer = httpx.get(
                        f"{base}/auth/accesstoken/create",
                        params={"appId": _app_id, "appSecret": _secret},
                    ).json()
                    if answer["code"] != 200:
                        raise SystemExit(f"no token: {answer}")
                    token = answer["data"]["accessToken"]
                    (workdir / "token.txt").write_text(token + "\n")
                    load(f"{base}/uploadPrescriptionInfo", body, workdir, 2, pid)  # warm-up
                    fig = load(f"{base}/uploadPrescriptionInfo", body, workdir, seconds, pid)
                    out[name].append(fig)
                    print(
                        f"round {r + 1} {name:<24} {fig['rps']:8.0f} req/s  "
                        f"{fig['us_per_request']:6.0f} µs CPU/req  p99 {fig['p99_ms']:.1f} ms"
                        f"  errors {fig['errors']:.0f}",
                        flush=True,
                    )
    return out


# --------------------------------------------------------------------------- report


def report(
    m: dict[str, float],
    ab: dict[str, float],
    runs: dict[str, list[dict[str, float]]],
    args: Any,
) -> str:
    def med(name: str, key: str) -> float:
        return statistics.median(f[key] for f in runs[name])

    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL over loopback; "
        f"`bench/bench_metrics.py --seconds {args.seconds} --rounds {args.rounds}`.",
        "",
        "In-process (timeit, best of 5):",
        "",
        "| what one single-record upload adds | µs |",
        "|---|---|",
        f"| meter calls: service counter + latency histogram + receipt pass + access-log check "
        f"| {m['meters']:.2f} |",
        f"| one JSON access line (when `IMSP_LOG_FORMAT=json`) | {m['json_line']:.2f} |",
        "",
        f"Whole exchange app in-process (ASGI calls, no sockets, SQLite; {args.blocks} blocks of "
        f"{args.per_block} single-record prescription uploads per variant, alternating; the "
        "best block of each; process CPU time):",
        "",
        "| variant | CPU µs / upload | vs metrics off |",
        "|---|---|---|",
        *(
            f"| {name} | {us:.0f} | {(us - ab['metrics off']) / ab['metrics off'] * 100:+.1f} % |"
            for name, us in ab.items()
            if name in VARIANTS
        ),
        "",
        f"Profiled ({args.per_block} uploads, metrics on + JSON access lines, cProfile): "
        f"{ab['profile share %']:.1f} % of the profiled time is in `prometheus_client`, "
        "`imsp.metrics`, `exchange/meters.py`, `imsp.logs`, the masking and the `logging` "
        "module together (cProfile inflates many small calls, so this is an upper bound).",
        "",
        f"1-minute load average at the end: {load:.1f} (other work on the machine disturbs "
        "every figure; compare within one run only).",
        "",
    ]
    base = ab["metrics off"]
    lines += [
        f"**Verdict.** The meter calls of one upload cost {m['meters']:.1f} µs — "
        f"{m['meters'] / base * 100:.2f} % of the {base:.0f} µs of CPU the whole app spent per "
        f"single-record upload with metrics off in the same run; a JSON access line adds "
        f"{m['json_line']:.1f} µs ({m['json_line'] / base * 100:.2f} %). The A/B rows above "
        "differ by more than that in either direction because the blocks share the machine with "
        "other work: they bound the overhead, they cannot resolve a few microseconds. How it is "
        "kept small: each upload service's label children are bound once when the app is built "
        "(`exchange/meters.py`; a request does one counter `inc` and one histogram `observe`, "
        "no label lookup or dict building), the receipt is counted in one pass over results "
        "that exist anyway, the access line is built only when the access log is on, and the "
        "generic middleware sits inside the exchange's fast path, so uploads never pass it.",
        "",
    ]
    if not runs:
        return "\n".join(lines) + "\n"
    off = med("metrics off", "us_per_request")
    lines += [
        "End to end: `imsp serve` (supervision worker off), wrk 8 connections, single-record "
        "prescription uploads, each a new business key; medians over the rounds, variants "
        "alternating in the same run, each round starting with the next variant:",
        "",
        "| variant | req/s | server CPU µs / request (rounds: min–max) | vs metrics off "
        "| p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        us = med(name, "us_per_request")
        each = [f["us_per_request"] for f in runs[name]]
        lines.append(
            f"| {name} | {med(name, 'rps'):.0f} | {us:.0f} ({min(each):.0f}–{max(each):.0f}) "
            f"| {(us - off) / off * 100:+.1f} % | {med(name, 'p99_ms'):.1f} "
            f"| {sum(f['errors'] for f in runs[name]):.0f} |"
        )
    lines += [
        "",
        "Server CPU per request rises as the request rate falls (fixed costs of the event loop "
        "and the idle portal are shared by fewer requests), and the request rate here is set by "
        "the other processes on the machine; read a difference between variants only where it "
        "exceeds the min–max spread of the rounds.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="end-to-end rounds (0: skip)")
    p.add_argument("--blocks", type=int, default=8, help="in-process A/B blocks per variant")
    p.add_argument("--per-block", type=int, default=300, help="uploads per block")
    p.add_argument("--database", default=os.environ.get("IMSP_BENCH_DATABASE_URL", ""))
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    admin = args.database or "postgresql://postgres@127.0.0.1:5432/postgres"
    m = micro()
    print(f"meters per upload {m['meters']:.2f} µs, JSON access line {m['json_line']:.2f} µs")
    ab = asgi_ab(args.blocks, args.per_block)
    print("in-process ASGI, best block:", {k: round(v, 1) for k, v in ab.items()})
    runs = end_to_end(admin, args.seconds, args.rounds) if args.rounds else {}
    section = report(m, ab, runs, args)
    print(section)
    if args.write:
        write_section(SECTION, [section.rstrip("\n"), ""])


if __name__ == "__main__":
    main()
