"""Upload receipts: references missing at upload time (warning -95 关联数据不存在).

An upload is never rejected because a record it refers to has not arrived: hospitals upload in
any order, and supervision waits (R43). The receipt only *warns*, naming the missing dataset and
key, so the hospital sees at once what it still has to send. The lookup is ONE query per batch
(by business key, and by visit number for follow-up records), run alongside the write.

Most references of real traffic are to records that exist — the institution's departments,
doctors and organisation in every record, a patient in each of their visits, a visit in its
prescriptions — so each server process keeps a bounded cache of references **known to exist**
(:class:`KnownReferences`): those its lookups found and the records its own uploads stored
(told by the exchange after the commit). When every reference of a batch is known, no query is
made. Only existence is cached, never absence: a record another process or node stores is found
by the next lookup. What a cached fact can miss is a record that stops existing elsewhere —
voided (``operType`` 3) through another process, or its month archived: for at most
``supervision.reference_cache_seconds`` after the fact was last confirmed by the database or by a
commit of this process, a receipt may then omit a -95 warning (a warning only; the worker's R43
reads the database). A record voided through this process is forgotten at once (and a lookup
that overlapped the void teaches nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache, partial
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import String, and_, any_, bindparam, cast, literal_column, or_, select
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from imsp.exchange.models import Record
from imsp.standard.issues import Issue
from imsp.standard.model import load_standard

__all__ = [
    "REFERENCE_MISSING",
    "KnownReferences",
    "PgReferenceCheck",
    "SqlReferenceCheck",
    "missing_references",
    "wanted_references",
]

#: Issue code of the warning (``warnings[].code``; business code -95 in the protocol catalogue).
REFERENCE_MISSING: Final = "reference_missing"

_NAMES: Final = {
    "patient": "患者信息", "doctor": "人员信息", "department": "科室信息",
    "organization": "机构信息", "prescription": "处方信息", "inspection": "检查检验申请",
    "outpatient": "门诊病历", "consult": "在线咨询",
}  # fmt: skip

#: dataset → (field, target datasets, how): "key" = the target's business key; "visit" = a
#: follow-up record (门诊病历 by visit number, or an online consultation by its key).
_REFS: Final[dict[str, tuple[tuple[str, tuple[str, ...], str], ...]]] = {}
_BASE = (
    ("patientId", ("patient",), "key"),
    ("doctorCertID", ("doctor",), "key"),
    ("deptID", ("department",), "key"),
    ("organID", ("organization",), "key"),
)
for _ds in ("register", "inspection", "outpatient", "consult", "appraise"):
    _REFS[_ds] = _BASE
_REFS["prescription"] = (*_BASE, ("bussID", ("outpatient", "consult"), "visit"))
_REFS["telemedicine"] = (
    ("patientId", ("patient",), "key"),
    ("applyDoctorCertID", ("doctor",), "key"),
    ("organID", ("organization",), "key"),
)
_REFS["payment"] = (
    ("patientId", ("patient",), "key"),
    ("organID", ("organization",), "key"),
    ("recipeID", ("prescription",), "key"),
    ("applyId", ("inspection",), "key"),
)
_REFS["prescription_item"] = (("recipeID", ("prescription",), "key"),)
for _ds in ("lis", "pacs"):
    _REFS[_ds] = (
        ("patientId", ("patient",), "key"),
        ("applyDoctorCertID", ("doctor",), "key"),
        ("applyDeptID", ("department",), "key"),
        ("applyId", ("inspection",), "key"),
    )
for _ds in ("doctor", "department"):
    _REFS[_ds] = (("organID", ("organization",), "key"),)


def wanted_references(
    dataset: str, records: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[tuple[int, str, tuple[str, ...], str, str]]:
    """(index, field, target datasets, how, value) of every reference the records make."""
    out = []
    for index, rec in records:
        for field, targets, how in _REFS.get(dataset, ()):
            value = rec.get(field)
            if isinstance(value, str) and value:
                out.append((index, field, targets, how, value))
    return out


async def missing_references(
    engine: AsyncEngine,
    *,
    institution_id: int,
    dataset: str,
    records: Sequence[tuple[int, Mapping[str, Any]]],
) -> dict[int, list[Issue]]:
    """Warnings (index → issues) for references of ``records`` (index, stored document) to
    records the institution has not uploaded. One query (SQLAlchemy: SQLite, and PostgreSQL
    where no :class:`PgReferenceCheck` is used), no cache: the definition the cached checks
    answer like."""
    wanted = wanted_references(dataset, records)
    if not wanted:
        return {}
    return _warnings(wanted, await _sql_rows(engine, institution_id, *_lookup(wanted)))


async def _sql_rows(
    engine: AsyncEngine,
    institution_id: int,
    datasets: list[str],
    values: list[str],
    visits: list[str],
) -> Sequence[Sequence[Any]]:
    conds = [and_(Record.dataset.in_(datasets), Record.key.in_(values))]
    if visits:
        conds.append(and_(Record.dataset == "outpatient", Record.visit_no.in_(visits)))
    stmt = select(Record.dataset, Record.key, Record.visit_no).where(
        Record.institution_id == institution_id, Record.voided.is_(False), or_(*conds)
    )
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).all()


_Wanted = list[tuple[int, str, tuple[str, ...], str, str]]


def _lookup(wanted: _Wanted) -> tuple[list[str], list[str], list[str]]:
    """What to look up: target datasets and keys (their cross product is searched: a superset,
    filtered by :func:`_warnings`), and visit numbers of 门诊病历."""
    keys = {
        (t, v)
        for _, _, targets, how, v in wanted
        for t in targets
        if how == "key" or t == "consult"
    }
    visits = {v for _, _, _, how, v in wanted if how == "visit"}
    return sorted({t for t, _ in keys}), sorted({v for _, v in keys}), sorted(visits)


def _warnings(wanted: _Wanted, rows: Iterable[Sequence[Any]]) -> dict[int, list[Issue]]:
    have = {(ds, k) for ds, k, _ in rows} | {(ds, vn) for ds, _, vn in rows if vn}
    out: dict[int, list[Issue]] = {}
    for index, field, targets, _, value in wanted:
        if have and any((t, value) in have for t in targets):
            continue
        issues = out.get(index)
        if issues is None:
            issues = out[index] = []
        issue = _made.get((field, targets, value))
        if issue is None:
            if len(_made) >= 10_000:
                _made.clear()
            msg = f"{_missing_head(field, targets)}{value}{_MISSING_TAIL}"
            issue = _made[field, targets, value] = Issue(field, REFERENCE_MISSING, msg, "warning")
        issues.append(issue)
    return out


#: Warnings already made (an Issue is immutable): a batch names the same doctor, department and
#: institution in most of its records. Bounded; cleared when full.
_made: dict[tuple[str, tuple[str, ...], str], Issue] = {}


_MISSING_TAIL: Final = " 尚未上传；记录已受理，监管规则待关联数据到达后评估"


@cache
def _missing_head(field: str, targets: tuple[str, ...]) -> str:
    """The warning's text before the value (the same for every record of a reference)."""
    names = "或".join(_NAMES.get(t, t) for t in targets)
    return f"关联数据不存在（-95）：{names}（{'/'.join(targets)}）{field}="


def _texts(name: str) -> Any:
    """``CAST(%(name)s AS VARCHAR[])``: a list bound as one PostgreSQL array."""
    return cast(bindparam(name, type_=pg.ARRAY(String)), pg.ARRAY(String))


@cache
def _pg_statement() -> str:
    """The lookup of :func:`missing_references` for PostgreSQL, compiled once: array parameters
    instead of IN lists (one statement text whatever the batch size; an IN list of up to 2,000
    values was rendered parameter by parameter for every batch)."""
    stmt = select(Record.dataset, Record.key, Record.visit_no).where(
        Record.institution_id == bindparam("inst"),
        Record.voided.is_(False),
        or_(
            and_(Record.dataset == any_(_texts("ds")), Record.key == any_(_texts("keys"))),
            and_(
                Record.dataset == literal_column("'outpatient'"),
                Record.visit_no == any_(_texts("visits")),
            ),
        ),
    )
    compiled = stmt.compile(dialect=pg.psycopg.dialect())  # type: ignore[no-untyped-call]
    assert set(compiled.params) == {"inst", "ds", "keys", "visits"}, compiled.params
    return str(compiled)


#: Where a fact about an 门诊病历's visit number is kept (the others by dataset and key).
_VISIT: Final = "outpatient:visit_no"


@cache
def _places(targets: tuple[str, ...], how: str) -> tuple[str, ...]:
    """The facts any one of which resolves a reference (as :func:`_warnings` reads the rows):
    the target datasets' keys; for a visit, also the visit numbers of 门诊病历."""
    return (*targets, _VISIT) if how == "visit" else targets


@cache
def _visit_field() -> str:
    return load_standard().datasets["outpatient"].columns["visit_no"]


class KnownReferences:
    """References known to exist, per institution: (institution, dataset, key) and
    (institution, visit number of a 门诊病历), each until ``ttl`` seconds after it was last
    learned, at most ``size`` of them (the oldest learned go first). ``ttl`` 0: nothing is
    kept. Process-local; one event loop uses it (no locking)."""

    def __init__(
        self, *, ttl: float, size: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self._clock = ttl, size, clock
        self._facts: OrderedDict[tuple[int, str, str], float] = OrderedDict()
        #: Records voided through this process so far: a lookup that ran while one was (its
        #: rows may show the record before the void) teaches nothing.
        self.voids = 0

    def __len__(self) -> int:
        return len(self._facts)

    def unknown(self, institution_id: int, wanted: _Wanted) -> _Wanted:
        """The references of ``wanted`` not known to exist (all of them when nothing is kept)."""
        facts = self._facts
        if not facts:
            return wanted
        now = self._clock()
        out = []
        for item in wanted:
            value = item[4]
            for place in _places(item[2], item[3]):
                fact = (institution_id, place, value)
                until = facts.get(fact)
                if until is not None:
                    if until > now:
                        break
                    del facts[fact]
            else:
                out.append(item)
        return out

    def found(self, institution_id: int, rows: Iterable[Sequence[Any]], voids: int) -> None:
        """Learn the rows a lookup returned: (dataset, key, visit number), none voided —
        unless a record was voided through this process since it started (``voids`` was
        :attr:`voids` then)."""
        if not self.ttl or voids != self.voids:
            return
        until = self._clock() + self.ttl
        for dataset, key, visit in rows:
            self._learn((institution_id, dataset, key), until)
            if visit and dataset == "outpatient":
                self._learn((institution_id, _VISIT, visit), until)

    def stored(self, institution_id: int, dataset: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Learn the rows an upload of this process committed (``writer.Batch.rows``: key
        ``k``, voided ``vd``, document ``d``): they exist now — or, voided, no longer."""
        if not self.ttl:
            return
        until = self._clock() + self.ttl
        visit = _visit_field() if dataset == "outpatient" else None
        for row in rows:
            facts = [(institution_id, dataset, row["k"])]
            number = row["d"].get(visit) if visit else None
            if isinstance(number, str) and number:
                facts.append((institution_id, _VISIT, number))
            for fact in facts:
                if row["vd"]:
                    self._facts.pop(fact, None)
                else:
                    self._learn(fact, until)
            if row["vd"]:
                self.voids += 1

    def _learn(self, fact: tuple[int, str, str], until: float) -> None:
        facts = self._facts
        if fact in facts:
            facts.move_to_end(fact)
        facts[fact] = until
        if len(facts) > self.size:
            facts.popitem(last=False)


_Rows = Callable[[int, list[str], list[str], list[str]], Any]
#: What one lookup asks for: target datasets, keys, visit numbers (:func:`_lookup`).
_Lookup = tuple[list[str], list[str], list[str]]


def _union(lookups: Sequence[_Lookup]) -> _Lookup:
    """One lookup asking for everything ``lookups`` ask for."""
    datasets, keys, visits = (sorted(set().union(*part)) for part in zip(*lookups, strict=True))
    return datasets, keys, visits


class _Coalesced:
    """Lookups of concurrent uploads share round trips, per institution: while one statement is
    in flight, the lookups that arrive wait and go together in the next — the union of their
    target datasets, keys and visit numbers, a superset each caller's :func:`_warnings` filters
    (as the cross product of one batch's datasets and keys already is). A single-record upload's
    lookup costs ~175 µs of client CPU, nearly all of it the round trip (psycopg, event loop),
    so the uploads a process serves at once pay for one. Every statement starts after each of
    its callers arrived, so a caller never gets rows older than its own call."""

    def __init__(self, rows: _Rows) -> None:
        self._rows = rows
        self._waiting: dict[int, list[tuple[_Lookup, asyncio.Future[Any]]]] = {}
        self._draining: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references
        self.statements = 0  # round trips made (tests, benchmarks)

    async def __call__(self, institution_id: int, lookup: _Lookup) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(institution_id, []).append((lookup, future))
        if institution_id not in self._draining:
            self._draining.add(institution_id)
            task = asyncio.get_running_loop().create_task(self._drain(institution_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, institution_id: int) -> None:
        try:
            while group := self._waiting.pop(institution_id, None):
                merged = group[0][0] if len(group) == 1 else _union([g for g, _ in group])
                self.statements += 1
                try:
                    rows = await self._rows(institution_id, *merged)
                except Exception as exc:  # every caller of the group gets it
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():  # a caller cancelled meanwhile
                            future.set_result(rows)
        finally:
            self._draining.discard(institution_id)


class _CachedCheck:
    """The receipts' check (``exchange.ingest.ReferenceCheck``): warnings for the references
    not known to exist, looked up (``_rows``: institution, target datasets, keys, visit numbers
    → rows, through :class:`_Coalesced`) only when some are not; ``stored`` is told of every
    committed upload."""

    def __init__(self, rows: _Rows, known: KnownReferences) -> None:
        self._rows, self.known = _Coalesced(rows), known

    async def __call__(
        self,
        *,
        institution_id: int,
        dataset: str,
        records: Sequence[tuple[int, Mapping[str, Any]]],
    ) -> dict[int, list[Issue]]:
        wanted = self.known.unknown(institution_id, wanted_references(dataset, records))
        if not wanted:
            return {}
        voids = self.known.voids
        rows = await self._rows(institution_id, _lookup(wanted))
        self.known.found(institution_id, rows, voids)
        return _warnings(wanted, rows)

    def stored(
        self, *, institution_id: int, dataset: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        self.known.stored(institution_id, dataset, rows)

    async def close(self) -> None:
        """Nothing to release (see :class:`PgReferenceCheck`)."""


class SqlReferenceCheck(_CachedCheck):
    """The check through the app's SQLAlchemy engine (SQLite)."""

    def __init__(self, engine: AsyncEngine, known: KnownReferences) -> None:
        super().__init__(partial(_sql_rows, engine), known)


class PgReferenceCheck(_CachedCheck):
    """The check on PostgreSQL (production): references not known to exist (``known``; none
    by default) looked up by the same query, compiled once, on a small pool of autocommit
    psycopg connections of its own — one round trip per batch. Through the app's
    SQLAlchemy engine every batch paid statement building, a pool pre-ping, BEGIN and ROLLBACK:
    ~1 ms of server CPU per single-record upload. ``close`` at app shutdown."""

    def __init__(
        self, url: str, *, pgbouncer: bool = False, known: KnownReferences | None = None
    ) -> None:
        super().__init__(self._pg_rows, KnownReferences(ttl=0) if known is None else known)
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.pool = AsyncConnectionPool(
            conninfo,
            # few connections: a lookup is one short round trip, so concurrent uploads take
            # turns (waiting, like the app's SQLAlchemy pool did, up to 30 s) rather than each
            # holding a PostgreSQL backend — max_connections is shared by every node's pools
            min_size=1,
            max_size=4,
            open=False,
            # behind PgBouncer's transaction pooling a server-side prepared statement would
            # meet another client's connection: never prepare there. Directly: prepared at
            # once, with ONE generic plan — the planner kept choosing custom plans for this
            # OR over a partitioned table (a generic one looks dearer by its estimates), and
            # planning each took 0.3–0.5 ms of PostgreSQL CPU per upload, ~5× the execution
            kwargs={
                "autocommit": True,
                **(
                    {"prepare_threshold": None}
                    if pgbouncer
                    else {
                        "prepare_threshold": 0,
                        "options": "-c plan_cache_mode=force_generic_plan",
                    }
                ),
            },
            name="imsp-references",
            timeout=30.0,
        )
        self._opened = False
        self._sql = _pg_statement()

    async def _pg_rows(
        self, institution_id: int, datasets: list[str], values: list[str], visits: list[str]
    ) -> list[Any]:
        if not self._opened:
            self._opened = True
            await self.pool.open(wait=False)
        params = {"inst": institution_id, "ds": datasets, "keys": values, "visits": visits}
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._sql, params)
            return await cur.fetchall()

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()
