"""``imsp.cpu.offload``: CPU-heavy calls run on worker threads, at most ``LIMIT`` at a time."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from imsp import cpu


def test_offload_runs_off_the_loop_bounded_to_the_cores_and_passes_results_and_errors() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    names: set[str] = set()
    nice: set[int] = set()

    def work(n: int, *, scale: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            names.add(threading.current_thread().name)
            nice.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        time.sleep(0.02)
        with lock:
            running -= 1
        return n * scale

    def boom() -> None:
        raise ValueError("坏文件")

    async def main() -> list[int]:
        results = await asyncio.gather(
            *(cpu.offload(work, n, scale=3) for n in range(4 * cpu.LIMIT))
        )
        with pytest.raises(ValueError, match="坏文件"):
            await cpu.offload(boom)
        return list(results)

    assert asyncio.run(main()) == [n * 3 for n in range(4 * cpu.LIMIT)]
    assert 1 <= peak <= cpu.LIMIT
    assert names and all(name.startswith(cpu.THREAD_PREFIX) for name in names)
    # The workers yield the CPU to the event loop's thread.
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert nice == {min(19, base + cpu.NICENESS)}  # the kernel caps niceness at 19
