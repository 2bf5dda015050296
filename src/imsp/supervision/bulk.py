"""Many rows in one statement of fixed text on PostgreSQL: ``INSERT … SELECT … FROM
json_to_recordset(…)``.

SQLAlchemy's multi-row ``INSERT … VALUES`` ("insertmanyvalues") renders one placeholder per value:
a round of the worker writing 6,000 pending checks sent statements of ~7,000 placeholders each,
and psycopg parsed every such text again (too long for its query cache) — 40 % of the worker's
CPU. Here the rows travel as ONE parameter, a JSON array of objects encoded by orjson (C), so the
statement text is the same for any number of rows (parsed once, cached) and no value is adapted
one by one in Python (one array parameter per column, the previous form, still cost psycopg's
Python list dumper ~20 µs per row of a finding); PostgreSQL reads the objects back as typed rows.

PostgreSQL only; SQLite keeps SQLAlchemy's executemany / multi-row VALUES (see ``engine.apply``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["delete_keys", "insert_rows"]


@cache
def _types(table: Table) -> dict[str, str]:
    """column → its PostgreSQL type, as ``json_to_recordset`` is told (JSON columns: ``jsonb``)."""
    dialect = pg.psycopg.dialect()  # type: ignore[no-untyped-call]
    out = {}
    for col in table.c:
        is_json = isinstance(col.type.dialect_impl(dialect), JSON)
        out[col.name] = "jsonb" if is_json else col.type.compile(dialect=dialect)
    return out


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _rows_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one JSON array: by orjson (datetimes as ISO 8601, which PostgreSQL reads back
    exactly), by ``json`` for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(list(rows)).decode()
    except orjson.JSONEncodeError:
        return json.dumps(list(rows), default=_default)


def _recordset(table: Table, columns: Sequence[str]) -> str:
    """``json_to_recordset(%(rows)s::json) AS u(column type, …)``. Only the table's own column
    names and types reach the SQL text (values travel as the one parameter)."""
    types = _types(table)
    unknown = set(columns) - set(types)
    if unknown:
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
    spec = ", ".join(f"{c} {types[c]}" for c in columns)
    return f"json_to_recordset(%(rows)s::json) AS u({spec})"


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    tail: str = "",
) -> list[Any]:
    """``INSERT INTO table (columns of rows[0]) SELECT … FROM json_to_recordset(…) <tail>``;
    ``tail`` is an ``ON CONFLICT …`` and/or ``RETURNING …`` clause. Every row has the columns
    of the first. Returns the rows RETURNING gave."""
    if not rows:
        return []
    columns = list(rows[0])
    names = ", ".join(columns)
    select = ", ".join(f"u.{c}" for c in columns)
    sql = f"INSERT INTO {table.name} ({names}) SELECT {select} FROM {_recordset(table, columns)} {tail}"  # noqa: S608 — names from the table, values bound
    result = await conn.exec_driver_sql(sql, {"rows": _rows_json(rows)})
    return list(result.all()) if "RETURNING" in tail.upper() else []


async def delete_keys(conn: AsyncConnection, table: Table, keys: Sequence[dict[str, Any]]) -> None:
    """``DELETE FROM table`` the rows whose columns (the dicts' keys) equal one of ``keys``."""
    if not keys:
        return
    columns = list(keys[0])
    match = " AND ".join(f"{table.name}.{c} = u.{c}" for c in columns)
    sql = f"DELETE FROM {table.name} USING {_recordset(table, columns)} WHERE {match}"  # noqa: S608 — as above
    await conn.exec_driver_sql(sql, {"rows": _rows_json(keys)})
