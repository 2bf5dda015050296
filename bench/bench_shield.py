"""Benchmark: what shielding an upload's write from cancellation costs (not a test).

    .venv/bin/python bench/bench_shield.py [--n 50000]

The upload handler (``imsp.exchange.api``) runs ``ingest`` in a task and awaits it through
``asyncio.shield``, so a request cancelled while its write runs lets the write finish and its
records be counted. This measures that per-upload overhead on uvloop: CPU time of awaiting a
trivial coroutine directly vs through ``ensure_future`` + ``shield``, interleaved, twice each.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import uvloop


async def _work() -> int:
    await asyncio.sleep(0)
    return 1


async def _direct() -> int:
    return await _work()


async def _shielded() -> int:
    return await asyncio.shield(asyncio.ensure_future(_work()))


async def _main(n: int) -> None:
    ways: list[tuple[str, Callable[[], Awaitable[int]]]] = [
        ("direct", _direct),
        ("shielded", _shielded),
    ]
    for name, way in ways * 2:
        t0 = time.process_time()
        for _ in range(n):
            await way()
        print(f"{name:9} {(time.process_time() - t0) / n * 1e6:.2f} µs CPU per await")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    uvloop.run(_main(parser.parse_args().n))


if __name__ == "__main__":
    main()
