"""PostgreSQL writer: each request's records, versions, change-feed rows and log row in ONE
statement (the unit of work of ``imsp.exchange.writer``), and
concurrent requests merged into one statement (group commit).

Why: on a two-core server a single-record upload spent more CPU in per-statement overhead
(SQLAlchemy execution, the driver round trip, PostgreSQL's executor start-up and the commit's WAL
flush) than in everything else together. So:

* The statement is built once with SQLAlchemy Core (below), compiled to SQL text, and executed on
  a small psycopg pool of autocommit connections owned by the app — one round trip, no ORM, no
  per-request SQLAlchemy execution machinery. A single statement is atomic by itself.
* Requests arriving while a statement is in flight queue up; the next statement takes all of them
  (at most :data:`GROUP_ROWS` records, and never two rows with the same institution, dataset and
  key — PostgreSQL forbids one upsert touching a row twice). Nothing waits on a timer: an idle
  server writes a lone request at once, a busy one amortises the per-statement cost over many.
  Each request still succeeds or fails as a whole; if a merged statement fails, its requests are
  retried one by one so one bad request cannot fail its neighbours.

The statement (array parameters: ``req_*`` — one element per request, with its log row — and
``row_*`` — one element per record, tagged with its request ``q``)::

    WITH reqs AS (SELECT … FROM unnest(:req_q, :req_id, …) AS q(…)),
         rows AS (SELECT r.*, reqs.institution_id, … FROM unnest(:row_q, :row_i, …) AS r(…)
                  JOIN reqs ON r.q = reqs.q),
         known AS (SELECT … FROM rows JOIN record_key …),       -- the month of known keys
         keys AS (INSERT INTO record_key … SELECT … FROM rows WHERE not known
                  ON CONFLICT … DO UPDATE SET month = … RETURNING …),  -- the month of new ones
         up   AS (INSERT INTO record … SELECT …, coalesce(known.month, keys.month) FROM rows …
                  ORDER BY institution, dataset, key
                  ON CONFLICT (institution_id, dataset, key, month) DO UPDATE SET …
                  WHERE record.data IS DISTINCT FROM excluded.data RETURNING …),
         ver  AS (INSERT INTO record_version … FROM up JOIN rows … RETURNING exchange_id, position, version),
         chg  AS (INSERT INTO record_change … SELECT … FROM up),
         log  AS (INSERT INTO exchange_log … FROM reqs WHERE (SELECT count(*) FROM ver) >= 0
                  ON CONFLICT (id, at) DO NOTHING)
    SELECT exchange_id, position, version FROM ver

* Rows are written in (institution, dataset, key) order, so concurrent statements lock shared keys
  in the same order and do not deadlock; deadlocks and lost connections are retried anyway (the
  statement is idempotent: upsert, and the log row is ``ON CONFLICT DO NOTHING``).
* ``latency_ms`` = time from the request's start until the statement was sent, plus the
  statement's own time up to the moment its record rows were written (the ``WHERE`` on ``ver``
  makes the log insert wait for them); only the commit is not counted.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement, Executable

from imsp.errors import ImspError
from imsp.exchange import archive, codec
from imsp.exchange.writer import (
    ARCHIVED_PARTITION,
    CHANGE_COLUMNS,
    CONFLICT_COLUMNS,
    EXCHANGE_LOG,
    INSERT_COLUMNS,
    RECORD,
    RECORD_CHANGE,
    RECORD_KEY,
    RECORD_VERSION,
    ROW_COLUMNS,
    Batch,
    ColumnKind,
    LogEntry,
    Stored,
    db_failure,
    log,
    update_set,
)

#: Most records merged into one statement.
GROUP_ROWS: Final = 1000
#: Merged statements in flight at once per server process (= ingest pool connections).
IN_FLIGHT: Final = 2
#: How long a write waits for a pooled connection before answering 50300.
POOL_WAIT_SECONDS: Final = 3.0
#: deadlock_detected, serialization_failure: retried (the write is atomic and idempotent).
_RETRY_SQLSTATES: Final = frozenset({"40P01", "40001"})
_ATTEMPTS: Final = 3

#: The per-request columns of the ``reqs`` parameter: exchange_log columns (latency is computed)
#: plus ``q`` (the request's number in the group) and ``pre_ms``.
_REQ_TYPES: Final[dict[str, Any]] = {
    "q": Integer(),
    "id": Uuid(),
    "at": DateTime(timezone=True),
    "institution_id": Integer(),
    "app_id": Text(),
    "service": Text(),
    "dataset": Text(),
    "client_addr": Text(),
    "size": Integer(),
    "sha256": Text(),
    "code": Integer(),
    "total": Integer(),
    "success": Integer(),
    "fail": Integer(),
    "pre_ms": Float(),
    "dry_run": Boolean(),
    "atomic": Boolean(),
    "channel": Text(),
    "chunked": Boolean(),
    "body": LargeBinary(),  # archive.compress(body): zstd with the record dictionary
}


_LOG_FIELDS: Final = tuple(n for n in _REQ_TYPES if n not in ("q", "pre_ms"))


@dataclass(slots=True)
class _Item:
    """One request waiting to be written."""

    log: LogEntry
    batch: Batch | None
    started: float
    future: asyncio.Future[Stored]
    keys: frozenset[str] = field(default_factory=frozenset)


class PgWriter:
    """The PostgreSQL writer of one app (see the module docstring). Opens its pool on first use;
    ``close`` (at app shutdown) waits for queued writes, then closes the pool."""

    def __init__(self, url: str, *, pgbouncer: bool = False) -> None:
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        # Behind PgBouncer in transaction mode: no prepared statements (psycopg prepares a query
        # run 5 times, by name, on one server connection) and no start-up options (refused by
        # PgBouncer); the statement then sorts with the server's default work_mem.
        session: dict[str, Any] = (
            {"prepare_threshold": None} if pgbouncer else {"options": "-c work_mem=64MB"}
        )
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=IN_FLIGHT,
            open=False,
            kwargs={"autocommit": True, **session},
            name="imsp-exchange",
            # Only the IN_FLIGHT drain tasks borrow connections, so one is free at once unless
            # the database is unreachable — then answer 50300 quickly rather than hang.
            timeout=POOL_WAIT_SECONDS,
        )
        self._opened = False
        self._sql, self._defaults = _compiled(_group_statement())
        self._pending: deque[_Item] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def encode_time(value: str) -> str:
        """ISO 8601 with the Beijing offset; PostgreSQL casts it per row (``timestamptz``)."""
        if len(value) == 10:
            return value + "T00:00:00+08:00"
        return value[:10] + "T" + value[11:] + "+08:00"

    async def store(self, batch: Batch, *, log: LogEntry, started: float) -> Stored:
        keys = frozenset(row["k"] for row in batch.rows)
        return await self._submit(_Item(log, batch, started, self._future(), keys))

    async def log(self, entry: LogEntry, *, started: float) -> None:
        await self._submit(_Item(entry, None, started, self._future()))

    async def recode(self, entry: LogEntry) -> None:
        if not self._opened:
            self._opened = True
            await self.pool.open(wait=False)
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE exchange_log SET code = %s WHERE id = %s AND at = %s",
                    (entry.code, entry.id, entry.at),
                )
        except PoolTimeout as exc:
            raise db_failure(exc, None, connection_lost=True) from None
        except psycopg.Error as exc:
            lost = isinstance(exc, psycopg.OperationalError)
            raise db_failure(exc, exc.sqlstate, connection_lost=lost) from None

    async def close(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._opened:
            await self.pool.close()

    # ----------------------------------------------------------------------------- queueing

    @staticmethod
    def _future() -> asyncio.Future[Stored]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, item: _Item) -> Stored:
        self._pending.append(item)
        if self._in_flight < IN_FLIGHT:
            self._in_flight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await item.future

    def _take(self) -> list[_Item]:
        """The next group: queued requests in order, skipping (for the next group) any whose
        keys collide with the group's, up to ``GROUP_ROWS`` records. A skipped request keeps its
        keys reserved, so a later request sharing one of them cannot overtake it (its older
        version would then replace the newer one)."""
        group: list[_Item] = []
        taken: dict[tuple[int, str], set[str]] = {}
        rows = 0
        deferred: list[_Item] = []
        while self._pending:
            item = self._pending[0]
            n = len(item.batch.rows) if item.batch else 0
            if group and rows + n > GROUP_ROWS:
                break
            self._pending.popleft()
            if item.batch is not None:
                scope = (item.batch.institution_id, item.batch.dataset)
                seen = taken.setdefault(scope, set())
                if not seen.isdisjoint(item.keys):
                    seen.update(item.keys)
                    deferred.append(item)
                    continue
                seen.update(item.keys)
            group.append(item)
            rows += n
        self._pending.extendleft(reversed(deferred))
        return group

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._write_group(self._take())
        finally:
            self._in_flight -= 1

    async def _write_group(self, group: list[_Item]) -> None:
        try:
            stored = await self._execute(group)
        except Exception as exc:
            if len(group) == 1:
                _fail(group[0], exc)
                return
            for item in group:  # one by one, so a bad request fails alone
                try:
                    _resolve(item, (await self._execute([item])).get(item.log.id, {}))
                except Exception as single:
                    _fail(item, single)
            return
        for item in group:
            _resolve(item, stored.get(item.log.id, {}))

    # ----------------------------------------------------------------------------- executing

    async def _execute(self, group: list[_Item]) -> dict[Any, Stored]:
        if not self._opened:
            self._opened = True
            await self.pool.open(wait=False)
        for attempt in range(_ATTEMPTS):
            params = self._params(group)
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(self._sql, params)
                    out: dict[Any, Stored] = {}
                    for xid, position, version in await cur.fetchall():
                        out.setdefault(xid, {})[position] = version
                    return out
            except PoolTimeout as exc:
                raise db_failure(exc, None, connection_lost=True) from None
            except psycopg.Error as exc:
                lost = isinstance(exc, psycopg.OperationalError)
                if (exc.sqlstate in _RETRY_SQLSTATES or lost) and attempt + 1 < _ATTEMPTS:
                    continue
                raise db_failure(exc, exc.sqlstate, connection_lost=lost) from None
        raise AssertionError("unreachable")

    def _params(self, group: list[_Item]) -> dict[str, Any]:
        now = time.perf_counter()
        params = dict(self._defaults)
        reqs: dict[str, list[Any]] = {name: [] for name in _REQ_TYPES}
        cols: dict[str, list[Any]] = {name: [] for name in ROW_ARRAYS}
        encode = codec.encode
        for q, item in enumerate(group):
            entry = item.log
            reqs["q"].append(q)
            reqs["pre_ms"].append((now - item.started) * 1000)
            for name in _LOG_FIELDS:
                reqs[name].append(getattr(entry, name))
            if item.batch is None:
                continue
            rows = item.batch.rows
            cols["q"].extend([q] * len(rows))
            for name in _ROW_FIELDS:
                cols[name].extend([row.get(name) for row in rows])
            for name in _DOC_FIELDS:
                cols[name].extend([encode(row[name]) for row in rows])
        reqs["body"] = [None if b is None else archive.compress(b) for b in reqs["body"]]
        params.update({"req_" + k: v for k, v in reqs.items()})
        params.update({"row_" + k: v for k, v in cols.items()})
        return params


def _resolve(item: _Item, stored: Stored) -> None:
    if not item.future.done():
        item.future.set_result(stored)


def _fail(item: _Item, exc: Exception) -> None:
    if not isinstance(exc, ImspError):
        log.error("exchange write failed: %s", type(exc).__name__)
        exc = ImspError()
    if not item.future.done():
        item.future.set_exception(exc)


# --------------------------------------------------------------------------- the statement


def _arrays(prefix: str, types: dict[str, Any], alias: str) -> Any:
    """``unnest(%(p_a)b::T[], %(p_b)b::U[], …) AS alias(a, b, …)``: one row per array index."""
    fn = func.unnest(*(cast(bindparam(prefix + n), pg.ARRAY(t)) for n, t in types.items()))
    return fn.table_valued(*types).render_derived(name=alias)


#: How each kind of row column travels: one binary array parameter per column (``%(name)b``):
#: psycopg dumps a list of 500 strings in microseconds, and PostgreSQL reads each element as it
#: is — no JSON document to parse first. Times (ISO 8601 text) are cast per row; the record
#: travels as its stored bytes (``codec.encode``, a ``bytea`` array), compared as they are.
_ARRAY_TYPES: Final[dict[ColumnKind, Any]] = {
    "text": Text(),
    "time": Text(),
    "bool": Boolean(),
    "doc": LargeBinary(),
}
_CASTS: Final[dict[ColumnKind, Any]] = {"time": DateTime(timezone=True)}
#: The per-record array parameters: the request ``q``, the index ``i``, then the row columns.
ROW_ARRAYS: Final[dict[str, Any]] = {
    "q": Integer(),
    "i": Integer(),
    **{c.short: _ARRAY_TYPES[c.kind] for c in ROW_COLUMNS},
}
#: The row-dict keys read as they are (the record ``d`` is encoded on the way).
_ROW_FIELDS: Final = ("i", *(c.short for c in ROW_COLUMNS if c.kind != "doc"))
_DOC_FIELDS: Final = tuple(c.short for c in ROW_COLUMNS if c.kind == "doc")


@cache
def _group_statement() -> Executable:
    reqs = select(_arrays("req_", _REQ_TYPES, "q")).cte("reqs")
    r = _arrays("row_", ROW_ARRAYS, "r")
    typed = [
        (cast(r.c[c.short], _CASTS[c.kind]) if c.kind in _CASTS else r.c[c.short]).label(c.short)
        for c in ROW_COLUMNS
    ]
    rows = (
        select(
            r.c.i,
            *typed,
            reqs.c.institution_id.label("inst"),
            reqs.c.dataset.label("ds"),
            reqs.c.id.label("xid"),
            reqs.c.at.label("now"),
            reqs.c.app_id.label("app"),
            cast(func.date_trunc("month", func.timezone("Asia/Shanghai", reqs.c.at)), Date).label(
                "mon"
            ),
        )
        .select_from(r.join(reqs, r.c.q == reqs.c.q))
        .cte("rows")
    )
    rk = RECORD_KEY
    archived = select(ARCHIVED_PARTITION.c.month).where(ARCHIVED_PARTITION.c.parent == "record")
    # The month of each key already known (record_key's primary key: one probe a row) ...
    known = (
        select(rk.c.institution_id, rk.c.dataset, rk.c.key, rk.c.month)
        .select_from(
            rows.join(
                rk,
                and_(rk.c.institution_id == rows.c.inst, rk.c.dataset == rows.c.ds, rk.c.key == rows.c.k),
            )
        )
        .where(rk.c.month.not_in(archived))
        .cte("known")
    )  # fmt: skip
    on_known = and_(
        known.c.institution_id == rows.c.inst, known.c.dataset == rows.c.ds, known.c.key == rows.c.k
    )
    # ... and for the others, this request's month — unless a concurrent request wrote the key
    # first (the conflict returns its month) or the key's month was archived (then it starts
    # again in this month).
    new_keys = pg.insert(rk).from_select(
        ["institution_id", "dataset", "key", "month"],
        select(rows.c.inst, rows.c.ds, rows.c.k, rows.c.mon)
        .select_from(rows.outerjoin(known, on_known))
        .where(known.c.key.is_(None))
        .order_by(rows.c.inst, rows.c.ds, rows.c.k),
    )
    keys = (
        new_keys.on_conflict_do_update(
            index_elements=["institution_id", "dataset", "key"],
            set_={
                "month": case(
                    (rk.c.month.in_(archived), new_keys.excluded.month), else_=rk.c.month
                ),
                # where the key's earlier versions went (the trace says so)
                "archived_month": case(
                    (rk.c.month.in_(archived), rk.c.month), else_=rk.c.archived_month
                ),
            },
        )
        .returning(rk.c.institution_id, rk.c.dataset, rk.c.key, rk.c.month)
        .cte("keys")
    )
    on_keys = and_(
        keys.c.institution_id == rows.c.inst, keys.c.dataset == rows.c.ds, keys.c.key == rows.c.k
    )
    source = (
        select(
            rows.c.inst,
            rows.c.ds,
            *(rows.c[c.short] for c in ROW_COLUMNS),
            literal_column("1"),
            rows.c.now,
            rows.c.now,
            rows.c.xid,
            func.coalesce(known.c.month, keys.c.month),
        )
        .select_from(rows.outerjoin(known, on_known).outerjoin(keys, on_keys))
        .order_by(rows.c.inst, rows.c.ds, rows.c.k)
    )
    ins = pg.insert(RECORD).from_select(list(INSERT_COLUMNS), source)
    up = (
        ins.on_conflict_do_update(
            index_elements=list(CONFLICT_COLUMNS),
            set_=update_set(ins.excluded),
            where=RECORD.c.data.is_distinct_from(ins.excluded.data),
        )
        .returning(
            RECORD.c.id,
            RECORD.c.institution_id,
            RECORD.c.dataset,
            RECORD.c.key,
            RECORD.c.version,
            RECORD.c.updated_at,
        )
        .cte("up")
    )
    change_cte = (
        pg.insert(RECORD_CHANGE)
        .from_select(
            list(CHANGE_COLUMNS),
            select(
                up.c.institution_id, up.c.dataset, up.c.key, up.c.id, up.c.version, up.c.updated_at
            ),
        )
        .cte("chg")
    )
    ver = (
        pg.insert(RECORD_VERSION)
        .from_select(
            ["record_id", "version", "exchange_id", "position", "at", "app_id"],
            select(up.c.id, up.c.version, rows.c.xid, rows.c.i, rows.c.now, rows.c.app).select_from(
                up.join(
                    rows,
                    and_(
                        up.c.institution_id == rows.c.inst,
                        up.c.dataset == rows.c.ds,
                        up.c.key == rows.c.k,
                    ),
                )
            ),
        )
        .returning(
            RECORD_VERSION.c.exchange_id, RECORD_VERSION.c.position, RECORD_VERSION.c.version
        )
        .cte("ver")
    )
    waited = select(func.count()).select_from(ver).scalar_subquery() >= 0
    latency = reqs.c.pre_ms + extract(
        "epoch", func.clock_timestamp() - func.statement_timestamp()
    ) * literal_column("1000.0")
    values = {
        c.name: (latency if c.name == "latency_ms" else reqs.c[c.name]) for c in EXCHANGE_LOG.c
    }
    log_cte = (
        pg.insert(EXCHANGE_LOG)
        .from_select(list(values), select(*values.values()).where(waited))
        .on_conflict_do_nothing(index_elements=["id", "at"])  # (id, at): partitioned by at
        .cte("log")
    )
    return select(ver.c.exchange_id, ver.c.position, ver.c.version).add_cte(change_cte, log_cte)


def _compiled(stmt: Executable) -> tuple[str, dict[str, Any]]:
    """The psycopg SQL text of a Core statement and its literal parameters (compiled once); the
    per-record arrays are bound in binary format (``%(name)b``)."""
    assert isinstance(stmt, ClauseElement)
    compiled = stmt.compile(dialect=pg.psycopg.dialect())  # type: ignore[no-untyped-call]
    sql = re.sub(r"%\(((?:req|row)_\w+)\)s", r"%(\1)b", str(compiled))
    return sql, dict(compiled.params)
