"""The shared state in Redis (``IMSP_REDIS_URL``): N nodes behave as one (``imsp.shared_state``).

Every counter changes in ONE Lua script per call, so concurrent nodes never lose an update and a
burst from several nodes is counted as one client. Keys start with ``settings.redis_prefix``
and expire on their own (no sweeping).

**Revocation: fast, and safe when a message is lost or Redis is gone.** ``announce()`` increments
the epoch key and publishes the new value on a channel. Each node runs one watcher task that

1. applies a published epoch at once (typically a millisecond after the announcement), and
2. reads the epoch key every ``POLL`` (0.25 s): a missed message (a dropped subscription, a
   reconnect) is caught by the next read, so a revocation reaches every node within 0.25 s
   plus one read even without pub/sub;
3. marks its cache *trusted* for ``TRUST`` (0.75 s) after each successful read.

A changed epoch bumps ``generation``; the token verifier uses a cached grant only when it was
loaded under the current generation *and* the cache is trusted, and stores a grant only if the
generation did not change while it was read from the database (so a grant read just before a
revocation is never cached after it). When Redis does not answer, the reads fail, trust runs
out within 0.75 s and every token is checked against the database — the authority, where the
revocation was committed — until Redis answers again (then the generation is bumped once, in
case an announcement was missed). That is the *fail-safe* choice: revocation never depends on
Redis; its loss only costs one indexed query per upload.

**Counters fail open.** While Redis does not answer (a command fails or times out after 0.5 s),
rate limits, sign-in delays and locks fall back to this process (the single-node behaviour) for
``RETRY_AFTER`` seconds before Redis is tried again, with one warning in the log per outage:
correct uploads and sign-ins are never refused because Redis is down.

**Lifecycle: one pool per event loop and process.** ``start()`` (the app's lifespan) makes the
pooled client on the running loop and starts the watcher; ``close()`` on that same loop stops
the watcher (bounded by ``STOP_TIMEOUT``, even when a cancellation is lost inside redis-py)
and closes every pooled connection. Other loops (a CLI command) get a client per call, closed
after it; starting or closing the state from another loop while it runs is refused, since that
loop could neither use nor close its connections. A forked child never touches the parent's
pool: its ``start()`` makes its own. Nothing here waits longer than ``CONNECT_TIMEOUT`` or
``TIMEOUT`` on Redis: missing at start, silent, or restarted mid-run, the state starts, falls
back as above, and uses Redis again (re-subscribing) once it answers. Connections are named
``<prefix><pid>`` so ``CLIENT LIST`` shows which node holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from imsp.shared_state import (
    Counted,
    Delays,
    MemoryDelays,
    MemoryState,
    MemoryWindow,
    Revocations,
    Window,
)

__all__ = ["POLL", "TRUST", "RedisState"]

log = logging.getLogger("imsp.shared")

T = TypeVar("T")

#: Seconds between two reads of the revocation epoch by each node.
POLL = 0.25
#: Seconds a node trusts its token cache after a successful read of the epoch.
TRUST = 0.75
#: Seconds a node keeps to its own memory after Redis failed, before it tries Redis again.
RETRY_AFTER = 1.0
#: Seconds any one Redis command may take before it counts as a failure.
TIMEOUT = 0.5
#: Seconds a new connection may take (longer: a connect cut short can leak its socket).
CONNECT_TIMEOUT = 1.0
#: Seconds ``close()`` waits for the revocation watcher to end before it gives up on it.
STOP_TIMEOUT = 2.0
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

_WINDOW_WAIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local longest = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.6f', now - window))
  if redis.call('ZCARD', key) >= limit then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local wait = math.ceil(tonumber(first[2]) + window - now)
    if wait < 1 then wait = 1 end
    if wait > longest then longest = wait end
  end
end
return longest
"""

_WINDOW_FAIL = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local most = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.6f', now - window))
  redis.call('ZADD', key, ARGV[1], ARGV[4])
  local n = redis.call('ZCARD', key)
  if n > limit then
    redis.call('ZREMRANGEBYRANK', key, 0, n - limit - 1)
    n = limit
  end
  redis.call('PEXPIRE', key, ARGV[5])
  if n > most then most = n end
end
return most
"""

# KEYS: n counted keys, then n group sets; ARGV: now, forget_after, ttl_ms, then per key
# free, base, cap, grouped.
_DELAYS_ATTEMPT = """
local n = #KEYS / 2
local now, forget = tonumber(ARGV[1]), tonumber(ARGV[2])
local longest = 0
for i = 1, n do
  local untl = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  if untl - now > longest then longest = untl - now end
end
if longest > 0 then return string.format('%.6f', longest) end
for i = 1, n do
  local key, a = KEYS[i], 3 + (i - 1) * 4
  local free, base, cap = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local failures, untl = 0, 0
  if redis.call('EXISTS', key) == 1 then
    local last = tonumber(redis.call('HGET', key, 'last') or '0')
    if now - last <= forget then
      failures = tonumber(redis.call('HGET', key, 'failures') or '0')
      untl = tonumber(redis.call('HGET', key, 'until') or '0')
    end
  end
  failures = failures + 1
  local over = failures - free
  if over >= 0 then untl = now + math.min(cap, base * 2 ^ math.min(over, 30)) end
  redis.call('HSET', key, 'failures', failures, 'last', ARGV[1],
             'until', string.format('%.6f', untl))
  redis.call('PEXPIRE', key, ARGV[3])
  if ARGV[a + 4] == '1' then
    redis.call('SADD', KEYS[n + i], key)
    redis.call('PEXPIRE', KEYS[n + i], ARGV[3])
  end
end
return '0'
"""

# ARGV per key: free, drop_on_success
_DELAYS_SUCCEEDED = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local failures = redis.call('HINCRBY', key, 'failures', -1)
    if ARGV[2 * i] == '1' or failures <= 0 then
      redis.call('DEL', key)
    elseif failures < tonumber(ARGV[2 * i - 1]) then
      redis.call('HSET', key, 'until', '0')
    end
  end
end
return 0
"""

_DELAYS_FORGET = """
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return 0
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_ANNOUNCE = """
local epoch = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], epoch)
return epoch
"""


_SCRIPTS = {
    "window_wait": _WINDOW_WAIT,
    "window_fail": _WINDOW_FAIL,
    "attempt": _DELAYS_ATTEMPT,
    "succeeded": _DELAYS_SUCCEEDED,
    "forget": _DELAYS_FORGET,
    "unlock": _UNLOCK,
    "announce": _ANNOUNCE,
}


def _register(client: aioredis.Redis) -> dict[str, Any]:
    return {name: client.register_script(src) for name, src in _SCRIPTS.items()}


def _short(key: str) -> str:
    """Keys carry addresses and appIds as sent; a long one is hashed (bounded key size)."""
    if len(key) <= 120:
        return key
    return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class RedisState:
    """``SharedState`` in Redis (see the module docstring for the exact semantics)."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "imsp:") -> None:
        self.prefix = prefix
        self.url = url
        self._client: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0  # the process the pooled client was made in (a forked child never uses it)
        self._scripts: dict[str, Any] = {}
        self._down_until = 0.0
        self._fallback = MemoryState()
        self._revocations = RedisRevocations(self)
        self.revocations: Revocations = self._revocations
        self.delays: Delays = RedisDelays(self)

    # ------------------------------------------------------------------ the connection

    def _new_client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )

    @property
    def client_name(self) -> str:
        """The name each connection gives itself (``CLIENT LIST`` shows whose it is)."""
        return f"{self.prefix}{os.getpid()}"

    def _owns_pool(self) -> bool:
        """Whether the pooled client may be used here: the loop it was made on, in the process
        it was made in (a pre-forked child inherits its parent's objects, never its sockets)."""
        return (
            self._client is not None
            and self._pid == os.getpid()
            and self._loop is asyncio.get_running_loop()
        )

    @asynccontextmanager
    async def connected(self) -> AsyncIterator[tuple[aioredis.Redis, dict[str, Any]]]:
        """A client and its scripts. On the event loop the state was started on (the app's),
        the long-lived pooled client; on any other loop (a CLI command, a test driving the app
        without its lifespan) or in a forked child, a client of its own, closed afterwards —
        connections belong to one loop of one process and must not outlive it."""
        if self._owns_pool():
            assert self._client is not None
            yield self._client, self._scripts
            return
        client = self._new_client()
        try:
            yield client, _register(client)
        finally:
            with contextlib.suppress(*_ERRORS):
                await client.aclose()

    # ------------------------------------------------------------------ failing open

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        async with self.connected() as (_, scripts):
            return await scripts[name](keys=list(keys), args=list(args))

    async def guarded(
        self, what: str, call: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]
    ) -> T:
        """``call()`` on Redis; while Redis is failing, ``fallback()`` in this process."""
        if time.monotonic() < self._down_until:
            return await fallback()
        try:
            return await call()
        except _ERRORS as exc:
            self.failed(what, exc)
            return await fallback()

    def failed(self, what: str, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning(
                "shared state: Redis did not answer (%s: %s); using this process's memory "
                "for rate limits and sign-in delays, and the database for every token",
                what,
                type(exc).__name__,
            )
        self._down_until = time.monotonic() + RETRY_AFTER

    # ------------------------------------------------------------------ the parts

    def window(self, name: str, *, limit: int, window: float = 60.0) -> Window:
        return RedisWindow(self, name, limit=limit, window=window)

    def lock(self, name: str, *, ttl: float) -> AbstractAsyncContextManager[bool]:
        return self._lock(name, ttl)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float) -> AsyncIterator[bool]:
        """Tried once: ``SET NX PX``; released only by its holder (compare-and-delete). If Redis
        does not answer the lock is held locally — the work it guards must itself be safe
        when done twice (it only spares duplicate work)."""
        key = self.key("lock", name)
        token = secrets.token_hex(16)
        ms = max(1, math.ceil(ttl * 1000))
        acquired = False
        held: bool | None = None
        if time.monotonic() >= self._down_until:
            try:
                async with self.connected() as (client, _):
                    acquired = bool(await client.set(key, token, nx=True, px=ms))
                held = acquired
            except _ERRORS as exc:
                self.failed(f"lock {name}", exc)
        if held is None:
            async with self._fallback.lock(name, ttl=ttl) as local:
                yield local
            return
        try:
            yield held
        finally:
            if acquired:
                with contextlib.suppress(*_ERRORS):  # else it expires after ttl
                    await self.script("unlock", [key], [token])

    async def start(self) -> None:
        """Bind ONE pooled client to this event loop and start the revocation watcher
        (idempotent on the same loop). Never blocks longer than a connect timeout: when Redis
        does not answer, the state starts all the same and falls back (module docstring).

        A state started on another loop must be closed there first — its connections cannot
        be closed from here, and replacing them silently would leak them."""
        loop = asyncio.get_running_loop()
        self._forget_inherited()
        if self._client is not None and self._loop is not loop:
            raise RuntimeError(
                "RedisState is started on another event loop; close() it there before start()"
            )
        if self._client is None:
            self._client = self._new_client()
            self._scripts = _register(self._client)
            self._loop = loop
            self._pid = os.getpid()
        await self._revocations.start()

    async def ping(self) -> bool:
        try:
            async with self.connected() as (client, _):
                return bool(await client.ping())
        except _ERRORS:
            return False

    async def close(self) -> None:
        """Stop the watcher and close every pooled connection (bounded: see ``STOP_TIMEOUT``).
        Call it on the loop ``start()`` ran on; in a forked child the inherited client is only
        forgotten (its sockets are the parent's)."""
        self._forget_inherited()
        if self._client is not None and not self._owns_pool():
            raise RuntimeError("RedisState.close() must run on the event loop start() ran on")
        await self._revocations.stop()
        client, self._client = self._client, None
        self._loop = None
        self._scripts = {}
        if client is not None:
            with contextlib.suppress(*_ERRORS):
                await client.aclose()

    def _forget_inherited(self) -> None:
        """In a forked child: drop the parent's client and watcher task without any I/O (their
        sockets and loop are the parent's; closing them here would cut the parent off)."""
        if self._client is not None and self._pid != os.getpid():
            self._client, self._loop, self._scripts = None, None, {}
            self._revocations.forget_task()


class RedisWindow:
    def __init__(self, state: RedisState, name: str, *, limit: int, window: float) -> None:
        self.state = state
        self.name = name
        self.limit = limit
        self.window = window
        self.local = MemoryWindow(limit=limit, window=window)
        self._ttl_ms = math.ceil((window + 1.0) * 1000)

    def _keys(self, keys: Sequence[str]) -> list[str]:
        return [self.state.key("w", self.name, _short(k)) for k in keys]

    async def retry_after(self, keys: Sequence[str], now: float) -> int:
        args = [repr(now), repr(self.window), self.limit]

        async def call() -> int:
            return int(await self.state.script("window_wait", self._keys(keys), args))

        return await self.state.guarded(
            f"window {self.name}", call, lambda: self.local.retry_after(keys, now)
        )

    async def fail(self, keys: Sequence[str], now: float) -> int:
        member = f"{now!r}:{secrets.token_hex(6)}"
        args = [repr(now), repr(self.window), self.limit, member, self._ttl_ms]

        async def call() -> int:
            return int(await self.state.script("window_fail", self._keys(keys), args))

        return await self.state.guarded(
            f"window {self.name}", call, lambda: self.local.fail(keys, now)
        )


class RedisDelays:
    def __init__(
        self, state: RedisState, *, forget_after: float = 3600.0, local: MemoryDelays | None = None
    ) -> None:
        self.state = state
        self.forget_after = forget_after
        self.local = local or MemoryDelays(forget_after=forget_after)

    def _key(self, key: str) -> str:
        return self.state.key("d", _short(key))

    def _group(self, group: str) -> str:
        return self.state.key("g", _short(group))

    async def attempt(self, keys: Sequence[Counted], now: float) -> float:
        longest_cap = max((k.allowance.cap for k in keys), default=0.0)
        ttl_ms = math.ceil((max(self.forget_after, longest_cap) + 60.0) * 1000)
        redis_keys = [self._key(k.key) for k in keys] + [self._group(k.group) for k in keys]
        args: list[Any] = [repr(now), repr(self.forget_after), ttl_ms]
        for k in keys:
            a = k.allowance
            args += [a.free, repr(a.base), repr(a.cap), "1" if k.group else "0"]

        async def call() -> float:
            return float(await self.state.script("attempt", redis_keys, args))

        return await self.state.guarded(
            "sign-in delays", call, lambda: self.local.attempt(keys, now)
        )

    async def succeeded(self, keys: Sequence[Counted]) -> None:
        args: list[Any] = []
        for k in keys:
            args += [k.allowance.free, "1" if k.drop_on_success else "0"]

        async def call() -> None:
            await self.state.script("succeeded", [self._key(k.key) for k in keys], args)

        await self.state.guarded("sign-in delays", call, lambda: self.local.succeeded(keys))

    async def forget(self, group: str) -> None:
        async def call() -> None:
            await self.state.script("forget", [self._group(group)], [])

        await self.local.forget(group)
        await self.state.guarded("sign-in delays", call, lambda: self.local.forget(group))


class RedisRevocations:
    """The epoch, its channel and the watcher task (see the module docstring)."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.epoch_key = state.key("revocations", "epoch")
        self.channel = state.key("revocations")
        self._generation = 0
        self._epoch: str | None = None
        self._trusted_until = 0.0
        self._lost = False  # the last read failed
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def generation(self) -> int:
        return self._generation

    def trusted(self) -> bool:
        return time.monotonic() < self._trusted_until

    async def announce(self) -> bool:
        try:
            await self.state.script("announce", [self.epoch_key], [self.channel])
        except _ERRORS as exc:
            log.warning("revocation not announced: Redis did not answer (%s)", type(exc).__name__)
            return False
        return True

    def _saw(self, epoch: Any) -> None:
        value = None if epoch is None else str(epoch)
        if value != self._epoch:
            self._epoch = value
            self._generation += 1

    async def read(self) -> None:
        """One read of the epoch key: applies it and extends the trust, or lets trust run out."""
        try:
            async with self.state.connected() as (client, _):
                epoch = await client.get(self.epoch_key)
        except _ERRORS as exc:
            if not self._lost:
                log.warning(
                    "revocations: Redis did not answer (%s); tokens are checked against the "
                    "database until it does",
                    type(exc).__name__,
                )
            self._lost = True
            return
        if self._lost:  # announcements may have been missed while it was gone
            self._generation += 1
            self._lost = False
            log.warning("revocations: Redis answers again; token caches were dropped")
        self._saw(epoch)
        self._trusted_until = time.monotonic() + TRUST

    async def start(self) -> None:
        if self._task is None or self._task.done():
            await self.read()
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._watch(self._stopping))

    def forget_task(self) -> None:
        """Drop a watcher task inherited through ``fork`` (it runs in the parent, not here)."""
        self._task = None
        self._trusted_until = 0.0
        self._stopping = asyncio.Event()

    async def stop(self) -> None:
        """End the watcher, within ``STOP_TIMEOUT`` whatever it was doing.

        A cancellation alone is not enough: one that lands inside redis-py's read of the
        subscription can be absorbed there (the read just returns nothing and the task runs
        on, seen about once in a few hundred stops), and a ``stop()`` that only awaited the
        task then waited for ever — the app's shutdown hung before it closed the pool. So the
        watcher also ends at its next turn when ``_stopping`` is set (within ``POLL``), and
        the cancellation is repeated until the task is done."""
        task, self._task = self._task, None
        self._trusted_until = 0.0
        self._stopping.set()
        if task is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while not task.done() and time.monotonic() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
        if not task.done():  # pragma: no cover - the stop flag ends it within POLL
            log.warning("revocations: the watcher did not stop within %g s", STOP_TIMEOUT)
            return
        if not task.cancelled() and task.exception() is not None:
            log.warning("revocations: the watcher failed (%r)", task.exception())

    async def _watch(self, stopping: asyncio.Event) -> None:
        """Until ``stopping`` (or cancelled): listen on the channel, and read the epoch key
        every ``POLL``."""
        pubsub: Any = None
        next_read = time.monotonic() + POLL
        try:
            while not stopping.is_set():
                try:
                    if pubsub is None:
                        async with self.state.connected() as (client, _):
                            pubsub = client.pubsub()
                        await pubsub.subscribe(self.channel)
                    wait = max(0.0, next_read - time.monotonic())
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                    if message is not None and message.get("type") == "message":
                        self._saw(message.get("data"))
                except Exception as exc:  # the watcher outlives any failure; reads decide trust
                    if not isinstance(exc, _ERRORS):
                        log.warning("revocations: listener failed (%s)", type(exc).__name__)
                    closing, pubsub = pubsub, None
                    if closing is not None:
                        with contextlib.suppress(Exception):
                            await closing.aclose()
                    await asyncio.sleep(max(0.0, next_read - time.monotonic()))
                if time.monotonic() >= next_read and not stopping.is_set():
                    await self.read()
                    next_read = time.monotonic() + POLL
        finally:  # cancelled (stop): the subscription's connection is closed, wherever it was
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
