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

The counts are the shared state's escalating delays (``imsp.shared_state.Delays``): per process
on a single node (bounded in memory), in Redis for every portal node at once when
``IMSP_REDIS_URL`` is set — one throttle however many nodes the attempts are spread over.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from imsp.shared_state import Allowance, Counted, Delays, MemoryDelays

__all__ = ["Allowance", "LoginThrottle", "address_key"]

PER_ADDRESS: Final = Allowance(free=10, base=1.0, cap=300.0)
PER_PAIR: Final = Allowance(free=5, base=1.0, cap=900.0)
PER_ACCOUNT: Final = Allowance(free=50, base=1.0, cap=300.0)


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
        delays: Delays | None = None,
        per_address: Allowance = PER_ADDRESS,
        per_pair: Allowance = PER_PAIR,
        per_account: Allowance = PER_ACCOUNT,
    ) -> None:
        self.delays: Delays = delays or MemoryDelays()
        self.per_address = per_address
        self.per_pair = per_pair
        self.per_account = per_account

    def _keys(self, username: str, addr: str) -> list[Counted]:
        name = username.strip().lower()[:50]
        where = address_key(addr)
        return [
            Counted(f"a|{where}", self.per_address),
            Counted(f"p|{name}|{where}", self.per_pair, group=name, drop_on_success=True),
            Counted(f"u|{name}", self.per_account, group=name),
        ]

    async def attempt(self, *, username: str, addr: str, now: float) -> float:
        """Admit an attempt (``0.0``) or say how many seconds it must still wait.

        An admitted attempt counts as a failure at once — before its password is checked, so
        a burst of concurrent attempts (on any node) cannot all pass before the first failure
        is counted — until ``succeeded`` takes it back."""
        return await self.delays.attempt(self._keys(username, addr), now)

    async def succeeded(self, *, username: str, addr: str) -> None:
        """The admitted attempt was right: it is no failure, and its pair starts afresh."""
        await self.delays.succeeded(self._keys(username, addr))

    async def forget(self, username: str) -> None:
        """Clear every count of ``username`` (the operator reset its password)."""
        await self.delays.forget(username.strip().lower()[:50])
