"""The findings queue as the regulator's pages read it: filters by first-seen day (the same day
the overview's rollups count a finding on), paging, and the records a finding involves.

Scoping: ``institution_id`` set = a hospital's own view (only its findings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution
from imsp.exchange.models import Record
from imsp.supervision.models import Finding
from imsp.supervision.quality import day_bounds
from imsp.supervision.workflow import OPEN_STATES


@dataclass(frozen=True, slots=True)
class QueueFilter:
    institution_id: int | None = None
    rule_id: str | None = None
    severity: str | None = None
    status: str | None = None  # a state, or "open" for every open state
    doctor_finding: int | None = None  # the doctor of this finding (doctor pages' link)
    start: date | None = None  # first seen, Beijing days, inclusive
    end: date | None = None


@dataclass(frozen=True, slots=True)
class QueueRow:
    finding: Finding
    institution: str


def _filtered(stmt: Any, f: QueueFilter) -> Any:
    if f.institution_id is not None:
        stmt = stmt.where(Finding.institution_id == f.institution_id)
    if f.rule_id:
        stmt = stmt.where(Finding.rule_id == f.rule_id)
    if f.severity:
        stmt = stmt.where(Finding.severity == f.severity)
    if f.status == "open":
        stmt = stmt.where(Finding.status.in_(sorted(OPEN_STATES)))
    elif f.status:
        stmt = stmt.where(Finding.status == f.status)
    if f.doctor_finding is not None:
        doctor = (
            select(Finding.doctor_cert_id).where(Finding.id == f.doctor_finding).scalar_subquery()
        )
        stmt = stmt.where(Finding.doctor_cert_id == doctor)
    if f.start is not None:
        stmt = stmt.where(Finding.first_seen >= day_bounds(f.start)[0])
    if f.end is not None:
        stmt = stmt.where(Finding.first_seen < day_bounds(f.end)[1])
    return stmt


async def page(
    session: AsyncSession, *, filters: QueueFilter, limit: int, offset: int = 0
) -> tuple[list[QueueRow], int]:
    """Findings newest first, with their institution's name, and the total matching."""
    stmt = _filtered(
        select(Finding, Institution.name).join(
            Institution, Institution.id == Finding.institution_id
        ),
        filters,
    )
    rows = (
        await session.execute(
            stmt.order_by(Finding.first_seen.desc(), Finding.id.desc()).limit(limit).offset(offset)
        )
    ).all()
    total = await session.scalar(_filtered(select(func.count()).select_from(Finding), filters))
    return [QueueRow(f, name) for f, name in rows], int(total or 0)


async def record_ids(
    session: AsyncSession, *, institution_id: int, refs: list[dict[str, Any]]
) -> dict[tuple[str, str], int]:
    """(dataset, key) → stored record id, for the record viewer's links."""
    pairs = [(str(r.get("dataset")), str(r.get("key"))) for r in refs if r.get("key")]
    if not pairs:
        return {}
    rows = await session.execute(
        select(Record.dataset, Record.key, Record.id).where(
            Record.institution_id == institution_id,
            or_(*(and_(Record.dataset == d, Record.key == k) for d, k in pairs)),
        )
    )
    return {(d, k): int(i) for d, k, i in rows.all()}
