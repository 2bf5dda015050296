"""Dashboards and their Excel exports read from the read replica (``IMSP_DATABASE_REPLICA_URL``)
when one is configured, everything else from the primary.

The "replica" here is a second PostgreSQL database restored from a dump of the primary and then
made distinguishable (one hospital renamed in it) — not a streaming standby: making one needs a
``replication`` line in the shared cluster's pg_hba.conf and a copy of the whole cluster. What is
tested is where each read goes: the overview and hospital pages and their exports show the
replica's name; sign-in, sessions and the audited record viewer still use the primary.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imsp.app import create_exchange_app, create_portal_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database
from tests.portal.client import sign_in
from tests.qualification import builders as qb
from tests.supervision.portal_builders import HOSPITAL_A, HOSPITAL_B, Reported, report

PERIOD = "start=2026-01-01&end=2026-01-15"
ON_REPLICA = "只在副本中的医院名称"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def replica(settings: Settings, clock: FrozenClock) -> Iterator[tuple[Settings, Reported]]:
    if settings.is_sqlite:
        pytest.skip("a read replica is a PostgreSQL deployment")
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        reported = report(exchange, settings, clock)
    url = _create_pg_database(PG_URL)
    try:
        dump = subprocess.run(
            ["pg_dump", "--format=custom", "--dbname", _libpq(settings.sync_url)],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", _libpq(url)], input=dump, check=True
        )
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE institution SET name = :n WHERE id = :i"),
                {"n": ON_REPLICA, "i": reported.institution_a},
            )
        engine.dispose()
        yield settings.model_copy(update={"database_replica_url": url}), reported
    finally:
        _drop_pg_database(PG_URL, url)


def _regulator(settings: Settings, clock: FrozenClock) -> TestClient:
    client = TestClient(create_portal_app(settings, clock=clock))
    client.__enter__()
    qb.make_user(settings, clock.now(), username="regulator1", role="regulator")
    sign_in(client, "regulator1", "Passw0rd-123")
    return client


def test_dashboards_and_exports_read_the_replica_and_the_rest_the_primary(
    replica: tuple[Settings, Reported], clock: FrozenClock
) -> None:
    with_replica, reported = replica
    client = _regulator(with_replica, clock)  # sign-in and its session: the primary
    try:
        page = client.get(f"/supervision?{PERIOD}").text
        assert ON_REPLICA in page and HOSPITAL_A not in page and HOSPITAL_B in page
        hospital = client.get(f"/supervision/hospitals/{reported.institution_a}?{PERIOD}").text
        assert ON_REPLICA in hospital
        r = client.get(f"/supervision/export/hospitals.xlsx?{PERIOD}")
        ws = load_workbook(io.BytesIO(r.content)).active
        assert ws is not None
        names = {row[0] for row in ws.iter_rows(values_only=True)}
        assert ON_REPLICA in names and HOSPITAL_A not in names
        # The audited record viewer reads (and audits) on the primary.
        primary = create_engine(with_replica.sync_url)
        with primary.connect() as conn:
            record_id = conn.execute(
                text("SELECT min(id) FROM record WHERE institution_id = :i"),
                {"i": reported.institution_a},
            ).scalar()
        viewer = client.get(f"/supervision/records/{record_id}").text
        assert HOSPITAL_A in viewer and ON_REPLICA not in viewer
        with primary.connect() as conn:
            audited = conn.execute(
                text("SELECT count(*) FROM audit_event WHERE target = :t"),
                {"t": f"record:{record_id}"},
            ).scalar()
        primary.dispose()
        assert audited == 1
    finally:
        client.__exit__(None, None, None)


def test_without_a_replica_the_dashboards_read_the_primary(
    replica: tuple[Settings, Reported], clock: FrozenClock
) -> None:
    with_replica, _ = replica
    client = _regulator(with_replica.model_copy(update={"database_replica_url": None}), clock)
    try:
        page = client.get(f"/supervision?{PERIOD}").text
        assert HOSPITAL_A in page and ON_REPLICA not in page
    finally:
        client.__exit__(None, None, None)
