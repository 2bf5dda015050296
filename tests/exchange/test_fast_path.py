"""The ASGI fast path for uploads never skips what a route declares (issue 9).

``edge.FastUploads`` calls an upload handler without FastAPI's routing and dependency machinery;
it derives its table from the routes, so a route that gains a ``Depends`` leaves the fast path.
On ``main`` the table was a copy of the handlers made at install time and the dependency was
silently skipped.
"""

from __future__ import annotations

from fastapi import Depends
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import Forbidden
from imsp.exchange.edge import FastUploads
from imsp.standard.model import load_standard
from tests.exchange.builders import ORG_A, get_token, make_credential, record


def _refuse() -> None:
    raise Forbidden("测试用依赖：拒绝")


def test_every_upload_service_is_on_the_fast_path(settings: Settings) -> None:
    app = create_exchange_app(settings)
    table = FastUploads.shortcuts(app.router.routes)
    assert set(table) == {ds.path for ds in load_standard().ordered()}


def test_a_route_level_dependency_is_never_skipped(settings: Settings, clock: FrozenClock) -> None:
    app = create_exchange_app(settings, clock=clock)
    routes = app.router.routes
    i, old = next(
        (i, r)
        for i, r in enumerate(routes)
        if isinstance(r, APIRoute) and r.path == "/uploadPatientFile"
    )
    assert isinstance(old, APIRoute)
    routes[i] = APIRoute(old.path, old.endpoint, methods=["POST"], dependencies=[Depends(_refuse)])
    assert "/uploadPatientFile" not in FastUploads.shortcuts(routes)
    with TestClient(app) as client:
        token = get_token(client, make_credential(settings, clock, ORG_A))
        r = client.post(
            "/uploadPatientFile", headers={"accessToken": token}, json=record("patient")
        )
        assert r.status_code == 403 and r.json()["code"] == 40300
        # The other services stay on the fast path and work as before.
        r = client.post("/uploadDoctor", headers={"accessToken": token}, json=record("doctor"))
        assert r.json()["code"] == 200
