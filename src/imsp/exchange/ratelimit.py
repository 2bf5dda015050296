"""In-process sliding-window counter of failed authentication attempts (per appId, per address).

Only *failures* are counted: a hospital that authenticates correctly is never slowed down. When a
key has ``limit`` failures inside the last ``window`` seconds, further attempts are refused with
429 until the oldest failure leaves the window (that wait is the ``Retry-After``).

The state is per process: with N server processes an attacker gets at most N × ``limit`` guesses
a minute against 256-bit secrets, which changes nothing; memory stays bounded because stale keys
are pruned whenever the table grows past ``max_keys``.
"""

from __future__ import annotations

import math
from collections import deque


class SlidingWindow:
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

    def fail(self, key: str, now: float) -> None:
        """Record one failure of ``key`` at ``now`` (seconds)."""
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        self._expire(hits, now)
        hits.append(now)
        while len(hits) > self.limit:
            hits.popleft()

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
