"""Upload receipts warn (-95 关联数据不存在) about references to records not uploaded yet, naming
the missing dataset and key — and still store the record (never a rejection)."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings, SupervisionSettings
from imsp.standard.protocol import EXCHANGE_ISSUES
from imsp.supervision.references import PgReferenceCheck, missing_references
from tests.exchange.builders import ORG_A, get_token, make_credential, record
from tests.exchange.test_upload import post


def _warnings(receipt: Any) -> list[dict[str, str]]:
    (result,) = receipt["data"]["results"]
    assert result["msgCode"] in (200, 201), result
    warnings: list[dict[str, str]] = result["warnings"]
    return [w for w in warnings if w["code"] == "reference_missing"]


def test_missing_references_are_warnings_naming_dataset_and_key(
    exchange_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    auth = {"accessToken": get_token(exchange_client, make_credential(settings, clock, ORG_A))}
    rx = record("prescription")
    warned = _warnings(post(exchange_client, "/uploadPrescriptionInfo", [rx], auth))
    fields = {w["field"] for w in warned}
    assert {"patientId", "doctorCertID", "deptID", "organID", "bussID"} <= fields
    patient = next(w for w in warned if w["field"] == "patientId")
    assert "患者信息" in patient["msg"] and "patient" in patient["msg"]
    assert rx["patientId"] in patient["msg"]
    assert EXCHANGE_ISSUES["reference_missing"].msg_code == -95

    post(exchange_client, "/uploadOrganization", [record("organization")], auth)
    for p in [record("patient", n=i) for i in range(8)]:
        post(exchange_client, "/uploadPatientFile", [p], auth)
    again = dict(rx, allergyInfo="青霉素过敏")  # a changed resend (version 2)
    warned = {
        w["field"]
        for w in _warnings(post(exchange_client, "/uploadPrescriptionInfo", [again], auth))
    }
    assert "patientId" not in warned and "organID" not in warned
    assert {"doctorCertID", "bussID"} <= warned


def test_references_found_by_visit_number(
    exchange_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    auth = {"accessToken": get_token(exchange_client, make_credential(settings, clock, ORG_A))}
    rx = record("prescription")
    op = next(
        record("outpatient", n=i)
        for i in range(8)
        if record("outpatient", n=i)["bussID"] == rx["bussID"]
    )
    post(exchange_client, "/uploadOutpatient", [op], auth)
    warned = {
        w["field"] for w in _warnings(post(exchange_client, "/uploadPrescriptionInfo", [rx], auth))
    }
    assert "bussID" not in warned


def test_warnings_can_be_switched_off(settings: Settings, clock: FrozenClock) -> None:
    off = settings.model_copy(update={"supervision": SupervisionSettings(reference_warnings=False)})
    with TestClient(create_exchange_app(off, clock=clock)) as client:
        auth = {"accessToken": get_token(client, make_credential(off, clock, ORG_A))}
        assert (
            _warnings(post(client, "/uploadPrescriptionInfo", [record("prescription")], auth)) == []
        )


def test_the_postgresql_lookup_finds_what_the_sqlalchemy_one_finds(
    exchange_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    """On PostgreSQL the receipts use ``PgReferenceCheck`` (one compiled statement, array
    parameters); it must warn about exactly the references ``missing_references`` warns about —
    present and missing ones, by key and by visit number, for two institutions."""
    app: Any = exchange_client.app
    check = app.state.reference_check
    if app.state.ctx.db.dialect != "postgresql":
        assert not isinstance(check, PgReferenceCheck)
        return
    assert isinstance(check, PgReferenceCheck)
    auth = {"accessToken": get_token(exchange_client, make_credential(settings, clock, ORG_A))}
    rxs = [record("prescription", n=i) for i in range(6)]
    op = next(
        record("outpatient", n=i)
        for i in range(8)
        if record("outpatient", n=i)["bussID"] == rxs[0]["bussID"]
    )
    post(exchange_client, "/uploadOutpatient", [op], auth)
    post(exchange_client, "/uploadOrganization", [record("organization")], auth)
    for p in [record("patient", n=i) for i in range(3)]:
        post(exchange_client, "/uploadPatientFile", [p], auth)
    engine = app.state.ctx.db.engine
    portal: Any = exchange_client.portal

    async def institution() -> int:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(text("SELECT max(institution_id) FROM record"))).scalar()
            )

    inst = portal.call(institution)
    for institution_id in (inst, inst + 1000):  # nothing stored for the second: all missing
        for dataset, recs in (("prescription", rxs), ("outpatient", [op])):
            kwargs = {"institution_id": institution_id, "dataset": dataset,
                      "records": list(enumerate(recs))}  # fmt: skip
            want = portal.call(partial(missing_references, engine, **kwargs))
            assert portal.call(partial(check, **kwargs)) == want
            assert want
    found = portal.call(
        partial(check, institution_id=inst, dataset="prescription", records=[(0, rxs[0])])
    )
    warned = {w.field for w in found.get(0, [])}
    assert "bussID" not in warned and "organID" not in warned and "doctorCertID" in warned
