"""The real Redis of the shared-state tests (``IMSP_TEST_REDIS_URL``, default the machine's Redis
at 127.0.0.1:6379, database 0). Each test gets a key prefix of its own and its keys are deleted
afterwards, so parallel runs and other users of the same Redis never see each other's keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
