"""Sweeps: a full or partial re-run of rules over stored records (after a rule changes).

``imsp supervise sweep [--rule R19] [--org USCC] [--since DATE]`` calls :func:`sweep`, which walks
the record table in id order, one batch per transaction (a sweep of millions of records never
holds one long transaction, and an interrupted sweep keeps what it finished).
:func:`sweep_in_session` does the same inside the caller's unit of work (the worker, when an
organization or agreement change affects a whole institution).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.exchange.models import Record
from imsp.storage.db import Database
from imsp.supervision.engine import Stats, evaluate_records
from imsp.supervision.loading import load_org_registry, record_query, to_rec
from imsp.supervision.predicates import PREDICATES

__all__ = ["sweep", "sweep_in_session"]


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
) -> list[object]:
    stmt = record_query().where(Record.id > after, Record.dataset.in_(datasets))
    if institution_id is not None:
        stmt = stmt.where(Record.institution_id == institution_id)
    if since is not None:
        stmt = stmt.where(Record.business_time >= since)
    return list((await session.execute(stmt.order_by(Record.id).limit(limit))).all())


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
        stats.add(
            await evaluate_records(
                session, subjects, now=now, grace=grace, rule_ids=rule_ids, org_registry=registry
            )
        )


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
) -> Stats:
    """Like :func:`sweep_in_session`, committing after each batch (this is a job boundary)."""
    stats = Stats()
    datasets = _datasets(rule_ids)
    async with db.session() as s:
        registry = await load_org_registry(s)
    after = 0
    while True:
        async with db.session() as s:
            rows = await _batch(
                s, after=after, limit=batch, datasets=datasets,
                institution_id=institution_id, since=since,
            )  # fmt: skip
            if not rows:
                return stats
            subjects = [to_rec(r) for r in rows]
            after = subjects[-1].id
            stats.add(
                await evaluate_records(
                    s, subjects, now=now, grace=grace, rule_ids=rule_ids, org_registry=registry
                )
            )
        if progress is not None:
            progress(stats)
