"""In-process sliding-window counter of failed authentication attempts.

Only *failures* are counted: a hospital that authenticates correctly is never slowed down. When a
key has ``limit`` failures inside the last ``window`` seconds it is limited until the oldest
failure leaves the window (that wait is the ``Retry-After``). What "limited" means is decided by
the caller (``tokens.TokenService``): a key made of someone else's failures never refuses a
correct secret or a valid token.

The state is per process: with N server processes an attacker gets at most N × ``limit`` guesses
a minute against 256-bit secrets, which changes nothing; memory stays bounded because stale keys
are pruned whenever the table grows past ``max_keys``.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque


def address_keys(addr: str) -> tuple[str, ...]:
    """The keys an address's failures count against: the address itself and, for IPv6, its /64
    (one site's allocation: an attacker there has 2**64 addresses to rotate through)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return (addr,)
    if ip.version == 6:
        return (addr, str(ipaddress.ip_network(f"{ip}/64", strict=False)))
    return (addr,)


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

    def fail(self, key: str, now: float) -> int:
        """Record one failure of ``key`` at ``now`` (seconds); the failures now in the window
        (at most ``limit``)."""
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
