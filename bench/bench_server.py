"""How the multi-process server commands compare on the trivial endpoint: memory (PSS of every
process of the server), one keep-alive connection's round trip (TCP_NODELAY), and wrk's
requests/s with the server's CPU time per request.

Servers, each with ``--workers N`` on one port, the exchange app on a fresh SQLite database:

* ``prefork``  — ``imsp serve exchange --workers N`` (``imsp.prefork``, the production command);
* ``uvicorn``  — ``uvicorn --factory exchange_server:create --workers N`` (uvloop, httptools);
* ``granian``  — ``granian --interface asgi --factory --workers N`` when granian is installed.

Run: ``.venv/bin/python bench/bench_server.py [--workers 2] [--duration 8]`` (needs ``wrk``).
Upload figures (single records and batches on PostgreSQL) come from ``bench/bench_ingest.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '[{"recipeID":"RX-1","doctorName":"张医生","totalFee":"12.50"}]'
"""


def command(name: str, port: int, workers: int) -> list[str]:
    py = sys.executable
    if name == "prefork":
        return [py, "-m", "imsp.cli.main", "serve", "exchange", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers)]  # fmt: skip
    if name == "uvicorn":
        return [py, "-m", "uvicorn", "--factory", "exchange_server:create", "--app-dir",
                str(ROOT / "bench"), "--host", "127.0.0.1", "--port", str(port), "--workers",
                str(workers), "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
                "--http", "httptools"]  # fmt: skip
    return [py, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning",
            "--working-dir", str(ROOT / "bench"), "exchange_server:create"]  # fmt: skip


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def measure(name: str, port: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | {
        "IMSP_DATA_DIR": str(workdir / "var"),
        "IMSP_EXCHANGE__BENCH_ECHO": "true",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        command(name, port, args.workers),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/bench/echo"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(2)
        pids = tree(proc.pid)
        pss = sum(pss_kb(p) for p in pids) / 1024
        with httpx.Client() as c:
            c.post(url, content=b"[1]", headers={"content-type": "application/json"})
            t = time.perf_counter()
            for _ in range(200):
                c.post(url, content=b"[1]", headers={"content-type": "application/json"})
            rtt = (time.perf_counter() - t) / 200 * 1000
        script = workdir / "echo.lua"
        script.write_text(LUA)
        wrk = ["wrk", "-t2", "-c32", "-s", str(script), url]
        subprocess.run([*wrk[:1], "-d3s", *wrk[1:]], capture_output=True, check=True)
        before = cpu_seconds(tree(proc.pid))
        done = subprocess.run(
            [*wrk[:1], f"-d{args.duration}s", *wrk[1:]], capture_output=True, text=True, check=True
        )
        cpu = cpu_seconds(tree(proc.pid)) - before
        rps = float(next(ln for ln in done.stdout.splitlines() if "Requests/sec" in ln).split()[1])
        return {
            "pss_mb": pss,
            "processes": len(pids),
            "rtt_ms": rtt,
            "rps": rps,
            "cpu_us": cpu / (rps * args.duration) * 1e6,
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--port", type=int, default=18870)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    names = ["prefork", "uvicorn"] + (["granian"] if importlib.util.find_spec("granian") else [])
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.workers} workers each")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")}
        env["IMSP_DATA_DIR"] = str(workdir / "var")
        subprocess.run(
            [sys.executable, "-m", "imsp.cli.main", "db", "upgrade"], env=env, check=True
        )
        for name in names:
            r = measure(name, args.port, args, workdir)
            print(
                f"{name:8} PSS {r['pss_mb']:6.0f} MB in {r['processes']:.0f} processes · "
                f"keep-alive round trip {r['rtt_ms']:.2f} ms · echo {r['rps']:,.0f} req/s · "
                f"server CPU {r['cpu_us']:.0f} µs/request"
            )


if __name__ == "__main__":
    main()
