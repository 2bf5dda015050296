"""Data-quality rollups: their figures, and incremental refresh == full recomputation (issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.storage.db import Database
from imsp.supervision import quality, rollups
from imsp.supervision.rollup_models import QualityDay
from tests.conftest import _empty_all_tables
from tests.exchange.builders import ORG_A, get_token, make_credential, record

SERVICES = {
    "patient": "/uploadPatientFile",
    "doctor": "/uploadDoctor",
    "department": "/uploadDepartment",
    "prescription": "/uploadPrescriptionInfo",
}


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    with TestClient(create_exchange_app(settings, clock=clock)) as client:
        yield client


def _run(settings: Settings, fn: Any) -> Any:
    async def go() -> Any:
        db = Database(settings)
        try:
            async with db.session() as s:
                return await fn(s)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _rows(settings: Settings) -> list[tuple[Any, ...]]:
    async def read(s: Any) -> list[tuple[Any, ...]]:
        rows = (await s.scalars(select(QualityDay))).all()
        return sorted(
            (
                r.institution_id,
                r.day,
                r.dataset,
                r.requests,
                r.received,
                r.accepted,
                r.rejected,
                r.rejected_by_code,
                r.stored,
                r.optional_filled,
                r.optional_total,
                r.delay_median_s,
                r.delay_p95_s,
                r.refs_checked,
                r.refs_resolved,
            )
            for r in rows
        )

    return list(_run(settings, read))


def _upload(
    client: TestClient, cred: IssuedCredential, dataset: str, body: list[dict[str, Any]]
) -> None:
    """Upload with a fresh token (the clock moves by days between uploads)."""
    token = get_token(client, cred)
    r = client.post(SERVICES[dataset], json=body, headers={"accessToken": token})
    assert r.status_code == 200, r.text


def _refresh(settings: Settings, clock: FrozenClock) -> None:
    _run(settings, lambda s: rollups.refresh_rollups(s, now=clock.now()))


def _recompute(settings: Settings, clock: FrozenClock) -> None:
    _run(settings, lambda s: rollups.recompute(s, now=clock.now()))


def test_rollup_counts_requests_rejections_completeness_and_references(
    app: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    cred = make_credential(settings, clock, ORG_A)
    rx = [record("prescription", n=i) for i in range(3)]
    bad = record("prescription", n=3, patientName="")  # required field empty → rejected
    _upload(app, cred, "prescription", [*rx, bad])
    _upload(app, cred, "patient", [record("patient", n=i) for i in range(10)])
    _recompute(settings, clock)
    rows = {r[2]: r for r in _rows(settings)}
    assert set(rows) == {"", "prescription", "patient"}  # "" = the token request
    day = clock.now().date()
    _inst, d, _, requests, received, accepted, rejected, by_code, stored, *_rest = rows[
        "prescription"
    ]
    assert (d, requests, received, accepted, rejected, stored) == (day, 1, 4, 3, 1, 3)
    assert by_code == {"required": 1}
    filled, total, median, p95, checked, resolved = rows["prescription"][9:]
    assert total == 3 * len(quality.optional_fields("prescription"))
    assert 0 < filled < total
    assert median is not None and p95 is not None and p95 >= median > 0
    # Patients arrived (same day), no doctors or departments: none of the references resolve.
    assert (checked, resolved) == (3, 0)


def test_reference_integrity_turns_green_when_the_referenced_records_arrive_later(
    app: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    cred = make_credential(settings, clock, ORG_A)
    rx = record("prescription", n=0)
    _upload(app, cred, "prescription", [rx])
    _refresh(settings, clock)
    clock.advance(days=2)
    patients = _matching("patient", "patientId", rx["patientId"])
    doctors = _matching("doctor", "doctorCertID", rx["doctorCertID"])
    depts = _matching("department", "deptID", rx["deptID"])
    assert patients and doctors and depts
    for ds, body in (("patient", patients), ("doctor", doctors), ("department", depts)):
        _upload(app, cred, ds, body)
    _refresh(settings, clock)
    first = {r[2]: r for r in _rows(settings) if r[1] == date(2026, 1, 5)}
    assert first["prescription"][13:] == (1, 1)


def _matching(dataset: str, name: str, value: str) -> list[dict[str, Any]]:
    return [r for r in (record(dataset, n=i) for i in range(12)) if r[name] == value]


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("upload"),
            st.sampled_from(sorted(SERVICES)),
            st.integers(0, 8),
            st.integers(1, 3),
            st.booleans(),  # with one rejected record
            st.booleans(),  # changed content (a new version when resent)
        ),
        st.tuples(st.just("advance"), st.integers(1, 30)),
        st.tuples(st.just("refresh")),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_incremental_rollups_agree_with_full_recomputation(
    app: TestClient, settings: Settings, clock: FrozenClock, ops: list[tuple[Any, ...]]
) -> None:
    _empty_all_tables(settings)
    cred = make_credential(settings, clock, ORG_A)
    for op in ops:
        if op[0] == "upload":
            _, ds, start, count, with_bad, changed = op
            body = [record(ds, n=start + i) for i in range(count)]
            if changed:
                body = [{**r, "updateTime": "2026-01-01 08:00:00"} for r in body]
            if with_bad:
                body.append({**record(ds, n=start + count), "organID": ""})
            _upload(app, cred, ds, body)
        elif op[0] == "advance":
            clock.advance(hours=op[1])
        else:
            _refresh(settings, clock)
    _refresh(settings, clock)
    incremental = _rows(settings)
    _recompute(settings, clock)
    assert incremental == _rows(settings)
    assert bool(incremental) == any(op[0] == "upload" for op in ops)
