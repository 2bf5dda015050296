"""Builders for the supervision tests: a hospital that uploaded through the real exchange app,
rollups computed, and portal accounts (a regulator, the hospital's own applicant account)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from imsp.auth.models import Institution
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange.models import Record
from imsp.supervision import rollups
from tests.exchange.builders import ORG_A, ORG_B, get_token, make_credential, record
from tests.qualification import builders as qb

SERVICES = {
    "patient": "/uploadPatientFile",
    "doctor": "/uploadDoctor",
    "department": "/uploadDepartment",
    "prescription": "/uploadPrescriptionInfo",
}
HOSPITAL_A = "河北省互联网医疗示范医院"
HOSPITAL_B = "石家庄市第二互联网医院"


@dataclass(frozen=True, slots=True)
class Reported:
    institution_a: int
    institution_b: int
    record_id: int  # a prescription of hospital A


def upload(client: TestClient, token: str, dataset: str, body: list[dict[str, Any]]) -> None:
    r = client.post(SERVICES[dataset], json=body, headers={"accessToken": token})
    assert r.status_code == 200, r.text


def report(exchange: TestClient, settings: Settings, clock: FrozenClock) -> Reported:
    """Two hospitals report over three days (B with a rejected record and a resent one); the
    rollups are computed."""
    cred_a = make_credential(settings, clock, ORG_A, HOSPITAL_A)
    cred_b = make_credential(settings, clock, ORG_B, HOSPITAL_B)
    for day in range(3):
        token_a = get_token(exchange, cred_a)
        token_b = get_token(exchange, cred_b)
        upload(exchange, token_a, "patient", [record("patient", n=day * 4 + i) for i in range(4)])
        upload(
            exchange,
            token_a,
            "prescription",
            [record("prescription", n=day * 2 + i) for i in range(2)],
        )
        bad = record("prescription", ORG_B, n=day, patientName="")
        upload(exchange, token_b, "prescription", [record("prescription", ORG_B, n=10 + day), bad])
        clock.advance(days=1)
    token_a = get_token(exchange, cred_a)
    upload(exchange, token_a, "prescription", [record("prescription", n=0, icdName="更正诊断")])

    async def finish(session: Any) -> Reported:
        await rollups.recompute(session, now=clock.now())
        a = await session.scalar(select(Institution.id).where(Institution.org_code == ORG_A))
        b = await session.scalar(select(Institution.id).where(Institution.org_code == ORG_B))
        rid = await session.scalar(
            select(Record.id).where(
                Record.institution_id == a,
                Record.dataset == "prescription",
                Record.version == 2,
            )
        )
        return Reported(a, b, rid)

    return qb.run(settings, finish)
