"""Sweeps: a full or partial re-run of rules over stored records (after a rule changes).

``imsp supervise sweep [--rule R19] [--org USCC] [--since DATE] [--jobs N]`` calls :func:`sweep`,
which walks the record table in id order, one batch per transaction (a sweep of millions of
records never holds one long transaction, and an interrupted sweep keeps what it finished).
With ``jobs`` > 1 (PostgreSQL only) the walk is shared by that many processes: the records are
cut into ``PARTS_PER_JOB * jobs`` ranges of ids holding about as many records each, and each
process takes the next range not yet swept. Every record is a subject of exactly one range, and
a finding or pending check belongs to its subject, so the processes never write the same row and
the result is the same as one process's. Ranges (not ``id % jobs``) keep each process's batches
contiguous: the records of one institution, and so the base data a batch refers to (kept by
each process between its batches), mostly go to one process instead of being read by all.
:func:`sweep_in_session` does the same inside the caller's unit of work (the worker, when an
organization or agreement change affects a whole institution).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from collections.abc import Callable, Collection
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import ColumnElement, Float, bindparam, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.config import Settings
from imsp.exchange.models import Record
from imsp.storage.db import Database
from imsp.supervision.engine import Stats, evaluate_records, without_gc
from imsp.supervision.loading import (
    BaseCache,
    load_org_registry,
    record_query,
    rows_of,
    to_rec,
)
from imsp.supervision.predicates import PREDICATES

__all__ = ["sweep", "sweep_in_session"]

#: Ranges of records per process of a parallel sweep (a process that finishes early takes
#: another range, so no process idles while another still has a long tail).
PARTS_PER_JOB: Final = 4


def fast_json(db: Database) -> None:
    """Decode JSONB with orjson on this database's new PostgreSQL connections: a sweep reads
    every stored document, and decoding is most of the cost of reading one."""
    if db.dialect != "postgresql" or getattr(db, "_fast_json", False):
        return

    def connected(dbapi_conn: Any, _record: Any) -> None:
        set_json_loads(orjson.loads, dbapi_conn.driver_connection)

    event.listen(db.engine.sync_engine, "connect", connected)
    db._fast_json = True  # type: ignore[attr-defined]


def _datasets(rule_ids: Collection[str] | None) -> list[str]:
    return sorted(
        {
            ds
            for rid, p in PREDICATES.items()
            if rule_ids is None or rid in rule_ids
            for ds in p.subjects
        }
    )


async def _batch(
    session: AsyncSession,
    *,
    after: int,
    limit: int,
    datasets: list[str],
    institution_id: int | None,
    since: datetime | None,
    upto: int | None = None,
) -> list[object]:
    stmt = record_query().where(Record.id > after, *_filters(datasets, institution_id, since))
    if upto is not None:
        stmt = stmt.where(Record.id <= upto)
    return await rows_of(session, stmt.order_by(Record.id).limit(limit))


def _filters(
    datasets: list[str], institution_id: int | None, since: datetime | None
) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [Record.dataset.in_(datasets)]
    if institution_id is not None:
        out.append(Record.institution_id == institution_id)
    if since is not None:
        out.append(Record.business_time >= since)
    return out


async def sweep_in_session(
    session: AsyncSession,
    *,
    now: datetime,
    grace: timedelta,
    rule_ids: Collection[str] | None = None,
    institution_id: int | None = None,
    since: datetime | None = None,
    batch: int = 1000,
) -> Stats:
    """Re-run the selected rules (all when None) over the matching records, in this session."""
    stats = Stats()
    datasets = _datasets(rule_ids)
    registry = await load_org_registry(session)
    cache = BaseCache()
    after = 0
    while True:
        rows = await _batch(
            session, after=after, limit=batch, datasets=datasets,
            institution_id=institution_id, since=since,
        )  # fmt: skip
        if not rows:
            return stats
        subjects = [to_rec(r) for r in rows]
        after = subjects[-1].id
        with without_gc():
            batch_stats = await evaluate_records(
                session,
                subjects,
                now=now,
                grace=grace,
                rule_ids=rule_ids,
                org_registry=registry,
                cache=cache,
            )
        stats.add(batch_stats)


async def sweep(
    db: Database,
    *,
    now: datetime,
    grace: timedelta,
    rule_ids: Collection[str] | None = None,
    institution_id: int | None = None,
    since: datetime | None = None,
    batch: int = 1000,
    progress: Callable[[Stats], None] | None = None,
    jobs: int = 1,
) -> Stats:
    """Like :func:`sweep_in_session`, committing after each batch (this is a job boundary).
    ``jobs`` > 1 shares the records among that many processes (PostgreSQL; SQLite has one
    writer at a time, so there a sweep always runs in this process)."""
    if jobs > 1 and db.dialect == "postgresql":
        return await _parallel(
            db.settings,
            jobs=jobs,
            now=now,
            grace=grace,
            rule_ids=rule_ids,
            institution_id=institution_id,
            since=since,
            batch=batch,
            progress=progress,
        )
    return await _sweep_part(
        db,
        now=now,
        grace=grace,
        rule_ids=rule_ids,
        institution_id=institution_id,
        since=since,
        batch=batch,
        progress=progress,
        part=None,
    )


async def _sweep_part(
    db: Database,
    *,
    now: datetime,
    grace: timedelta,
    rule_ids: Collection[str] | None,
    institution_id: int | None,
    since: datetime | None,
    batch: int,
    progress: Callable[[Stats], None] | None,
    part: tuple[int, int] | None,
    registry: set[str] | None = None,
) -> Stats:
    """The records of ids ``part`` = (after, upto] (all when None), a batch per transaction."""
    fast_json(db)
    stats = Stats()
    datasets = _datasets(rule_ids)
    if registry is None:
        async with db.session() as s:
            registry = await load_org_registry(s)
    cache = BaseCache()
    after, upto = part if part is not None else (0, None)
    while True:
        async with db.session() as s:
            with without_gc():
                rows = await _batch(
                    s, after=after, limit=batch, datasets=datasets,
                    institution_id=institution_id, since=since, upto=upto,
                )  # fmt: skip
                if not rows:
                    return stats
                subjects = [to_rec(r) for r in rows]
                after = subjects[-1].id
                batch_stats = await evaluate_records(
                    s,
                    subjects,
                    now=now,
                    grace=grace,
                    rule_ids=rule_ids,
                    org_registry=registry,
                    cache=cache,
                )
            stats.add(batch_stats)
        if progress is not None:
            progress(stats)


def _run_part(
    settings: Settings,
    part: tuple[int, int],
    now: datetime,
    grace: timedelta,
    rule_ids: Collection[str] | None,
    institution_id: int | None,
    since: datetime | None,
    batch: int,
    registry: set[str],
) -> Stats:
    """One process's share of a parallel sweep (runs in a worker process)."""

    async def go() -> Stats:
        db = Database(settings)
        try:
            return await _sweep_part(
                db,
                now=now,
                grace=grace,
                rule_ids=rule_ids,
                institution_id=institution_id,
                since=since,
                batch=batch,
                progress=None,
                part=part,
                registry=registry,
            )
        finally:
            await db.dispose()

    return asyncio.run(go())


async def _ranges(
    settings: Settings,
    n: int,
    datasets: list[str],
    institution_id: int | None,
    since: datetime | None,
) -> tuple[list[tuple[int, int]], set[str]]:
    """``n`` ranges of ids (after, upto] holding about as many of the swept records each
    (quantiles of their ids, one query), and the registry of organ codes (for every range)."""
    db = Database(settings)
    try:
        async with db.session() as s:
            # read once here, not by every range (it scans the record table)
            registry = await load_org_registry(s)
            fractions = [i / n for i in range(1, n)]
            cuts = (
                await s.execute(
                    select(
                        func.min(Record.id),
                        func.max(Record.id),
                        func.percentile_disc(
                            bindparam("f", fractions, type_=ARRAY(Float))
                        ).within_group(Record.id),
                    ).where(*_filters(datasets, institution_id, since))
                )
            ).one()
    finally:
        await db.dispose()
    low, high, inner = cuts
    if low is None:
        return [], registry
    bounds = sorted({low - 1, *inner, high})
    return list(itertools.pairwise(bounds)), registry


async def _parallel(
    settings: Settings,
    *,
    jobs: int,
    now: datetime,
    grace: timedelta,
    rule_ids: Collection[str] | None,
    institution_id: int | None,
    since: datetime | None,
    batch: int,
    progress: Callable[[Stats], None] | None,
) -> Stats:
    loop = asyncio.get_running_loop()
    rules = None if rule_ids is None else sorted(rule_ids)
    parts, registry = await _ranges(
        settings, jobs * PARTS_PER_JOB, _datasets(rule_ids), institution_id, since
    )
    # fork, not spawn: spawn re-imports the caller's main module (a script, the CLI's entry
    # point, pytest); each child opens its own Database and never touches the copied one
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [
            loop.run_in_executor(
                pool,
                _run_part,
                settings,
                part,
                now,
                grace,
                rules,
                institution_id,
                since,
                batch,
                registry,
            )
            for part in parts
        ]
        stats = Stats()
        for done in asyncio.as_completed(futures):
            stats.add(await done)
            if progress is not None:
                progress(stats)
    return stats
