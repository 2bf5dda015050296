"""The Redis state's lifecycle (``imsp.shared_redis``): one pool per event loop and process,
every connection closed by ``close()``, and never a hang — not when a stop lands in the middle
of a read, not when Redis is missing at start, silent, or restarted while the state runs.

Connections are counted on the Redis server itself (``CLIENT LIST``, by the client name the
state gives them), so a connection left open is seen even before the garbage collector would
complain about it.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from redis.asyncio.client import PubSub

from imsp.shared_redis import (
    CONNECT_TIMEOUT,
    POLL,
    RETRY_AFTER,
    STOP_TIMEOUT,
    TIMEOUT,
    RedisState,
)
from tests.support.redis import REDIS_URL, connections, key_prefix, private_redis, require

T = TypeVar("T")

#: Seconds within which anything a test waits on must be over (a hang fails the test).
BOUND = STOP_TIMEOUT + CONNECT_TIMEOUT + 2 * TIMEOUT


@pytest.fixture
def prefix() -> Iterator[str]:
    require()
    with key_prefix() as p:
        yield p


async def _bounded(what: str, call: Awaitable[T], seconds: float = BOUND) -> T:
    """``await call``, failing the test if it takes longer than ``seconds`` (a call that hangs
    is cancelled then — and one that swallows that cancellation still fails)."""
    start = time.monotonic()
    try:
        result = await asyncio.wait_for(call, seconds)
    except TimeoutError:
        result = None
    if time.monotonic() - start >= seconds:
        pytest.fail(f"{what} did not return within {seconds:g} s")
    return result  # type: ignore[return-value]


async def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(0.02)


def test_every_stop_ends_promptly_and_closes_every_connection(prefix: str) -> None:
    """Start/stop cycles at random moments of a state's first half second (while its watcher
    connects, subscribes, reads): each close returns in time and leaves no connection. The
    hang this guards against was rare here (outside pytest about one stop in 100-500); the next
    test makes it certain."""
    chance = random.Random(15)

    async def chain() -> None:
        for _ in range(30):
            pair = [RedisState(REDIS_URL, prefix=prefix) for _ in range(2)]
            for state in pair:
                await _bounded("start()", state.start())
            await asyncio.sleep(chance.uniform(0, 2 * POLL))
            for state in pair:
                await _bounded("close()", state.close())

    async def go() -> None:
        await asyncio.gather(*(chain() for _ in range(4)))

    asyncio.run(go())
    assert connections(REDIS_URL, prefix) == 0


def test_a_stop_the_redis_client_absorbs_still_ends_the_watcher_and_closes_its_pool(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure the test above meets by chance, made certain: the cancellation reaches the
    watcher inside ``PubSub.get_message`` and redis-py returns ``None`` instead of raising (the
    task goes on, still marked as cancelling — what the hung watchers showed). ``close()`` must
    end anyway, within ``STOP_TIMEOUT``, with no connection left."""
    real = PubSub.get_message
    absorbed: list[bool] = []
    reading = asyncio.Event()

    async def absorbing(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        reading.set()
        try:
            return await real(self, *args, **kwargs)
        except asyncio.CancelledError:
            if absorbed:
                raise
            absorbed.append(True)
            return None

    monkeypatch.setattr(PubSub, "get_message", absorbing)

    async def go() -> None:
        state = RedisState(REDIS_URL, prefix=prefix)
        await state.start()
        await _bounded("the watcher's first read", reading.wait())
        await _bounded("close()", state.close())
        assert absorbed  # the stop really was absorbed once

    asyncio.run(go())
    assert connections(REDIS_URL, prefix) == 0


def test_a_state_is_bound_to_the_loop_it_started_on(prefix: str) -> None:
    """One pool per loop: a second loop may not start (or close) a state another loop runs —
    it could neither use nor close that loop's connections — and closing it on its own loop
    leaves nothing open."""
    state = RedisState(REDIS_URL, prefix=prefix)
    owner = asyncio.new_event_loop()
    thread = threading.Thread(target=owner.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(state.start(), owner).result(BOUND)
        assert connections(REDIS_URL, prefix) >= 1

        async def elsewhere() -> None:
            assert await state.ping()  # other loops get a client of their own, closed after
            with pytest.raises(RuntimeError, match="another event loop"):
                await state.start()
            with pytest.raises(RuntimeError, match="event loop start"):
                await state.close()

        asyncio.run(elsewhere())
        asyncio.run_coroutine_threadsafe(state.close(), owner).result(BOUND)
        assert connections(REDIS_URL, prefix) == 0
        asyncio.run(_restart_elsewhere(state))  # once closed, any loop may start it
        assert connections(REDIS_URL, prefix) == 0
    finally:
        owner.call_soon_threadsafe(owner.stop)
        thread.join(timeout=10)
        owner.close()


async def _restart_elsewhere(state: RedisState) -> None:
    await state.start()
    assert state.revocations.trusted()
    await state.close()


def test_a_forked_child_makes_its_own_pool_and_leaves_its_parents_alone(prefix: str) -> None:
    """A pre-forking server whose state was started before the fork: the child inherits the
    parent's client object but must neither use nor close its sockets — it starts a pool of
    its own, and the parent's connections still work after the child has closed its state."""
    state = RedisState(REDIS_URL, prefix=prefix)
    owner = asyncio.new_event_loop()
    thread = threading.Thread(target=owner.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(state.start(), owner).result(BOUND)
        parent = f"{prefix}{os.getpid()}"
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                code = asyncio.run(_in_child(state, parent))
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        window = state.window("t", limit=1, window=60)
        asyncio.run_coroutine_threadsafe(window.fail(["k"], 1.0), owner).result(BOUND)
        assert not state._down_until  # the parent's pool still answered
        asyncio.run_coroutine_threadsafe(state.close(), owner).result(BOUND)
        assert connections(REDIS_URL, prefix) == 0
    finally:
        owner.call_soon_threadsafe(owner.stop)
        thread.join(timeout=10)
        owner.close()


async def _in_child(state: RedisState, parent: str) -> int:
    await state.start()  # not "started on another loop": that loop is the parent's
    ours = connections(REDIS_URL, state.client_name, exact=True)
    assert await state.ping()
    await state.close()
    left = connections(REDIS_URL, state.client_name, exact=True)
    return 0 if ours >= 1 and left == 0 and connections(REDIS_URL, parent, exact=True) else 2


def test_redis_missing_at_start_then_restarted_mid_run(tmp_path: Path) -> None:
    """Redis is not there when the state starts, comes up, is killed (``kill -9``) while the
    state runs, and comes back: start and close never hang; meanwhile counters fall back to the
    process and tokens to the database; once Redis answers the state uses it again — the
    subscription included — and nothing is left connected after ``close()``."""
    with private_redis(tmp_path, started=False) as server:

        async def go() -> None:
            a = RedisState(server.url, prefix="a:")
            b = RedisState(server.url, prefix="a:")
            await _bounded("start() without Redis", a.start())
            assert not a.revocations.trusted()
            assert not await a.ping()
            window = a.window("t", limit=2, window=60)
            await window.fail(["k"], 1.0)
            await window.fail(["k"], 2.0)
            assert await window.retry_after(["k"], 3.0) == 58  # in this process meanwhile

            server.start()
            await _until(a.revocations.trusted, BOUND, "trust after Redis came up")
            await b.start()
            await asyncio.sleep(RETRY_AFTER)  # counters try Redis again after their pause
            assert await window.retry_after(["k"], 3.0) == 0  # now in Redis: empty there
            await window.fail(["k"], 4.0)
            assert connections(server.url, "a:") >= 4  # a's and b's pools and subscriptions

            server.kill()
            await _until(lambda: not a.revocations.trusted(), BOUND, "trust running out")
            assert not await b.revocations.announce()  # nobody to tell; fails, never hangs
            await window.fail(["k"], 5.0)  # counted locally: no exception, no hang

            server.start()
            await _until(a.revocations.trusted, BOUND, "trust after the restart")
            seen = a.revocations.generation
            await _until(b.revocations.trusted, BOUND, "b's trust after the restart")
            assert await b.revocations.announce()
            await _until(lambda: a.revocations.generation != seen, 1.0, "the announcement")
            await _bounded("close()", a.close())
            await _bounded("close()", b.close())
            assert connections(server.url, "a:") == 0

        asyncio.run(go())


def test_a_redis_that_accepts_but_never_answers_costs_bounded_time() -> None:
    """A Redis that accepts connections and says nothing (a hung server, a black hole behind a
    proxy): start, every call and close each return within their timeouts, falling back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody reads or writes
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        async def go() -> None:
            state = RedisState(url, prefix="silent:")
            await _bounded("start()", state.start())
            try:
                assert not await _bounded("ping()", state.ping())
                window = state.window("t", limit=1, window=60)
                await _bounded("fail()", window.fail(["k"], 1.0))
                assert await _bounded("retry_after()", window.retry_after(["k"], 2.0)) == 59
                async with state.lock("job", ttl=5) as held:
                    assert held
                assert not state.revocations.trusted()
            finally:
                await _bounded("close()", state.close())

        asyncio.run(go())


def test_the_clients_name_tells_whose_connection_it_is(prefix: str) -> None:
    async def go() -> None:
        state = RedisState(REDIS_URL, prefix=prefix)
        await state.start()
        try:
            client = redis.Redis.from_url(REDIS_URL)
            try:
                names = {c.get("name", "") for c in client.client_list()}
            finally:
                client.close()
            assert state.client_name in names
        finally:
            await state.close()

    asyncio.run(go())
