"""Daily rollups the regulator's pages read, and the one entry point that keeps them current.

* ``quality_day`` — volume and data quality (:mod:`imsp.supervision.quality`);
* ``finding_day`` — findings per institution, Beijing day first seen, rule, severity and current
  status (here);
* their sums over Beijing months (and the findings' daily totals), rebuilt with the day rows
  they sum (:mod:`imsp.supervision.months`).

:func:`refresh_rollups` is what the supervision worker calls after each batch (and what
``imsp serve`` runs periodically through it): it recomputes only what changed since the last
watermark. :func:`recompute` rebuilds everything (after a rule change or a restore). Both never
commit. A finding's row moves between statuses when the workflow acts on it; the pairs touched
are found through ``updated_at``/``last_seen`` (the engine and the workflow set them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.exchange.models import ExchangeLog, Record
from imsp.supervision import months
from imsp.supervision.models import Finding
from imsp.supervision.quality import (
    LAG,
    TEST,
    Pair,
    as_date,
    beijing_day,
    day_bounds,
    recompute_quality,
    refresh_quality,
    set_watermark,
)
from imsp.supervision.rollup_models import FindingDay, RollupState

FINDINGS_STATE: Final = "finding_day"


async def _finding_pairs(session: AsyncSession, since: datetime | None) -> set[Pair]:
    day = beijing_day(Finding.first_seen, session.get_bind().dialect.name)
    stmt = select(Finding.institution_id, day).distinct()
    if since is not None:
        stmt = stmt.where(or_(Finding.updated_at >= since, Finding.last_seen >= since))
    return {(int(i), as_date(d)) for i, d in (await session.execute(stmt)).all()}


async def recompute_finding_pairs(
    session: AsyncSession, pairs: Iterable[Pair], *, now: datetime
) -> int:
    """Replace the ``finding_day`` rows of each (institution, day), and rebuild the month and
    daily-total rows they sum (:mod:`imsp.supervision.months`); returns rows written."""
    pairs = set(pairs)
    written = 0
    for institution_id, day in sorted(pairs):
        await session.execute(
            delete(FindingDay).where(
                FindingDay.institution_id == institution_id,
                FindingDay.day == day,
            )
        )
        start, end = day_bounds(day)
        # A finding's channel is that of the request that carried its record's current version;
        # a record no longer stored was test data purged (records are otherwise never deleted).
        channel = func.coalesce(ExchangeLog.channel, TEST)
        counts = await session.execute(
            select(channel, Finding.rule_id, Finding.severity, Finding.status, func.count())
            .select_from(Finding)
            .outerjoin(Record, Record.id == Finding.record_id)
            .outerjoin(ExchangeLog, ExchangeLog.id == Record.exchange_id)
            .where(
                Finding.institution_id == institution_id,
                Finding.first_seen >= start,
                Finding.first_seen < end,
            )
            .group_by(channel, Finding.rule_id, Finding.severity, Finding.status)
        )
        rows = [
            {
                "channel": ch,
                "institution_id": institution_id,
                "day": day,
                "rule_id": rule,
                "severity": severity,
                "status": status,
                "findings": int(n),
                "computed_at": now,
            }
            for ch, rule, severity, status, n in counts.all()
        ]
        if rows:
            await session.execute(insert(FindingDay), rows)
            written += len(rows)
    await months.resum_findings(session, pairs)
    return written


async def recompute_findings(session: AsyncSession, *, now: datetime) -> int:
    for table in (FindingDay, *months.FINDING_TABLES):
        await session.execute(delete(table))
    written = await recompute_finding_pairs(session, await _finding_pairs(session, None), now=now)
    await set_watermark(session, now, FINDINGS_STATE)
    return written


async def refresh_findings(session: AsyncSession, *, now: datetime) -> int:
    state = await session.get(RollupState, FINDINGS_STATE)
    if state is None:
        return await recompute_findings(session, now=now)
    since = min(state.watermark, now) - LAG
    written = await recompute_finding_pairs(session, await _finding_pairs(session, since), now=now)
    await set_watermark(session, now, FINDINGS_STATE)
    return written


async def refresh_rollups(session: AsyncSession, *, now: datetime) -> int:
    """Bring every rollup up to date incrementally; returns rows written. Never commits."""
    return await refresh_quality(session, now=now) + await refresh_findings(session, now=now)


async def recompute(session: AsyncSession, *, now: datetime) -> int:
    """Rebuild every rollup from the exchange log, the records and the findings."""
    return await recompute_quality(session, now=now) + await recompute_findings(session, now=now)
