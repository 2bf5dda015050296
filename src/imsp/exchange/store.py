"""Writing an upload: upsert its records, append their versions and log the request, atomically.

What every writer does (SQLAlchemy Core only; no ORM objects on the hot path):

* The batch travels to the database as ONE bind parameter — a JSON array of small row objects made
  by ``orjson`` in one call — which the database expands itself (``jsonb_to_recordset`` on
  PostgreSQL, ``json_each`` on SQLite): the Python cost per record is building one dict.
* ``INSERT … ON CONFLICT (institution_id, dataset, key) DO UPDATE … WHERE record.data IS DISTINCT
  FROM excluded.data RETURNING id, key, version``: a new key is inserted (version 1), a changed one
  replaced (version + 1); a record resubmitted unchanged is not rewritten and gets no new version,
  so redelivery by a client's outbox is harmless (reported as 201 "unchanged").
* One ``record_version`` row per stored version (exchange id, position in the body, time, appId)
  and the ``exchange_log`` row (with the compressed body) in the same unit of work: a stored record
  always traces to the request that carried it.

:class:`SqliteWriter` (demo, single node) runs the statements in one transaction.
``imsp.exchange.pgstore.PgWriter`` (production) does the same in a single statement and merges
concurrent requests into one (group commit).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, Protocol
from typing import cast as typing_cast

import orjson
from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from imsp.errors import ImspError, Unavailable
from imsp.exchange import archive
from imsp.exchange.models import ExchangeLog, Record, RecordVersion
from imsp.storage.base import UtcDateTime
from imsp.storage.db import Database

log = logging.getLogger("imsp.exchange")

RECORD = typing_cast(Table, Record.__table__)
RECORD_VERSION = typing_cast(Table, RecordVersion.__table__)
EXCHANGE_LOG = typing_cast(Table, ExchangeLog.__table__)

#: Per-row fields of the JSON rows parameter: short name → (record column, SQL type).
ROW_COLUMNS: Mapping[str, tuple[str, Any]] = {
    "k": ("key", Text()),
    "bt": ("business_time", DateTime(timezone=True)),
    "pid": ("patient_id", Text()),
    "pc": ("patient_cert_id", Text()),
    "dc": ("doctor_cert_id", Text()),
    "vn": ("visit_no", Text()),
    "dp": ("dept_code", Text()),
    "vd": ("voided", Boolean()),
    "d": ("data", pg.JSONB()),
}


@dataclass(slots=True)
class LogEntry:
    """One ``exchange_log`` row (see ``ExchangeLog``)."""

    id: uuid.UUID
    at: datetime
    institution_id: int | None
    app_id: str
    service: str
    dataset: str | None
    client_addr: str
    size: int
    sha256: str | None
    code: int
    total: int = 0
    success: int = 0
    fail: int = 0
    latency_ms: float = 0.0
    dry_run: bool = False
    atomic: bool = False
    channel: str = "production"
    chunked: bool = False
    body: bytes | None = None

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Batch:
    """The rows to store for one request (all from one institution and one dataset)."""

    institution_id: int
    dataset: str
    app_id: str
    rows: Sequence[dict[str, Any]]  # {"i": index, "k": key, "bt": …, "d": record}, keys unique


#: index in the batch → version now stored; indexes missing from it were unchanged.
Stored = dict[int, int]


class Writer(Protocol):
    """Where uploads are written: ``pgstore.PgWriter`` (PostgreSQL) or :class:`SqliteWriter`."""

    async def store(self, batch: Batch, *, log: LogEntry, started: float) -> Stored:
        """Store ``batch`` and its log row ``log`` atomically; ``started`` is the request's
        ``time.perf_counter()`` (for ``latency_ms``)."""
        ...

    async def log(self, entry: LogEntry, *, started: float) -> None:
        """Write the log row of a request that stored nothing."""
        ...

    async def close(self) -> None: ...


def db_failure(exc: Exception, state: str | None, *, connection_lost: bool) -> ImspError:
    """A database error as 50300 (connection lost, database unavailable) or 50000 — logged by
    type and SQLSTATE only: its parameters hold personal data and must not reach the logs."""
    log.error("exchange write failed: %s (sqlstate %s)", type(exc).__name__, state)
    if connection_lost or state is None or state.startswith("08"):
        return Unavailable()
    return ImspError()


def update_set(excluded: Any) -> dict[str, Any]:
    """What a resubmission replaces: every typed column, the data, the version, the request."""
    out: dict[str, Any] = {col: excluded[col] for col, _ in ROW_COLUMNS.values() if col != "key"}
    out.update(
        version=RECORD.c.version + literal_column("1"),
        updated_at=excluded.updated_at,
        exchange_id=excluded.exchange_id,
    )
    return out


class SqliteWriter:
    """SQLite: the upsert, the versions and the log row in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def store(self, batch: Batch, *, log: LogEntry, started: float) -> Stored:
        try:
            async with self.db.engine.begin() as conn:
                return await _sqlite_store(conn, batch, log=log, started=started)
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None

    async def log(self, entry: LogEntry, *, started: float) -> None:
        entry.latency_ms = (time.perf_counter() - started) * 1000
        params = entry.params()
        if entry.body is not None:  # a request none of whose records was stored (atomic, all bad)
            params["body"] = archive.compress(entry.body)
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(insert(EXCHANGE_LOG), params)
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None

    async def close(self) -> None:
        return None


async def _sqlite_store(
    conn: AsyncConnection, batch: Batch, *, log: LogEntry, started: float
) -> Stored:
    now = log.at
    params = {
        # Keys sorted: SQLite compares JSON as text, and a resend with its nodes in another order
        # must be "unchanged" here as on PostgreSQL (JSONB equality ignores key order).
        "rows": orjson.dumps(batch.rows, option=orjson.OPT_SORT_KEYS).decode(),
        "inst": batch.institution_id,
        "ds": batch.dataset,
        "now": now,
        "xid": log.id,
    }
    result = await conn.execute(_sqlite_upsert(), params)
    returned = {key: (rid, version) for rid, key, version in result}
    stored: Stored = {}
    versions: list[dict[str, Any]] = []
    for row in batch.rows:
        hit = returned.get(row["k"])
        if hit is not None:
            stored[row["i"]] = hit[1]
            versions.append(
                {
                    "record_id": hit[0],
                    "version": hit[1],
                    "exchange_id": log.id,
                    "position": row["i"],
                    "at": now,
                    "app_id": batch.app_id,
                }
            )
    if versions:
        await conn.execute(insert(RECORD_VERSION), versions)
    log.latency_ms = (time.perf_counter() - started) * 1000
    params = log.params()
    if log.body is not None:
        params["body"] = archive.compress(log.body)
    await conn.execute(insert(EXCHANGE_LOG), params)
    return stored


@cache
def _sqlite_upsert() -> Executable:
    each = func.json_each(bindparam("rows", type_=Text())).table_valued("value")
    source = (
        select(
            bindparam("inst", type_=Integer()),
            bindparam("ds", type_=String()),
            *(func.json_extract(each.c.value, f"$.{k}") for k in ROW_COLUMNS),
            literal_column("1"),
            bindparam("now", type_=UtcDateTime()),
            bindparam("now", type_=UtcDateTime()),
            bindparam("xid", type_=Uuid()),
        )
        .select_from(each)
        .where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
    )
    cols = [col for col, _ in ROW_COLUMNS.values()]
    ins = sqlite.insert(RECORD).from_select(
        ["institution_id", "dataset", *cols, "version", "created_at", "updated_at", "exchange_id"],
        source,
    )
    return ins.on_conflict_do_update(
        index_elements=["institution_id", "dataset", "key"],
        set_=update_set(ins.excluded),
        where=RECORD.c.data.is_distinct_from(ins.excluded.data),
    ).returning(RECORD.c.id, RECORD.c.key, RECORD.c.version)
