"""Every unit-of-work boundary commits before it answers: web requests, the token service, the CLI.

A held lock makes the commit fail; the boundary must then answer with an error — never with
the success answer of work that was not stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imsp import web
from imsp.app import create_exchange_app, create_portal_app
from imsp.cli.main import cli
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.exchange.builders import ORG_A, make_credential


@contextmanager
def _locked(settings: Settings, table: str) -> Iterator[None]:
    """Hold a write lock from another connection: ``table`` on PostgreSQL, the whole file on
    SQLite (``BEGIN EXCLUSIVE``)."""
    if settings.is_sqlite:
        path = make_url(settings.sqlalchemy_url).database
        assert path
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as c:
            c.execute(text(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE'))
            try:
                yield
            finally:
                c.rollback()
    finally:
        engine.dispose()


def _count(settings: Settings, table: str) -> int:
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as c:
            return int(c.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    finally:
        engine.dispose()


def _session_scopes(app: FastAPI) -> list[tuple[str, str | None]]:
    """(route, scope) of every use of ``imsp.web.session`` in ``app``'s routes."""
    found: list[tuple[str, str | None]] = []

    def walk(route: str, dependant: Dependant) -> None:
        for sub in dependant.dependencies:
            if sub.call is web.session:
                found.append((route, sub.scope))
            walk(route, sub)

    def routes(items: list[Any]) -> Iterator[APIRoute]:
        for route in items:
            if isinstance(route, APIRoute):
                yield route
            included = getattr(route, "original_router", None)  # include_router()
            if included is not None:
                yield from routes(included.routes)

    for route in routes(list(app.routes)):
        walk(route.path, route.dependant)
    return found


def test_every_request_unit_of_work_commits_before_the_response(settings: Settings) -> None:
    for app in (create_portal_app(settings), create_exchange_app(settings)):
        scopes = _session_scopes(app)
        assert all(scope == "function" for _, scope in scopes), scopes
    assert _session_scopes(create_portal_app(settings))  # the portal does use it


def test_token_is_not_handed_out_when_it_could_not_be_stored(
    settings: Settings, clock: FrozenClock
) -> None:
    quick = settings.model_copy(update={"lock_timeout_seconds": 0.3})
    cred = make_credential(settings, clock, ORG_A)
    params = {"appId": cred.app_id, "appSecret": cred.app_secret}
    with TestClient(create_exchange_app(quick, clock=clock)) as client:
        with _locked(settings, "access_token"):
            r = client.get("/auth/accesstoken/create", params=params)
        assert r.status_code == 503 and r.json()["code"] == 50300
        assert "accessToken" not in r.text
        assert _count(settings, "access_token") == 0
        assert client.get("/auth/accesstoken/create", params=params).json()["code"] == 200
    assert _count(settings, "access_token") == 1


def test_cli_prints_a_new_secret_only_after_it_was_committed(settings: Settings) -> None:
    env = {
        "IMSP_DATABASE_URL": settings.database_url or "",
        "IMSP_DATA_DIR": str(settings.data_dir),
        "IMSP_LOCK_TIMEOUT_SECONDS": "0.3",
    }
    runner = CliRunner()
    with _locked(settings, "app_credential"):
        result = runner.invoke(cli, ["credentials", "create", ORG_A, "--name", "测试医院"], env=env)
    assert result.exit_code == 1
    assert "appSecret" not in result.output
    assert "数据库未能完成本次操作" in result.output and "未做任何更改" in result.output
    assert _count(settings, "app_credential") == 0
