"""State the server processes share: ONE seam, chosen once from the settings (``open_state``).

Without ``IMSP_REDIS_URL`` every process keeps this state in its own memory (``MemoryState``,
the single-node behaviour); with it, the state lives in Redis (``imsp.shared_redis.RedisState``)
and N nodes behave as one. Callers never ask which one they have. The parts:

* ``window(name, limit=…)`` — sliding windows of failures (the exchange's rate limits,
  ``exchange/tokens.py``): ``limit`` failures inside ``window`` seconds limit a key until the
  oldest one leaves the window;
* ``delays`` — escalating delays of failed attempts, never a lock-out (portal sign-in,
  ``auth/throttle.py``);
* ``revocations`` — when token caches must be dropped (a credential revoked, tokens revoked):
  ``announce()`` after the revocation committed; a verifier keeps the ``generation`` it saw
  before reading the database and uses a cached grant only while the generation is unchanged
  and ``trusted()`` holds (the cache may be used at all);
* ``lock(name, ttl)`` — a short-lived named lock that is *tried*, never waited for: the holder
  does the work, the others skip it (the supervision worker's idle chores).

Times are the callers' (``Clock``) seconds, so tests with a frozen clock behave the same on both
implementations.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from imsp.config import Settings

__all__ = [
    "Allowance",
    "Counted",
    "Delays",
    "MemoryDelays",
    "MemoryRevocations",
    "MemoryState",
    "Revocations",
    "SharedState",
    "SlidingWindow",
    "Window",
    "open_state",
]


# --------------------------------------------------------------------------- the protocols


class Window(Protocol):
    """A sliding window of failures per key."""

    limit: int
    window: float

    async def retry_after(self, keys: Sequence[str], now: float) -> int:
        """Seconds until every key of ``keys`` may try again (the longest wait); 0: none is
        limited."""
        ...

    async def fail(self, keys: Sequence[str], now: float) -> int:
        """Record one failure of each key at ``now``; the most failures a key now has in the
        window (at most ``limit``)."""
        ...


@dataclass(frozen=True, slots=True)
class Allowance:
    free: int  # failures before the first delay
    base: float  # first delay, seconds
    cap: float  # longest delay, seconds


@dataclass(frozen=True, slots=True)
class Counted:
    """One key an attempt counts under."""

    key: str
    allowance: Allowance
    group: str = ""  # ``forget(group)`` clears every key of the group
    drop_on_success: bool = False  # a success drops the key (else it only takes one failure back)


class Delays(Protocol):
    """Escalating delays: past its allowance a key must wait ``base`` seconds, doubling with
    each further failure, at most ``cap``. A key without failures for ``forget_after`` seconds
    starts afresh."""

    async def attempt(self, keys: Sequence[Counted], now: float) -> float:
        """``0.0`` — admitted, and counted as a failure under every key at once (until
        ``succeeded``) — or the seconds the attempt must still wait (nothing counted)."""
        ...

    async def succeeded(self, keys: Sequence[Counted]) -> None:
        """The admitted attempt was right: take its failure back (``drop_on_success`` keys go)."""
        ...

    async def forget(self, group: str) -> None:
        """Clear every key of ``group`` (the explicit unlock)."""
        ...


class Revocations(Protocol):
    @property
    def generation(self) -> int:
        """Changes whenever cached grants may have been revoked."""
        ...

    def trusted(self) -> bool:
        """Whether a cached grant may be used at all (else: ask the database every time)."""
        ...

    async def announce(self) -> bool:
        """Tell every node that grants were revoked (call after the commit); ``False`` if the
        other nodes could not be told (they stop trusting their caches within
        ``token_cache_seconds`` anyway)."""
        ...


class SharedState(Protocol):
    kind: str  # "memory" | "redis" (for logs and /readyz only; callers never branch on it)
    revocations: Revocations
    delays: Delays

    def window(self, name: str, *, limit: int, window: float = 60.0) -> Window: ...

    def lock(self, name: str, *, ttl: float) -> AbstractAsyncContextManager[bool]:
        """``async with state.lock("x", ttl=30) as held:`` — ``held`` says whether this caller
        got the lock (the lock expires after ``ttl`` seconds even if its holder dies)."""
        ...

    async def start(self) -> None:
        """Start background work (the Redis state's revocation listener); idempotent."""
        ...

    async def ping(self) -> bool:
        """Whether the shared store answers (always ``True`` in memory)."""
        ...

    async def close(self) -> None: ...


def open_state(settings: Settings) -> SharedState:
    """The shared state the settings ask for: Redis with ``redis_url``, else process memory."""
    if settings.redis_url:
        from imsp.shared_redis import RedisState

        return RedisState(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryState()


# --------------------------------------------------------------------------- in memory


class SlidingWindow:
    """In-process sliding window (synchronous core of ``MemoryWindow``); memory stays bounded
    because stale keys are pruned whenever the table grows past ``max_keys``."""

    def __init__(self, *, limit: int, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until ``key`` may try again; 0 when it is not limited."""
        hits = self._hits.get(key)
        if not hits:
            return 0
        self._expire(hits, now)
        if len(hits) < self.limit:
            return 0
        return max(1, math.ceil(hits[0] + self.window - now))

    def fail(self, key: str, now: float) -> int:
        """Record one failure of ``key`` at ``now``; the failures now in the window (at most
        ``limit``)."""
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        self._expire(hits, now)
        hits.append(now)
        while len(hits) > self.limit:
            hits.popleft()
        return len(hits)

    def _expire(self, hits: deque[float], now: float) -> None:
        edge = now - self.window
        while hits and hits[0] <= edge:
            hits.popleft()

    def _prune(self, now: float) -> None:
        for key in list(self._hits):
            hits = self._hits[key]
            self._expire(hits, now)
            if not hits:
                del self._hits[key]
        if len(self._hits) >= self.max_keys:  # still full of live keys: forget the oldest half
            for key in list(self._hits)[: self.max_keys // 2]:
                del self._hits[key]


class MemoryWindow:
    def __init__(self, *, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self.core = SlidingWindow(limit=limit, window=window)

    async def retry_after(self, keys: Sequence[str], now: float) -> int:
        return max((self.core.retry_after(k, now) for k in keys), default=0)

    async def fail(self, keys: Sequence[str], now: float) -> int:
        return max((self.core.fail(k, now) for k in keys), default=0)


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0  # time of the last failure
    until: float = 0.0  # no attempt before this time


def delay_after(failures: int, allowance: Allowance) -> float | None:
    """The delay a key with ``failures`` must wait, or ``None`` while it is within its allowance."""
    over = failures - allowance.free
    if over < 0:
        return None
    return min(allowance.cap, allowance.base * 2.0 ** min(over, 30))


class MemoryDelays:
    """``Delays`` in process memory, bounded to ``max_keys``."""

    def __init__(self, *, forget_after: float = 3600.0, max_keys: int = 100_000) -> None:
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._counts: dict[str, _Count] = {}
        self._groups: dict[str, set[str]] = {}

    async def attempt(self, keys: Sequence[Counted], now: float) -> float:
        return self.attempt_now(keys, now)

    def attempt_now(self, keys: Sequence[Counted], now: float) -> float:
        longest = 0.0
        for k in keys:
            count = self._counts.get(k.key)
            if count is not None and count.until > now:
                longest = max(longest, count.until - now)
        if longest > 0:
            return longest
        if len(self._counts) >= self.max_keys:
            self._sweep(now)
        for k in keys:
            count = self._counts.get(k.key)
            if count is None or now - count.last > self.forget_after:
                count = self._counts[k.key] = _Count()
                if k.group:
                    self._groups.setdefault(k.group, set()).add(k.key)
            count.failures += 1
            count.last = now
            delay = delay_after(count.failures, k.allowance)
            if delay is not None:
                count.until = now + delay
        return 0.0

    async def succeeded(self, keys: Sequence[Counted]) -> None:
        for k in keys:
            count = self._counts.get(k.key)
            if count is None:
                continue
            count.failures -= 1
            if k.drop_on_success or count.failures <= 0:
                del self._counts[k.key]
            elif count.failures < k.allowance.free:
                count.until = 0.0

    async def forget(self, group: str) -> None:
        for key in self._groups.pop(group, set()):
            self._counts.pop(key, None)

    def _sweep(self, now: float) -> None:
        stale = [k for k, c in self._counts.items() if now - c.last > self.forget_after]
        for key in stale:
            del self._counts[key]
        if len(self._counts) >= self.max_keys:  # still full: drop the oldest half
            oldest = sorted(self._counts, key=lambda k: self._counts[k].last)
            for key in oldest[: len(oldest) // 2]:
                del self._counts[key]
        for group in list(self._groups):
            keys = self._groups[group] & self._counts.keys()
            if keys:
                self._groups[group] = keys
            else:
                del self._groups[group]


class MemoryRevocations:
    """One process: an announcement drops this process's caches at once; other processes'
    caches expire after ``token_cache_seconds`` (the single-node behaviour)."""

    def __init__(self) -> None:
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def trusted(self) -> bool:
        return True

    async def announce(self) -> bool:
        self._generation += 1
        return True


class MemoryState:
    """The single-node shared state: everything in this process's memory."""

    kind = "memory"

    def __init__(self) -> None:
        self.revocations: Revocations = MemoryRevocations()
        self.delays: Delays = MemoryDelays()
        self._locks: dict[str, tuple[str, float]] = {}

    def window(self, name: str, *, limit: int, window: float = 60.0) -> Window:
        return MemoryWindow(limit=limit, window=window)

    def lock(self, name: str, *, ttl: float) -> AbstractAsyncContextManager[bool]:
        return self._lock(name, ttl)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float) -> AsyncIterator[bool]:
        token = secrets.token_hex(8)
        now = time.monotonic()
        held = self._locks.get(name)
        if held is not None and held[1] > now:
            yield False
            return
        self._locks[name] = (token, now + ttl)
        try:
            yield True
        finally:
            if self._locks.get(name, ("", 0.0))[0] == token:
                del self._locks[name]

    async def start(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        await asyncio.sleep(0)
