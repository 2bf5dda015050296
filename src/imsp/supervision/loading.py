"""Reading stored records for the engine: one query per dataset and per kind of link, per batch.

:func:`load_index` gathers, for a batch of records, everything their rules may look at — the base
data they refer to (patient, doctor, department, organ), the other records of the same visit
(业务号), a prescription's items, the institution's agreements and the registry of known
organs — so that predicates never query the database themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution
from imsp.exchange.models import Record
from imsp.supervision.facts import Index, Rec

__all__ = ["CHUNK", "chunks", "load_index", "load_records", "record_query", "to_rec"]

#: Bound parameters per IN list (SQLite allows 32,766 in total; PostgreSQL 65,535).
CHUNK: Final = 900

_COLUMNS = (
    Record.id,
    Record.institution_id,
    Record.dataset,
    Record.key,
    Record.version,
    Record.created_at,
    Record.data,
    Record.voided,
    Record.visit_no,
    Record.business_time,
)

#: Fields of each kind of record that name another record by its business key.
_KEY_REFS: Final[tuple[tuple[str, str], ...]] = (
    ("patientId", "patient"),
    ("doctorCertID", "doctor"),
    ("applyDoctorCertID", "doctor"),
    ("auditDoctorCertID", "doctor"),
    ("deptID", "department"),
    ("applyDeptID", "department"),
)
_LINKS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "prescription_item": (("recipeID", "prescription"),),
    "payment": (("recipeID", "prescription"), ("applyId", "inspection")),
    "lis": (("applyId", "inspection"),),
    "pacs": (("applyId", "inspection"),),
    "prescription": (("bussID", "consult"),),
    "inspection": (("bussID", "consult"),),
    "appraise": (("bussID", "consult"), ("bussID", "register"), ("bussID", "telemedicine")),
}


def record_query() -> Select[Any]:
    return select(*_COLUMNS)


def to_rec(row: Any) -> Rec:
    return Rec(
        id=row.id,
        institution_id=row.institution_id,
        dataset=row.dataset,
        key=row.key,
        version=row.version,
        created_at=row.created_at,
        data=row.data,
        voided=row.voided,
        visit_no=row.visit_no,
        business_time=row.business_time,
    )


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    items = list(values)
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def load_records(session: AsyncSession, *where: ColumnElement[bool]) -> list[Rec]:
    rows = (await session.execute(record_query().where(*where))).all()
    return [to_rec(r) for r in rows]


async def load_by_keys(
    session: AsyncSession, insts: Sequence[int], wanted: dict[str, set[str]]
) -> list[Rec]:
    """Records of each dataset with one of the given business keys, in ``insts``."""
    out: list[Rec] = []
    for ds, keys in sorted(wanted.items()):
        for part in chunks(sorted(k for k in keys if k)):
            out += await load_records(
                session,
                Record.institution_id.in_(insts),
                Record.dataset == ds,
                Record.key.in_(part),
            )
    return out


async def load_index(
    session: AsyncSession,
    subjects: Sequence[Rec],
    *,
    now: datetime,
    grace: timedelta,
    org_registry: set[str] | None = None,
) -> Index:
    """An :class:`Index` holding ``subjects`` and every record their rules may look at.
    ``org_registry`` (known organ codes for R42) is loaded when not given and needed."""
    idx = Index(now=now, grace=grace)
    if not subjects:
        return idx
    insts = sorted({r.institution_id for r in subjects})
    orgs = (
        await session.execute(
            select(Institution.id, Institution.org_code).where(Institution.id.in_(insts))
        )
    ).all()
    idx.institution_org = {i: code for i, code in orgs}
    for r in subjects:
        idx.add(r)
    datasets = {r.dataset for r in subjects}

    wanted: dict[str, set[str]] = {}
    visits: set[str] = set()
    for r in subjects:
        d = r.data
        for f, ds in _KEY_REFS:
            v = d.get(f)
            if isinstance(v, str) and v:
                wanted.setdefault(ds, set()).add(v)
        for f, ds in _LINKS.get(r.dataset, ()):
            v = d.get(f)
            if isinstance(v, str) and v:
                wanted.setdefault(ds, set()).add(v)
        wanted.setdefault("organization", set()).add(idx.organ_code(r))
        if r.visit_no:
            visits.add(r.visit_no)
        buss = d.get("bussID")
        if isinstance(buss, str) and buss:
            visits.add(buss)
    for rec in await load_by_keys(session, insts, wanted):
        idx.add(rec)
    for part in chunks(sorted(visits)):
        for rec in await load_records(
            session, Record.institution_id.in_(insts), Record.visit_no.in_(part)
        ):
            idx.add(rec)
    times = {r.business_time for r in subjects if r.dataset == "prescription" and r.business_time}
    for part in chunks(sorted(times)):
        for rec in await load_records(
            session,
            Record.institution_id.in_(insts),
            Record.dataset == "prescription_item",
            Record.business_time.in_(part),
        ):
            idx.add(rec)
    # Items whose datein differs from their prescription's (a data error) are found by key.
    short = [
        r
        for r in subjects
        if r.dataset == "prescription"
        and len(idx.items_of(r.institution_id, r.key)) < _count(r.raw("itemCount"))
    ]
    for part in chunks(short, 50):
        ranges = [
            and_(
                Record.institution_id == r.institution_id,
                Record.key >= r.key + "|",
                Record.key < r.key + "}",  # "}" follows "|": every key "<recipeID>|…"
            )
            for r in part
        ]
        for rec in await load_records(session, Record.dataset == "prescription_item", or_(*ranges)):
            idx.add(rec)
    if "outpatient" in datasets:
        for rec in await load_records(
            session, Record.institution_id.in_(insts), Record.dataset == "agreement"
        ):
            idx.add(rec)
    if "telemedicine" in datasets:
        if org_registry is None:
            org_registry = await load_org_registry(session)
        idx.org_codes |= org_registry
    return idx


async def load_org_registry(session: AsyncSession) -> set[str]:
    """Organ codes the platform knows: registered institutions and uploaded organization keys."""
    codes = set((await session.scalars(select(Institution.org_code))).all())
    codes |= set(
        (await session.scalars(select(Record.key).where(Record.dataset == "organization"))).all()
    )
    return codes


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
