"""The portal's routes as the app itself has them (so a route added later is covered by the access
tests without anyone remembering to list it)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount

#: Reachable without signing in: the sign-in form, the health and readiness checks (for the load
#: balancer), the published spec.
PUBLIC = frozenset(
    {
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/spec"),
    }
)
#: Media streams fetched by a ``<video>`` element, not by a person: refused with 401 rather than
#: sent to the sign-in page (a redirect would hand the player an HTML page).
MEDIA = frozenset({("GET", "/video/stream/{lease_id}")})
#: Guarded by the caller's network address instead of a sign-in (``IMSP_METRICS__ALLOW``): a
#: visitor elsewhere is refused with 403 (40300), signed in or not.
NETWORK = frozenset({("GET", "/metrics")})
#: Path parameters: a value of the right shape (access is decided before any lookup).
PARAMS = {"kind": "doctors", "action": "reject"}


def _walk(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):  # static assets
            continue
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _walk(included.routes)
            continue
        path = getattr(route, "path", None)
        for method in sorted(getattr(route, "methods", None) or ()):
            if path is not None and method != "HEAD":
                yield method, path


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) of ``app``, sorted."""
    return sorted(set(_walk(app.routes)))


def concrete(template: str) -> str:
    """A request path for a route template (``/my/{kind}/{record_id}`` → ``/my/doctors/1``)."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS.get(m.group(1), "1"), template)
