"""The shared-state seam (``imsp.shared_state``): the in-memory and the Redis implementation keep
the same semantics; Redis shares them between instances, survives a lost pub/sub message, and
fails open (counters) or safe (revocations) when it does not answer.

The Redis tests use the real Redis (``tests/support/redis.py``) under a key prefix of their own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
import redis

from imsp.config import Settings
from imsp.shared_redis import POLL, TRUST, RedisState
from imsp.shared_state import Allowance, Counted, MemoryState, SharedState, open_state
from tests.support.redis import REDIS_URL, count_keys, key_prefix, unreachable


@pytest.fixture
def prefix() -> Iterator[str]:
    reason = unreachable()
    if reason:
        pytest.skip(reason)
    with key_prefix() as p:
        yield p


@asynccontextmanager
async def opened(kind: str, prefix: str) -> AsyncIterator[SharedState]:
    state: SharedState = MemoryState() if kind == "memory" else RedisState(REDIS_URL, prefix=prefix)
    await state.start()
    try:
        yield state
    finally:
        await state.close()


def both(test: Callable[[str, str], Awaitable[None]]) -> Callable[[str, str], None]:
    """Run an async test body once per implementation."""

    @pytest.mark.parametrize("kind", ["memory", "redis"])
    def run(kind: str, request: pytest.FixtureRequest) -> None:
        p = request.getfixturevalue("prefix") if kind == "redis" else "unused:"
        asyncio.run(test(kind, p))

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run  # type: ignore[return-value]


async def _until(check: Callable[[], bool], seconds: float) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails past ``seconds``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def test_open_state_follows_the_settings() -> None:
    assert open_state(Settings()).kind == "memory"
    assert open_state(Settings(redis_url=REDIS_URL)).kind == "redis"


@both
async def test_window_limits_failures_until_the_oldest_leaves(kind: str, prefix: str) -> None:
    async with opened(kind, prefix) as state:
        w = state.window("t", limit=3, window=60)
        for t in (0.0, 10.0, 20.0):
            assert await w.retry_after(["k"], t) == 0
            assert await w.fail(["k"], t) == t / 10 + 1
        assert await w.retry_after(["k"], 30.0) == 30  # the failure at 0 s leaves at 60 s
        assert await w.retry_after(["other"], 30.0) == 0
        assert await w.retry_after(["other", "k"], 30.0) == 30  # the longest wait of the keys
        assert await w.fail(["k"], 31.0) == 3  # never more than the limit: 10 s, 20 s, 31 s
        assert await w.retry_after(["k"], 60.5) == 10
        assert await w.retry_after(["k"], 70.5) == 0


@both
async def test_delays_escalate_and_a_success_takes_its_failure_back(kind: str, prefix: str) -> None:
    async with opened(kind, prefix) as state:
        d = state.delays
        pair = Counted("p|x", Allowance(free=2, base=1.0, cap=8.0), group="x", drop_on_success=True)
        addr = Counted("a|x", Allowance(free=3, base=1.0, cap=8.0))
        keys = [pair, addr]
        assert await d.attempt(keys, 100.0) == 0
        assert await d.attempt(keys, 100.0) == 0  # the pair's 2nd failure: delay 1 s
        assert await d.attempt(keys, 100.5) == pytest.approx(0.5)
        assert await d.attempt(keys, 101.0) == 0  # 3rd: pair 2 s, address 1 s
        assert await d.attempt(keys, 102.0) == pytest.approx(1.0)
        await d.succeeded(keys)  # the pair is dropped, the address keeps 2 failures (< 3 free)
        assert await d.attempt(keys, 102.0) == 0
        assert await d.attempt([pair], 102.0) == 0  # the pair's 2nd failure: 1 s
        assert await d.attempt([pair], 102.0) == pytest.approx(1.0)
        await d.forget("x")  # the explicit unlock of the group
        assert await d.attempt([pair], 102.0) == 0


@both
async def test_a_lock_is_held_by_one_and_released(kind: str, prefix: str) -> None:
    async with opened(kind, prefix) as a, opened(kind, prefix) as b:
        other = a if kind == "memory" else b  # in memory only the same process shares it
        async with a.lock("job", ttl=30) as first:
            assert first
            async with other.lock("job", ttl=30) as second:
                assert not second
        async with other.lock("job", ttl=30) as again:
            assert again


def test_a_redis_lock_expires_when_its_holder_dies(prefix: str) -> None:
    async def go() -> None:
        async with opened("redis", prefix) as a, opened("redis", prefix) as b:
            cm = a.lock("job", ttl=0.3)
            assert await cm.__aenter__()  # the holder "dies": never released
            await _until(lambda: not _locked(prefix), 5)
            async with b.lock("job", ttl=30) as held:
                assert held
            await cm.__aexit__(None, None, None)  # a late release never frees b's lock

    asyncio.run(go())


def _locked(prefix: str) -> bool:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return bool(client.exists(prefix + "lock:job"))
    finally:
        client.close()


def test_redis_counters_are_one_for_every_instance(prefix: str) -> None:
    async def go() -> None:
        async with opened("redis", prefix) as a, opened("redis", prefix) as b:
            wa, wb = a.window("t", limit=4, window=60), b.window("t", limit=4, window=60)
            await asyncio.gather(*(w.fail(["k"], 1.0) for w in (wa, wb, wa, wb)))
            assert await wa.retry_after(["k"], 2.0) == await wb.retry_after(["k"], 2.0) == 59
            keys = [Counted("a|y", Allowance(free=1, base=5.0, cap=5.0))]
            assert await a.delays.attempt(keys, 10.0) == 0
            assert await b.delays.attempt(keys, 10.0) == pytest.approx(5.0)

    asyncio.run(go())
    assert count_keys(prefix) > 0  # the keys were really in Redis (and are deleted afterwards)


def test_a_revocation_reaches_another_instance_at_once(prefix: str) -> None:
    async def go() -> None:
        async with opened("redis", prefix) as a, opened("redis", prefix) as b:
            assert b.revocations.trusted()
            seen = b.revocations.generation
            assert await a.revocations.announce()
            took = await _until(lambda: b.revocations.generation != seen, 1.0)
            assert took < 1.0

    asyncio.run(go())


def test_a_lost_revocation_message_still_converges(prefix: str) -> None:
    """The epoch changes without any message (as if the publication was lost): the next read of
    the epoch key, every ``POLL`` seconds, drops the cache all the same."""

    async def go() -> None:
        async with opened("redis", prefix) as b:
            seen = b.revocations.generation
            client = redis.Redis.from_url(REDIS_URL)
            try:
                client.incr(prefix + "revocations:epoch")  # no PUBLISH
            finally:
                client.close()
            await _until(lambda: b.revocations.generation != seen, POLL + 0.75)

    asyncio.run(go())


@pytest.fixture
def dead_redis() -> Iterator[str]:
    """A Redis URL where nothing listens (the port is bound, never accepting)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_without_redis_counters_fail_open_to_this_process_and_revocations_fail_safe(
    dead_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        state = RedisState(dead_redis, prefix="dead:")
        with caplog.at_level(logging.WARNING, logger="imsp.shared"):
            await state.start()
            try:
                assert not await state.ping()
                w = state.window("t", limit=2, window=60)
                await w.fail(["k"], 1.0)
                await w.fail(["k"], 2.0)
                assert await w.retry_after(["k"], 3.0) == 58  # still limited, in this process
                keys = [Counted("a|z", Allowance(free=1, base=2.0, cap=2.0))]
                assert await state.delays.attempt(keys, 0.0) == 0
                assert await state.delays.attempt(keys, 0.0) == 2.0
                async with state.lock("job", ttl=5) as held:
                    assert held  # the guarded work goes on
                assert not state.revocations.trusted()  # every token goes to the database
                assert not await state.revocations.announce()
            finally:
                await state.close()
        assert any("Redis did not answer" in m for m in caplog.messages)

    asyncio.run(go())


def test_trust_in_the_cache_runs_out_when_redis_stops_answering(prefix: str) -> None:
    async def go() -> None:
        async with opened("redis", prefix) as b:
            assert isinstance(b, RedisState)
            assert b.revocations.trusted()
            b._revocations._task.cancel()  # type: ignore[union-attr]  # as if reads failed
            await _until(lambda: not b.revocations.trusted(), TRUST + 0.5)

    asyncio.run(go())
