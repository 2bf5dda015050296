"""Shared fixtures: real databases (SQLite always, PostgreSQL when IMSP_TEST_DATABASE_URL is set),
apps built from explicit settings, an injectable clock.

Each database backend is created once per test session (PostgreSQL: a fresh database of its own,
so parallel runs never see each other's rows), migrated with the real Alembic migrations, and
emptied before every test that uses it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imsp.app import create_exchange_app, create_portal_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.storage import (
    migrate,
    registry,  # noqa: F401  (all models, for table cleanup)
)
from imsp.storage.base import Base
from tests.support.redis import REDIS_URL, key_prefix, require, unreachable

# Property tests judge behaviour, never speed (speed is measured in bench/): no per-example
# deadline and no "too slow" health check, so a loaded CI machine cannot make them flaky.
hypothesis_settings.register_profile(
    "imsp", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("imsp")

PG_URL = os.environ.get("IMSP_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def pytest_report_header() -> list[str]:
    where = "SQLite" + (
        f" and PostgreSQL ({make_url(PG_URL).render_as_string(hide_password=True)})"
        if PG_URL
        else ""
    )
    return [
        f"IMSP databases: {where}"
        + ("" if PG_URL else " — set IMSP_TEST_DATABASE_URL to add PostgreSQL")
    ]


def _create_pg_database(admin_url: str) -> str:
    name = f"imsp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(
        make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return (
        make_url(admin_url)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def _drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(
        make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of an empty database, not migrated, on each backend: for migration tests that
    upgrade to an earlier head, fill it, then migrate."""
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path / 'old.db'}", data_dir=tmp_path / "var")
        return
    url = _create_pg_database(PG_URL)
    try:
        yield Settings(database_url=url, data_dir=tmp_path / "var")
    finally:
        _drop_pg_database(PG_URL, url)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of one backend, for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'imsp.db'}"
        migrate.upgrade(Settings(database_url=url, data_dir=tmp_path_factory.mktemp("var")))
        yield url
        return
    url = _create_pg_database(PG_URL)
    try:
        migrate.upgrade(Settings(database_url=url))
        yield url
    finally:
        _drop_pg_database(PG_URL, url)


def _empty_all_tables(settings: Settings) -> None:
    engine = create_engine(settings.sync_url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))
    engine.dispose()


#: ``IMSP_TEST_SHARED_STATE=redis`` runs every test with its shared state in Redis (a key prefix
#: of its own per test): the same suite then checks the Redis implementation's semantics.
SHARED_IN_REDIS = os.environ.get("IMSP_TEST_SHARED_STATE", "") == "redis"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: its own data directory, an emptied database."""
    s = Settings(database_url=database_url, data_dir=tmp_path / "var")
    _empty_all_tables(s)
    if not SHARED_IN_REDIS:
        yield s
        return
    reason = unreachable()
    if reason:
        pytest.fail(f"IMSP_TEST_SHARED_STATE=redis but {reason}")
    with key_prefix() as prefix:
        yield s.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.fixture
def redis_settings(settings: Settings) -> Iterator[Settings]:
    """``settings`` with the shared state in the test Redis under a key prefix of its own."""
    require()
    with key_prefix() as prefix:
        yield settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def exchange_client(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    with TestClient(create_exchange_app(settings, clock=clock)) as client:
        yield client


@pytest.fixture
def portal_client(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    with TestClient(create_portal_app(settings, clock=clock)) as client:
        yield client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say on which databases the database tests actually ran."""
    counts = dict.fromkeys(BACKENDS, 0)
    for report in terminalreporter.stats.get("passed", []):
        for backend in BACKENDS:
            if (
                f"[{backend}" in report.nodeid
                or f"-{backend}]" in report.nodeid
                or f"-{backend}-" in report.nodeid
            ):
                counts[backend] += 1
    summary = ", ".join(f"{name}: {n} passed" for name, n in counts.items())
    terminalreporter.write_line(f"IMSP database tests — {summary}")
