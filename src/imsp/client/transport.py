"""Retry as a transport wrapper: every request the SDK sends (token and uploads) goes through it.

Retried: connection failures and timeouts, ``429`` and ``5xx`` answers — with exponential backoff
and full jitter, and never sooner than the platform's ``Retry-After``. Uploads are safe to resend
because the platform stores by business key (idempotent upsert): a batch whose answer was lost is
simply stored again. Everything else (4xx) is returned at once for the SDK to map to its errors.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

log = logging.getLogger("imsp.client")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` extra attempts; the n-th wait is uniform in ``[0, min(cap, base·2ⁿ)]`` (full
    jitter), but at least ``Retry-After``. A ``Retry-After`` above ``max_retry_after`` is not
    waited for: the answer is returned so the caller (e.g. the outbox sender) can come back later.
    """

    retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap, self.base * (2**attempt)))


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date; ``None`` if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class RetryTransport(httpx.BaseTransport):
    """Wraps another transport; resends the same request (its body must be re-iterable)."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                if attempt >= self.policy.retries:
                    raise
                delay = self.policy.backoff(attempt, self.rng)
                log.warning(
                    "%s %s: %s, retry %d/%d in %.1fs",
                    request.method,
                    request.url.path,
                    type(exc).__name__,
                    attempt + 1,
                    self.policy.retries,
                    delay,
                )
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.policy.retries:
                    return response
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is not None and wait > self.policy.max_retry_after:
                    return response
                delay = max(wait or 0.0, self.policy.backoff(attempt, self.rng))
                response.close()
                log.warning(
                    "%s %s: HTTP %d, retry %d/%d in %.1fs",
                    request.method,
                    request.url.path,
                    response.status_code,
                    attempt + 1,
                    self.policy.retries,
                    delay,
                )
            attempt += 1
            self.sleep(delay)

    def close(self) -> None:
        self.inner.close()

    def __exit__(self, *args: Any) -> None:
        self.close()
