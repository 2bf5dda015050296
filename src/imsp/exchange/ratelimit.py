"""Which keys a client's failed authentications count against (the exchange's rate limits).

Only *failures* are counted: a hospital that authenticates correctly is never slowed down. When a
key has ``limit`` failures inside the last ``window`` seconds it is limited until the oldest
failure leaves the window (that wait is the ``Retry-After``). What "limited" means is decided by
the caller (``tokens.TokenService``): a key made of someone else's failures never refuses a
correct secret or a valid token.

The counters are the shared state's sliding windows (``imsp.shared_state``): per process on a
single node, in Redis for every node at once when ``IMSP_REDIS_URL`` is set (one limit however
many nodes a client spreads its attempts over). ``SlidingWindow`` is the in-process core.
"""

from __future__ import annotations

import ipaddress

from imsp.shared_state import SlidingWindow

__all__ = ["SlidingWindow", "address_keys"]


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
