"""Reads behind the regulator's per-doctor views (监管发现最多的医师, the doctor page).

Counted from the findings (few next to the records, indexed by institution) and, for one
doctor, from the record table's ``doctor_cert_id`` index; a doctor is named in URLs by one of
their findings (``f<finding id>``), never by the ID number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.exchange.models import Record
from imsp.supervision.dashboard import Hospital, hospitals_by_id
from imsp.supervision.models import Finding
from imsp.supervision.quality import PRODUCTION, day_bounds
from imsp.supervision.queries import on_channel, record_on_channel
from imsp.supervision.workflow import OPEN_STATES


@dataclass(frozen=True, slots=True)
class DoctorCount:
    doctor_cert_id: str
    total: int
    open: int
    finding_id: int  # one of the doctor's findings: identifies the doctor in URLs, unlike the ID

    @property
    def token(self) -> str:
        return f"f{self.finding_id}"


async def top_doctors(
    session: AsyncSession, *, institution_id: int, start: date, end: date, limit: int = 10
) -> list[DoctorCount]:
    """The hospital's doctors with the most findings first seen in [start, end] (read from the
    findings, which are few next to the records; indexed by institution)."""
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    open_sum = func.sum(case((Finding.status.in_(sorted(OPEN_STATES)), 1), else_=0))
    rows = await session.execute(
        select(Finding.doctor_cert_id, func.count(), open_sum, func.min(Finding.id))
        .where(
            Finding.institution_id == institution_id,
            Finding.doctor_cert_id.is_not(None),
            on_channel(PRODUCTION),
            Finding.first_seen >= since,
            Finding.first_seen < until,
        )
        .group_by(Finding.doctor_cert_id)
        .order_by(func.count().desc(), Finding.doctor_cert_id)
        .limit(limit)
    )
    return [DoctorCount(str(d), int(t), int(o or 0), int(f)) for d, t, o, f in rows.all()]


@dataclass(frozen=True, slots=True)
class DoctorView:
    institution: Hospital
    doctor_cert_id: str
    name: str
    visits: dict[str, int]  # dataset → records naming the doctor
    findings: int
    open: int


#: Datasets counted on the doctor page: visits (复诊、咨询、挂号) and prescriptions.
DOCTOR_DATASETS: Final = ("outpatient", "consult", "register", "prescription")


async def doctor(session: AsyncSession, *, institution_id: int, token: str) -> DoctorView | None:
    """A doctor of one hospital, identified by ``f<finding id>`` (never by the ID number in a URL).

    Counts come from the record table's (doctor_cert_id) index, bounded to one doctor."""
    if not token.startswith("f") or not token[1:].isdigit():
        return None
    cert = await session.scalar(
        select(Finding.doctor_cert_id).where(
            Finding.id == int(token[1:]), Finding.institution_id == institution_id
        )
    )
    found = await hospitals_by_id(session, {institution_id})
    if not cert or not found:
        return None
    rows = await session.execute(
        select(Record.dataset, func.count())
        .where(
            Record.doctor_cert_id == cert,
            Record.institution_id == institution_id,
            Record.dataset.in_(DOCTOR_DATASETS),
            record_on_channel(PRODUCTION),
        )
        .group_by(Record.dataset)
    )
    visits = {d: 0 for d in DOCTOR_DATASETS} | {d: int(n) for d, n in rows.all()}
    data = await session.scalar(
        select(Record.data).where(
            Record.institution_id == institution_id,
            Record.dataset == "doctor",
            Record.doctor_cert_id == cert,
        )
    )
    name = str(data.get("doctorName") or "") if isinstance(data, dict) else ""
    counts = (
        await session.execute(
            select(
                func.count(),
                func.sum(case((Finding.status.in_(sorted(OPEN_STATES)), 1), else_=0)),
            ).where(
                Finding.institution_id == institution_id,
                Finding.doctor_cert_id == cert,
                on_channel(PRODUCTION),
            )
        )
    ).one()
    return DoctorView(
        found[institution_id], cert, name, visits, int(counts[0]), int(counts[1] or 0)
    )
