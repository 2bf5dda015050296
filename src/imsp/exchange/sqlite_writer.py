"""SQLite writer (demo, single node): one upload's statements in one transaction.

The batch travels to SQLite as ONE bind parameter — a JSON array of the row dicts made by
``orjson`` in one call — which ``json_each`` expands: the Python cost per record is building one
dict and encoding the record (``codec.encode``; its bytes travel as hex text, turned back into a
BLOB by ``imsp_unhex``, a function ``storage.db`` registers on each SQLite connection). The
upsert returns the stored records; their version rows and change-feed rows and the log row follow
in the same transaction (``imsp.exchange.writer``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

import orjson
from sqlalchemy import (
    Date,
    Integer,
    String,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from imsp.exchange import archive, codec
from imsp.exchange import writer as seam
from imsp.exchange.partitions import month_of
from imsp.exchange.writer import Batch, LogEntry, Stored, db_failure
from imsp.storage.base import UtcDateTime
from imsp.storage.db import Database

_BEIJING_OFFSET: Final = timedelta(hours=8)


class SqliteWriter:
    """SQLite: the upsert, the versions, the change feed and the log row in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def encode_time(value: str) -> str:
        """The instant in the form SQLAlchemy stores on SQLite: naive UTC with microseconds."""
        utc = datetime.fromisoformat(value) - _BEIJING_OFFSET
        return utc.isoformat(sep=" ", timespec="microseconds")

    async def store(self, batch: Batch, *, log: LogEntry, started: float) -> Stored:
        try:
            async with self.db.engine.begin() as conn:
                return await _store(conn, batch, log=log, started=started)
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None

    async def log(self, entry: LogEntry, *, started: float) -> None:
        try:
            async with self.db.engine.begin() as conn:
                await _insert_log(conn, entry, started=started)
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None

    async def recode(self, entry: LogEntry) -> None:
        stmt = (
            update(seam.EXCHANGE_LOG)
            .where(seam.EXCHANGE_LOG.c.id == entry.id, seam.EXCHANGE_LOG.c.at == entry.at)
            .values(code=entry.code)
        )
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(stmt)
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None

    async def close(self) -> None:
        return None


async def _insert_log(conn: AsyncConnection, entry: LogEntry, *, started: float) -> None:
    entry.latency_ms = (time.perf_counter() - started) * 1000
    params = entry.params()
    if entry.body is not None:
        params["body"] = archive.compress(entry.body)
    await conn.execute(insert(seam.EXCHANGE_LOG), params)


async def _store(conn: AsyncConnection, batch: Batch, *, log: LogEntry, started: float) -> Stored:
    now = log.at
    encode = codec.encode
    # The record as stored (canonical: a resend with its nodes in another order encodes to the
    # same bytes, so it is "unchanged"), as hex text inside the JSON parameter.
    rows = [{**row, "d": encode(row["d"]).hex()} for row in batch.rows]
    params = {
        "rows": orjson.dumps(rows).decode(),
        "inst": batch.institution_id,
        "ds": batch.dataset,
        "now": now,
        "xid": log.id,
        "month": month_of(now),
    }
    await conn.execute(_new_keys(), params)
    result = await conn.execute(_upsert(), params)
    returned = {key: (rid, version) for rid, key, version in result}
    stored: Stored = {}
    versions: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for row in batch.rows:
        hit = returned.get(row["k"])
        if hit is None:
            continue
        rid, version = hit
        stored[row["i"]] = version
        versions.append(
            {
                "record_id": rid,
                "version": version,
                "exchange_id": log.id,
                "position": row["i"],
                "at": now,
                "app_id": batch.app_id,
            }
        )
        changes.append(
            {
                "institution_id": batch.institution_id,
                "dataset": batch.dataset,
                "business_key": row["k"],
                "record_id": rid,
                "version": version,
                "stored_at": now,
            }
        )
    if versions:
        await conn.execute(insert(seam.RECORD_VERSION), versions)
        await conn.execute(insert(seam.RECORD_CHANGE), changes)
    await _insert_log(conn, log, started=started)
    return stored


def _each() -> Any:
    return func.json_each(bindparam("rows", type_=Text())).table_valued("value")


def _extract(each: Any, column: seam.RowColumn) -> Any:
    value = func.json_extract(each.c.value, f"$.{column.short}")
    return func.imsp_unhex(value) if column.kind == "doc" else value


@cache
def _new_keys() -> Executable:
    """The month of keys never seen: this request's (``record_key``; see ``writer``)."""
    each = _each()
    source = (
        select(
            bindparam("inst", type_=Integer()),
            bindparam("ds", type_=String()),
            func.json_extract(each.c.value, "$.k"),
            bindparam("month", type_=Date()),
        )
        .select_from(each)
        .where(true())
    )
    ins = sqlite.insert(seam.RECORD_KEY).from_select(
        ["institution_id", "dataset", "key", "month"], source
    )
    return ins.on_conflict_do_nothing(index_elements=["institution_id", "dataset", "key"])


@cache
def _upsert() -> Executable:
    each = _each()
    rk = seam.RECORD_KEY
    month = (
        select(rk.c.month)
        .where(
            rk.c.institution_id == bindparam("inst", type_=Integer()),
            rk.c.dataset == bindparam("ds", type_=String()),
            rk.c.key == func.json_extract(each.c.value, "$.k"),
        )
        .scalar_subquery()
    )
    source = (
        select(
            bindparam("inst", type_=Integer()),
            bindparam("ds", type_=String()),
            *(_extract(each, c) for c in seam.ROW_COLUMNS),
            literal_column("1"),
            bindparam("now", type_=UtcDateTime()),
            bindparam("now", type_=UtcDateTime()),
            bindparam("xid", type_=Uuid()),
            month,
        )
        .select_from(each)
        .where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
    )
    ins = sqlite.insert(seam.RECORD).from_select(list(seam.INSERT_COLUMNS), source)
    return ins.on_conflict_do_update(
        index_elements=list(seam.CONFLICT_COLUMNS),
        set_=seam.update_set(ins.excluded),
        where=seam.RECORD.c.data.is_distinct_from(ins.excluded.data),
    ).returning(seam.RECORD.c.id, seam.RECORD.c.key, seam.RECORD.c.version)
