"""CPU-heavy work off the event loop, bounded: ``await offload(fn, *args, **kwargs)``.

One event loop serves every hospital's uploads and every portal user. A call that holds the CPU
for tens of milliseconds or more — argon2 password hashing, parsing an Excel file, rendering a
PDF, building a report — would stall all of them. ``offload`` runs such a call on a worker
thread of a pool shared by the process, so the loop keeps answering.

Yielding: worker threads run at the lowest scheduling priority (nice +19; on Linux niceness is
per thread, and threads a library starts from them, such as argon2's lanes, inherit it), so
while they compute, the event loop thread and the database still get the CPU first.

Bounded: at most ``LIMIT`` calls (the CPUs this process may use) run at a time; further callers
wait asynchronously (cancellable, no thread held) for a free slot, so a flood of requests that
each need CPU queues up instead of oversubscribing the cores. Threads suit work that releases the
GIL (argon2 does) and bounded pure-Python work (Excel parsing with a row limit): the loop still
gets the interpreter between the worker's bytecodes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: How many offloaded calls may run at once in this process.
LIMIT: Final = _cpus()
#: Worker threads are named ``imsp-cpu_N`` (tests check that work ran there, not on the loop).
THREAD_PREFIX: Final = "imsp-cpu"

#: How much nicer than the process the worker threads are.
NICENESS: Final = 19


def _yield_to_the_loop() -> None:
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority as the loop
        pass


_pool = ThreadPoolExecutor(
    max_workers=LIMIT, thread_name_prefix=THREAD_PREFIX, initializer=_yield_to_the_loop
)
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slots_of(loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(LIMIT)
    return slots


async def offload(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` on a worker thread, at most ``LIMIT`` at a time; return its
    result or raise its exception. Use it for any call that may hold the CPU for more than a
    millisecond or so."""
    loop = asyncio.get_running_loop()
    async with _slots_of(loop):
        return await loop.run_in_executor(_pool, functools.partial(fn, *args, **kwargs))
