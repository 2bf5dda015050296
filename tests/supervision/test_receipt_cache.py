"""The receipts' cache of references known to exist (``supervision.references.KnownReferences``):
receipts warn exactly as the uncached lookup does, absence is never cached (a record another
process stores is found at once), a record voided through this process is forgotten at once,
and one voided elsewhere is remembered at most ``reference_cache_seconds``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings, SupervisionSettings
from imsp.supervision.references import KnownReferences, missing_references
from tests.exchange.builders import ORG_A, get_token, make_credential, record, records
from tests.exchange.test_upload import post

RX = "/uploadPrescriptionInfo"


def _warned(receipt: Any) -> set[str]:
    (result,) = receipt["data"]["results"]
    assert result["msgCode"] in (200, 201), result
    return {w["field"] for w in result["warnings"] if w["code"] == "reference_missing"}


class _Counted:
    """The check's lookups, counted (each is one query)."""

    def __init__(self, check: Any) -> None:
        self.calls = 0
        self._rows = check._rows
        check._rows = self

    async def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return await self._rows(*args)


@pytest.fixture
def auth(exchange_client: TestClient, settings: Settings, clock: FrozenClock) -> dict[str, str]:
    return {"accessToken": get_token(exchange_client, make_credential(settings, clock, ORG_A))}


@pytest.fixture
def other_node(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    """A second exchange process on the same database: a cache of its own."""
    with TestClient(create_exchange_app(settings, clock=clock)) as client:
        yield client


def _patient_of(rx: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in records("patient", 8) if p["patientId"] == rx["patientId"])


def test_cached_receipts_warn_exactly_as_the_uncached_lookup(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    """At every stage of a world arriving — nothing yet, base data, patients, visits, a patient
    voided — the cached check's warnings equal :func:`missing_references`' for batches of
    every kind that refers to others; and a batch whose references are all known makes no
    query."""
    app: Any = exchange_client.app
    check, portal = app.state.reference_check, exchange_client.portal
    engine = app.state.ctx.db.engine
    lookups = _Counted(check)
    batches = {
        ds: records(ds, 8)
        for ds in ("prescription", "register", "payment", "lis", "prescription_item", "doctor")
    }

    async def institution() -> int:
        async with engine.connect() as conn:
            found = (await conn.execute(text("SELECT min(id) FROM institution"))).scalar()
            return int(found)

    inst = portal.call(institution)

    def compare() -> None:
        for dataset, recs in batches.items():
            for batch in (list(enumerate(recs)), [(0, recs[3])]):
                kwargs = {"institution_id": inst, "dataset": dataset, "records": batch}
                want = portal.call(partial(missing_references, engine, **kwargs))
                assert portal.call(partial(check, **kwargs)) == want, (dataset, len(batch))

    compare()
    stages = [
        ("/uploadOrganization", [record("organization")]),
        ("/uploadDepartment", records("department", 8)),
        ("/uploadDoctor", records("doctor", 8)),
        ("/uploadPatientFile", records("patient", 8)),
        ("/uploadOutpatient", records("outpatient", 8)),
        ("/uploadPrescriptionInfo", records("prescription", 8)),
        ("/uploadPatientFile", [dict(records("patient", 1)[0], operType="3")]),  # voided
    ]
    for path, recs in stages:
        post(exchange_client, path, recs, auth)
        compare()
    assert len(check.known) > 0
    rx = records("prescription", 8)[1]
    kwargs = {"institution_id": inst, "dataset": "prescription", "records": [(0, rx)]}
    portal.call(partial(check, **kwargs))  # learns what it did not know yet, if anything
    before = lookups.calls
    known = portal.call(partial(check, **kwargs))
    if known == {}:  # every reference resolves: answered from the cache alone
        assert lookups.calls == before


def test_a_record_another_process_stores_is_found_at_once(
    exchange_client: TestClient, other_node: TestClient, auth: dict[str, str]
) -> None:
    rx = record("prescription")
    assert "patientId" in _warned(post(exchange_client, RX, [rx], auth))  # missing: not cached
    post(other_node, "/uploadPatientFile", [_patient_of(rx)], auth)
    again = dict(rx, allergyInfo="青霉素过敏")
    assert "patientId" not in _warned(post(exchange_client, RX, [again], auth))


def test_references_stored_by_this_process_need_no_lookup(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    app: Any = exchange_client.app
    lookups = _Counted(app.state.reference_check)
    rx = record("prescription")
    op = next(o for o in records("outpatient", 8) if o["bussID"] == rx["bussID"])
    doctor = next(d for d in records("doctor", 8) if d["doctorCertID"] == rx["doctorCertID"])
    dept = next(d for d in records("department", 8) if d["deptID"] == rx["deptID"])
    for path, rec in (
        ("/uploadOrganization", record("organization")),
        ("/uploadDepartment", dept),
        ("/uploadDoctor", doctor),
        ("/uploadPatientFile", _patient_of(rx)),
        ("/uploadOutpatient", op),
    ):
        post(exchange_client, path, [rec], auth)
    before = lookups.calls
    assert _warned(post(exchange_client, RX, [rx], auth)) == set()
    assert lookups.calls == before  # patient, doctor, department, institution, visit: all known


def test_a_record_voided_through_this_process_is_forgotten_at_once(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    rx = record("prescription")
    patient = _patient_of(rx)
    post(exchange_client, "/uploadPatientFile", [patient], auth)
    assert "patientId" not in _warned(post(exchange_client, RX, [rx], auth))
    post(exchange_client, "/uploadPatientFile", [dict(patient, operType="3")], auth)
    again = dict(rx, allergyInfo="青霉素过敏")
    assert "patientId" in _warned(post(exchange_client, RX, [again], auth))


def test_a_record_voided_elsewhere_is_remembered_at_most_the_cache_time(
    exchange_client: TestClient, other_node: TestClient, auth: dict[str, str]
) -> None:
    """The documented staleness: another process voids the patient; this one keeps taking it
    for existing until ``reference_cache_seconds`` after it last learned it, then looks again."""
    now = [1000.0]
    app: Any = exchange_client.app
    app.state.reference_check.known = KnownReferences(ttl=60, clock=lambda: now[0])
    rx = record("prescription")
    patient = _patient_of(rx)
    post(exchange_client, "/uploadPatientFile", [patient], auth)  # learned at 1000
    post(other_node, "/uploadPatientFile", [dict(patient, operType="3")], auth)
    now[0] = 1059.0
    assert "patientId" not in _warned(post(exchange_client, RX, [rx], auth))  # stale, bounded
    now[0] = 1060.5
    again = dict(rx, allergyInfo="青霉素过敏")
    assert "patientId" in _warned(post(exchange_client, RX, [again], auth))


def test_no_cache_when_its_time_is_zero(settings: Settings, clock: FrozenClock) -> None:
    off = settings.model_copy(
        update={"supervision": SupervisionSettings(reference_cache_seconds=0)}
    )
    with TestClient(create_exchange_app(off, clock=clock)) as client:
        auth = {"accessToken": get_token(client, make_credential(off, clock, ORG_A))}
        rx = record("prescription")
        post(client, "/uploadPatientFile", [_patient_of(rx)], auth)
        assert "patientId" not in _warned(post(client, RX, [rx], auth))
        check: Any = client.app.state.reference_check  # type: ignore[attr-defined]
        assert len(check.known) == 0


def test_known_references_are_bounded_oldest_first() -> None:
    known = KnownReferences(ttl=60, size=2, clock=lambda: 0.0)
    for key in ("P1", "P2", "P3"):
        known.stored(1, "patient", [{"k": key, "vd": False, "d": {}}])
    wanted = [(i, "patientId", ("patient",), "key", k) for i, k in enumerate(("P1", "P2", "P3"))]
    assert [w[4] for w in known.unknown(1, wanted)] == ["P1"]
    assert [w[4] for w in known.unknown(2, wanted)] == ["P1", "P2", "P3"]  # per institution


def test_a_lookup_that_overlapped_a_void_teaches_nothing() -> None:
    known = KnownReferences(ttl=60, clock=lambda: 0.0)
    wanted = [(0, "patientId", ("patient",), "key", "P1")]
    started = known.voids  # a lookup starts …
    known.stored(1, "patient", [{"k": "P1", "vd": True, "d": {}}])  # … P1 is voided here …
    known.found(1, [("patient", "P1", None)], started)  # … and its rows still show P1
    assert known.unknown(1, wanted) == wanted
    known.found(1, [("patient", "P1", None)], known.voids)  # a later lookup that found it
    assert known.unknown(1, wanted) == []


def test_concurrent_lookups_share_one_statement_and_each_gets_its_own_warnings(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    """Ten uploads' lookups arriving together go out as one statement (the union of what they
    ask), and each caller's warnings are those of its own uncached lookup — for a batch whose
    references partly exist (some patients, outpatients and the base data uploaded)."""
    app: Any = exchange_client.app
    check, portal = app.state.reference_check, exchange_client.portal
    engine = app.state.ctx.db.engine
    for path, recs in (
        ("/uploadOrganization", [record("organization")]),
        ("/uploadDepartment", records("department", 8)[:4]),
        ("/uploadPatientFile", records("patient", 8)[:4]),
        ("/uploadOutpatient", records("outpatient", 8)[:3]),
    ):
        post(exchange_client, path, recs, auth)
    check.known = KnownReferences(ttl=0)  # nothing known: every call looks up
    rxs = records("prescription", 8) + records("payment", 2)

    async def concurrently() -> tuple[list[Any], list[Any], int]:
        async with engine.connect() as conn:
            inst = int((await conn.execute(text("SELECT min(id) FROM institution"))).scalar())
        calls = [
            {"institution_id": inst, "dataset": "payment" if "payId" in r else "prescription",
             "records": [(0, r)]}
            for r in rxs
        ]  # fmt: skip
        before = check._rows.statements
        got = await asyncio.gather(*(check(**kw) for kw in calls))
        statements = check._rows.statements - before
        want = [await missing_references(engine, **kw) for kw in calls]
        return list(got), want, statements

    got, want, statements = portal.call(concurrently)
    assert got == want
    patients = [any(i.field == "patientId" for i in w.get(0, [])) for w in got]
    assert any(patients) and not all(patients)  # some patients exist, some do not
    assert statements == 1
