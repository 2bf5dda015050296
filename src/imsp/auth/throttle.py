"""Portal sign-in throttling: growing delays for whoever keeps failing, never a lock-out.

Failed sign-ins are counted under three keys, each with its own allowance of free failures:

* the client address (an IPv6 address counts as its /64) — a flood from one place;
* the (username, address) pair — someone guessing one account's password;
* the username from anywhere — a guess spread over many addresses (a much higher allowance).

An attempt counts as a failure from the moment it is admitted (so a burst of concurrent attempts
is throttled too) until it turns out right.

Past its allowance a key must wait before its next attempt: ``base`` seconds, doubling with each
further failure, at most ``cap``. A waiting attempt is refused *before* any password is hashed.
The keys never depend on whether the account exists, so a known and an unknown username get
exactly the same answers (no account enumeration). A success clears its (username, address)
pair; a key without failures for ``forget_after`` seconds is dropped. The platform operator's
password reset clears every key of that username (the explicit unlock).

State is per process (kept in memory, bounded to ``max_keys``): with several worker processes
each enforces its own delays, which still bounds the rate an attacker gets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

MAX_KEYS: Final = 100_000


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0  # time of the last failure
    until: float = 0.0  # no attempt before this time


@dataclass(frozen=True, slots=True)
class Allowance:
    free: int  # failures before the first delay
    base: float  # first delay, seconds
    cap: float  # longest delay, seconds


def address_key(addr: str) -> str:
    """The address a client is counted under: IPv4 as is, IPv6 by its /64 network."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64]
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottle:
    """Counts failed sign-ins; says how long a new attempt must still wait."""

    def __init__(
        self,
        *,
        per_address: Allowance = Allowance(free=10, base=1.0, cap=300.0),
        per_pair: Allowance = Allowance(free=5, base=1.0, cap=900.0),
        per_account: Allowance = Allowance(free=50, base=1.0, cap=300.0),
        forget_after: float = 3600.0,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.allowances = {"a": per_address, "p": per_pair, "u": per_account}
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._counts: dict[str, _Count] = {}

    @staticmethod
    def _keys(username: str, addr: str) -> dict[str, str]:
        name = username.strip().lower()[:50]
        where = address_key(addr)
        return {"a": f"a|{where}", "p": f"p|{name}|{where}", "u": f"u|{name}"}

    def attempt(self, *, username: str, addr: str, now: float) -> float:
        """Admit an attempt (``0.0``) or say how many seconds it must still wait.

        An admitted attempt counts as a failure at once — before its password is checked, so
        a burst of concurrent attempts cannot all pass before the first failure is counted —
        until ``succeeded`` takes it back."""
        wait = self.wait(username=username, addr=addr, now=now)
        if wait <= 0:
            self.failed(username=username, addr=addr, now=now)
        return wait

    def wait(self, *, username: str, addr: str, now: float) -> float:
        """Seconds before an attempt for ``username`` from ``addr`` may be checked (0: now)."""
        longest = 0.0
        for key in self._keys(username, addr).values():
            count = self._counts.get(key)
            if count is not None and count.until > now:
                longest = max(longest, count.until - now)
        return longest

    def failed(self, *, username: str, addr: str, now: float) -> None:
        """Count a failed attempt (wrong password or unknown username — the same)."""
        if len(self._counts) >= self.max_keys:
            self._sweep(now)
        for kind, key in self._keys(username, addr).items():
            count = self._counts.get(key)
            if count is None or now - count.last > self.forget_after:
                count = self._counts[key] = _Count()
            count.failures += 1
            count.last = now
            allowance = self.allowances[kind]
            over = count.failures - allowance.free
            if over >= 0:
                count.until = now + min(allowance.cap, allowance.base * 2.0 ** min(over, 30))

    def succeeded(self, *, username: str, addr: str) -> None:
        """The admitted attempt was right: it is no failure, and its pair starts afresh."""
        for kind, key in self._keys(username, addr).items():
            count = self._counts.get(key)
            if count is None:
                continue
            count.failures -= 1
            if kind == "p" or count.failures <= 0:
                del self._counts[key]
            elif count.failures < self.allowances[kind].free:
                count.until = 0.0

    def forget(self, username: str) -> None:
        """Clear every count of ``username`` (the operator reset its password)."""
        name = username.strip().lower()[:50]
        for key in [k for k in self._counts if k == f"u|{name}" or k.startswith(f"p|{name}|")]:
            del self._counts[key]

    def _sweep(self, now: float) -> None:
        stale = [k for k, c in self._counts.items() if now - c.last > self.forget_after]
        for key in stale:
            del self._counts[key]
        if len(self._counts) >= self.max_keys:  # still full: drop the oldest half
            oldest = sorted(self._counts, key=lambda k: self._counts[k].last)
            for key in oldest[: len(oldest) // 2]:
                del self._counts[key]
