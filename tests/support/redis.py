"""The real Redis of the shared-state tests (``IMSP_TEST_REDIS_URL``, default the machine's Redis
at 127.0.0.1:6379, database 0). Each test gets a key prefix of its own and its keys are deleted
afterwards, so parallel runs and other users of the same Redis never see each other's keys."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("IMSP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unreachable() -> str | None:
    """Why the test Redis cannot be used, or ``None`` when it answers."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return (
            f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}); set IMSP_TEST_REDIS_URL"
        )
    return None


def require() -> None:
    """Skip the test when the Redis cannot be used — or fail it when ``IMSP_TEST_REDIS_URL``
    was set explicitly (CI sets it: there a missing Redis is a broken machine, not a skip)."""
    reason = unreachable()
    if reason is None:
        return
    if "IMSP_TEST_REDIS_URL" in os.environ:
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def key_prefix() -> Iterator[str]:
    """A fresh key prefix; every key under it is deleted when the block ends."""
    prefix = f"imsp-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def count_keys(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(1 for _ in client.scan_iter(match=prefix + "*", count=1000))
    finally:
        client.close()


def connections(url: str, name_prefix: str, *, exact: bool = False) -> int:
    """How many connections to the Redis at ``url`` carry a client name starting with
    ``name_prefix`` — or equal to it, ``exact`` (``RedisState`` names its connections after
    its key prefix and process id)."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        names = [c.get("name", "") for c in client.client_list()]
        if exact:
            return names.count(name_prefix)
        return sum(1 for name in names if name.startswith(name_prefix))
    finally:
        client.close()


class PrivateRedis:
    """A ``redis-server`` of the test's own on a Unix socket in ``directory`` (no TCP port, so
    no port race; no persistence), which the test may stop and start again — an outage that
    the machine's shared Redis must never be put through."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.log = directory / "redis.log"
        self.url = f"unix://{self.socket}?db=0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [
            "redis-server", "--port", "0", "--unixsocket", str(self.socket),
            "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "warning", "--logfile", str(self.log),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.answers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start ({self.log})")
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        """``kill -9``: every connection drops at once, nothing is said goodbye to."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)
            self.proc = None
        self.socket.unlink(missing_ok=True)


@contextmanager
def private_redis(directory: Path, *, started: bool = True) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/install-system-deps.sh --dev)")
    server = PrivateRedis(directory)
    if started:
        server.start()
    try:
        yield server
    finally:
        server.kill()
