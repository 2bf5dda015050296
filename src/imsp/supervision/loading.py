"""Reading stored records for the engine: one query per dataset and per kind of link, per batch.

:func:`load_index` gathers, for a batch of records, everything their rules may look at — the base
data they refer to (patient, doctor, department, organ), the other records of the same visit
(业务号), a prescription's items, the institution's agreements and the registry of known
organs — so that predicates never query the database themselves.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution
from imsp.exchange.models import Record
from imsp.supervision.facts import Index, Rec

__all__ = [
    "CHUNK",
    "BaseCache",
    "among",
    "chunks",
    "load_by_keys",
    "load_index",
    "load_org_registry",
    "load_records",
    "record_query",
    "rows_of",
    "to_rec",
]

#: Bound parameters per IN list (SQLite allows 32,766 in total; PostgreSQL 65,535).
CHUNK: Final = 900
#: Values per ``= ANY(array)`` on PostgreSQL: one parameter however long the list.
PG_CHUNK: Final = 50_000

_COLUMNS = (
    Record.id,
    Record.institution_id,
    Record.dataset,
    Record.key,
    Record.version,
    Record.created_at,
    # the stored bytes: ``Rec`` decodes them when first read (``Rec.data``)
    type_coerce(Record.data, LargeBinary),
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


#: Records of the same visit that the rules of each evaluated dataset read (by visit number).
_VISIT_NEEDS: Final[dict[str, tuple[str, ...]]] = {
    "prescription": ("outpatient", "payment"),  # R15–R18, R20, R22, R35, R37, R43
    "outpatient": ("outpatient", "prescription", "inspection"),  # R13, R47
    "inspection": ("outpatient",),  # R37
    "appraise": ("outpatient", "prescription"),  # R44
}
#: dataset → the datasets its rules read among the other records of its visit: by visit
#: number, or by a key the visit's records share (a payment's prescription, a report's request,
#: an evaluation's consultation …). A record of a visit is re-evaluated when a record of one of
#: these arrives in it, not when any does (``incremental.expand``).
VISIT_READS: Final[dict[str, frozenset[str]]] = {
    ds: frozenset(_VISIT_NEEDS.get(ds, ())) | {other for _, other in _LINKS.get(ds, ())}
    for ds in {*_VISIT_NEEDS, *_LINKS}
}
#: Every dataset read by visit number (what a sweep reads of a visit, whichever rule asks).
VISIT_DATASETS: Final = tuple(sorted({ds for needs in _VISIT_NEEDS.values() for ds in needs}))
#: Base data (基本信息): few records referred to by many; sweeps keep them between batches.
BASE_DATASETS: Final = frozenset({"patient", "doctor", "department", "organization"})


#: Records a sweep keeps from its recent batches (subjects and what they referred to).
RECENT: Final = 30_000


@dataclass(slots=True)
class BaseCache:
    """What a sweep's earlier batches read: base-data records (and absences), and the most
    recent ``RECENT`` other records — a payment's prescription, a lab report's request were
    most likely swept or read a few batches before (records of one visit arrive close together,
    so are close in id order). A sweep keeps one for its whole walk, the worker one per round
    (one unit of work: what it read for one part of a round's records serves the next part)."""

    records: dict[tuple[int, str, str], Rec | None] = field(default_factory=dict)
    agreements: dict[int, list[Rec]] = field(default_factory=dict)
    recent: dict[tuple[int, str, str], Rec] = field(default_factory=dict)
    #: (institution, visit number) → its records of ``VISIT_DATASETS`` (the most recent
    #: ``RECENT // 4`` visits)
    visits: dict[tuple[int, str], list[Rec]] = field(default_factory=dict)
    #: (institution, prescription key) → its items, read by key (the worker's round only:
    #: filled by ``incremental.expand``, which asked the same question first). Set, it also
    #: tells :func:`load_index` to read the items of the batch's prescriptions by key, not by
    #: business time (see :func:`load_items_of`).
    items_of: dict[tuple[int, str], list[Rec]] | None = None

    def remember_items(self, recipes: Sequence[tuple[int, str]], recs: Iterable[Rec]) -> None:
        items = self.items_of
        if items is None:
            items = self.items_of = {}
        for k in recipes:
            items[k] = []
        for r in recs:
            got = items.get((r.institution_id, r.key.split("|", 1)[0]))
            if got is not None:
                got.append(r)

    def remember_visits(self, insts: Sequence[int], numbers: list[str], recs: list[Rec]) -> None:
        visits = self.visits
        for inst in insts:
            for vn in numbers:
                visits[(inst, vn)] = []
        for r in recs:
            if r.visit_no is not None:
                visits[(r.institution_id, r.visit_no)].append(r)
        if len(visits) > RECENT // 4 * 5 // 4:
            self.visits = _newest(visits, RECENT // 4)

    def remember(self, recs: Iterable[Rec]) -> None:
        recent, base = self.recent, self.records
        for r in recs:
            if r.dataset in BASE_DATASETS:
                base[(r.institution_id, r.dataset, r.key)] = r  # a swept patient, say
            else:
                recent[(r.institution_id, r.dataset, r.key)] = r
        if len(recent) > RECENT * 5 // 4:
            self.recent = _newest(recent, RECENT)


def _newest(d: dict[Any, Any], n: int) -> dict[Any, Any]:
    """The ``n`` last inserted items of ``d`` (copied at once: deleting a dict's first items
    one by one makes each next deletion scan the ones deleted before)."""
    return dict(itertools.islice(d.items(), len(d) - n, None))


def record_query() -> Select[Any]:
    return cast("Select[Any]", select(*_COLUMNS))


def to_rec(row: Any) -> Rec:
    # the selected columns are Rec's fields in order (a sweep builds a million of these)
    return Rec(*row)


async def rows_of(session: AsyncSession, stmt: Select[Any]) -> list[Any]:
    """Rows of a Core ``select`` of columns, run on the session's connection (no ORM result
    processing: the statement names no entity)."""
    conn = await session.connection()
    return list((await conn.execute(stmt)).all())


def _postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def among(session: AsyncSession, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """``column IN values``: on PostgreSQL ``column = ANY(:array)``, one bound array instead
    of a parameter per value (a sweep's batches name thousands of keys, and building and
    converting a statement with thousands of parameters cost more than running it)."""
    if _postgres(session):
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def chunk_size(session: AsyncSession) -> int:
    return PG_CHUNK if _postgres(session) else CHUNK


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    items = list(values)
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def load_records(session: AsyncSession, *where: ColumnElement[bool]) -> list[Rec]:
    return [Rec(*r) for r in await rows_of(session, record_query().where(*where))]


async def load_by_keys(
    session: AsyncSession, insts: Sequence[int], wanted: dict[str, set[str]]
) -> list[Rec]:
    """Records of each dataset with one of the given business keys, in ``insts``."""
    out: list[Rec] = []
    for ds, keys in sorted(wanted.items()):
        for part in chunks(sorted(k for k in keys if k), chunk_size(session)):
            out += await load_records(
                session,
                Record.institution_id.in_(insts),
                Record.dataset == ds,
                among(session, Record.key, part),
            )
    return out


async def load_items_of(session: AsyncSession, recipes: Sequence[tuple[int, str]]) -> list[Rec]:
    """The items of the prescriptions ``recipes`` ((institution, key) pairs), by key: an item's
    key is ``<recipeID>|<recipeDetailId>``, so a prescription's items are one range of the
    unique key index. (Items are otherwise found by their prescription's business time, which
    a sweep reads for a whole batch in one statement, but which reads every item of that
    second: copies of one world, or a busy hospital, give many prescriptions the same time.)"""
    if not recipes:
        return []
    if _postgres(session):
        # one statement: the key ranges as arrays, each range read by the unique key index —
        # a LATERAL subquery behind ``OFFSET 0`` (not pulled up into a join), since the
        # planner, not knowing the arrays' length, may otherwise hash-join every item of the
        # institution against the ranges
        keyed = (
            func.unnest(
                bindparam(None, [inst for inst, _ in recipes], type_=ARRAY(Integer)),
                bindparam(None, [key + "|" for _, key in recipes], type_=ARRAY(Text)),
                bindparam(None, [key + "}" for _, key in recipes], type_=ARRAY(Text)),
            )
            .table_valued("inst", "lo", "hi")
            .render_derived(name="ranges")
        )
        items = (
            record_query()
            .where(
                Record.institution_id == keyed.c.inst,
                Record.dataset == "prescription_item",
                Record.key >= keyed.c.lo,
                Record.key < keyed.c.hi,
            )
            .offset(0)
            .lateral("items")
        )
        stmt = select(*items.c).select_from(keyed).join(items, true())
        return [Rec(*row) for row in await rows_of(session, stmt)]
    out: list[Rec] = []
    for part in chunks(recipes, 50):
        ranges = [
            and_(
                Record.institution_id == inst,
                Record.key >= key + "|",
                Record.key < key + "}",  # "}" follows "|": every key "<recipeID>|…"
            )
            for inst, key in part
        ]
        out += await load_records(session, Record.dataset == "prescription_item", or_(*ranges))
    return out


_K = TypeVar("_K")


def _not_cached(
    answers: dict[tuple[int, _K], list[Rec]], keys: Iterable[_K], insts: Sequence[int], idx: Index
) -> set[_K]:
    """The keys some institution of ``insts`` has no cached answer for; the records of the
    answers that are cached go into ``idx``."""
    todo: set[_K] = set()
    for key in keys:
        for inst in insts:
            answer = answers.get((inst, key))
            if answer is None:
                todo.add(key)
            else:
                for rec in answer:
                    idx.add(rec)
    return todo


async def load_index(
    session: AsyncSession,
    subjects: Sequence[Rec],
    *,
    now: datetime,
    grace: timedelta,
    org_registry: set[str] | None = None,
    cache: BaseCache | None = None,
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
    visit_datasets: set[str] = set()
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
        needs = _VISIT_NEEDS.get(r.dataset)
        if needs:
            visit_datasets.update(needs)
            if r.visit_no:
                visits.add(r.visit_no)
            buss = d.get("bussID")
            if isinstance(buss, str) and buss:
                visits.add(buss)
    for ds, keys in wanted.items():
        # records of the batch itself (a payment's prescription in the same batch) are not read
        # again
        wanted[ds] = {k for k in keys if any((i, ds, k) not in idx.by_key for i in insts)}
    if cache is not None:
        for ds in set(wanted) - BASE_DATASETS:
            todo_set: set[str] = set()
            for k in wanted[ds]:
                hits = [cache.recent.get((inst, ds, k)) for inst in insts]
                if None in hits:
                    todo_set.add(k)
                for hit in hits:
                    if hit is not None:
                        idx.add(hit)
            wanted[ds] = todo_set
        for ds in BASE_DATASETS & set(wanted):
            todo_keys: set[str] = set()
            for k in wanted[ds]:
                for inst in insts:
                    ck = (inst, ds, k)
                    if ck not in cache.records:
                        todo_keys.add(k)
                        continue
                    hit = cache.records[ck]
                    if hit is not None:
                        idx.add(hit)
            wanted[ds] = todo_keys
    found = await load_by_keys(session, insts, wanted)
    for rec in found:
        idx.add(rec)
    read = [*subjects, *found]  # what this batch read (for the sweep's cache)
    if cache is not None:
        for rec in found:
            if rec.dataset in BASE_DATASETS:
                cache.records[(rec.institution_id, rec.dataset, rec.key)] = rec
        for ds in BASE_DATASETS & set(wanted):
            for k in wanted[ds]:
                for inst in insts:
                    cache.records.setdefault((inst, ds, k), None)
    if cache is not None and visits:
        # a sweep reads every dataset any rule reads by visit, once per visit: the visit's
        # other records are asked for again by the batches of its other datasets
        visit_datasets = set(VISIT_DATASETS)
        visits = _not_cached(cache.visits, visits, insts, idx)
    for part in chunks(sorted(visits), chunk_size(session)):
        loaded = await load_records(
            session,
            Record.institution_id.in_(insts),
            among(session, Record.visit_no, part),
            Record.dataset.in_(sorted(visit_datasets)),
        )
        for rec in loaded:
            idx.add(rec)
        read += loaded
        if cache is not None:
            cache.remember_visits(insts, part, loaded)
    if cache is not None and cache.items_of is not None:
        # the worker's round: each prescription's own items, by key (cached by ``expand``)
        todo_recipes: list[tuple[int, str]] = []
        for r in subjects:
            if r.dataset == "prescription":
                recipe = (r.institution_id, r.key)
                answer = cache.items_of.get(recipe)
                if answer is None:
                    todo_recipes.append(recipe)
                else:
                    for rec in answer:
                        idx.add(rec)
        loaded = await load_items_of(session, todo_recipes)
        cache.remember_items(todo_recipes, loaded)
        for rec in loaded:
            idx.add(rec)
        read += loaded
        times: set[datetime] = set()  # every prescription's items are read, whatever their time
        by_key = True
    else:
        times = {
            r.business_time for r in subjects if r.dataset == "prescription" and r.business_time
        }
        by_key = False
    for part in chunks(sorted(times), chunk_size(session)):
        loaded = await load_records(
            session,
            Record.institution_id.in_(insts),
            Record.dataset == "prescription_item",
            among(session, Record.business_time, part),
        )
        for rec in loaded:
            idx.add(rec)
        read += loaded
    # Items whose datein differs from their prescription's (a data error) are found by key.
    short = [
        (r.institution_id, r.key)
        for r in subjects
        if not by_key
        and r.dataset == "prescription"
        and len(idx.items_of(r.institution_id, r.key)) < _count(r.raw("itemCount"))
    ]
    for rec in await load_items_of(session, short):
        idx.add(rec)
    if "outpatient" in datasets:
        todo = [i for i in insts if cache is None or i not in cache.agreements]
        if todo:
            loaded = await load_records(
                session, Record.institution_id.in_(todo), Record.dataset == "agreement"
            )
            if cache is not None:
                for i in todo:
                    cache.agreements[i] = [r for r in loaded if r.institution_id == i]
            for rec in loaded:
                idx.add(rec)
        if cache is not None:
            for i in insts:
                if i not in todo:
                    for rec in cache.agreements.get(i, ()):
                        idx.add(rec)
    if "telemedicine" in datasets:
        if org_registry is None:
            org_registry = await load_org_registry(session)
        idx.org_codes |= org_registry
    if cache is not None:
        cache.remember(read)
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
