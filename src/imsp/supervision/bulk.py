"""Many rows in one statement of fixed text on PostgreSQL: ``INSERT … SELECT … FROM unnest(…)``.

SQLAlchemy's multi-row ``INSERT … VALUES`` ("insertmanyvalues") renders one placeholder per value:
a round of the worker writing 6,000 pending checks sent statements of ~7,000 placeholders each,
and psycopg parsed every such text again (too long for its query cache) — 40 % of the worker's
CPU. Here each column travels as ONE array parameter, so the statement text is the same for any
number of rows (parsed once, cached) and the values are adapted by psycopg's C dumpers.

PostgreSQL only; SQLite keeps SQLAlchemy's executemany / multi-row VALUES (see ``engine.apply``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["delete_keys", "insert_rows"]


@cache
def _array_types(table: Table) -> dict[str, tuple[str, bool]]:
    """column → (PostgreSQL array element type, whether the column is JSON)."""
    dialect = pg.psycopg.dialect()  # type: ignore[no-untyped-call]
    out = {}
    for col in table.c:
        is_json = isinstance(col.type.dialect_impl(dialect), JSON)
        typ = "text" if is_json else col.type.compile(dialect=dialect)
        out[col.name] = (typ, is_json)
    return out


def _arrays(table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    types = _array_types(table)
    params: dict[str, Any] = {}
    for c in columns:
        values = [r[c] for r in rows]
        if types[c][1]:
            values = [None if v is None else json.dumps(v) for v in values]
        params[f"a_{c}"] = values
    return params


def _unnest(table: Table, columns: Sequence[str]) -> tuple[str, str]:
    """(``SELECT`` list, ``FROM unnest(…) AS u(…)``) over one array parameter per column.
    Only the table's own column names reach the SQL text (values travel as parameters)."""
    types = _array_types(table)
    unknown = set(columns) - set(types)
    if unknown:
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
    arrays = ", ".join(f"%(a_{c})b::{types[c][0]}[]" for c in columns)
    select = ", ".join(f"u.{c}::jsonb" if types[c][1] else f"u.{c}" for c in columns)
    return select, f"unnest({arrays}) AS u({', '.join(columns)})"


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    tail: str = "",
) -> list[Any]:
    """``INSERT INTO table (columns of rows[0]) SELECT … FROM unnest(…) <tail>``; ``tail`` is an
    ``ON CONFLICT …`` and/or ``RETURNING …`` clause. Returns the rows RETURNING gave."""
    if not rows:
        return []
    columns = list(rows[0])
    select, source = _unnest(table, columns)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {select} FROM {source} {tail}"  # noqa: S608 — names from the table, values bound
    result = await conn.exec_driver_sql(sql, _arrays(table, columns, rows))
    return list(result.all()) if "RETURNING" in tail.upper() else []


async def delete_keys(conn: AsyncConnection, table: Table, keys: Sequence[dict[str, Any]]) -> None:
    """``DELETE FROM table`` the rows whose columns (the dicts' keys) equal one of ``keys``."""
    if not keys:
        return
    columns = list(keys[0])
    _, source = _unnest(table, columns)
    match = " AND ".join(f"{table.name}.{c} = u.{c}" for c in columns)
    sql = f"DELETE FROM {table.name} USING {source} WHERE {match}"  # noqa: S608 — as above
    await conn.exec_driver_sql(sql, _arrays(table, columns, keys))
