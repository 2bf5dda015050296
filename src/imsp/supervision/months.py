"""Month rollups: the daily rollups summed over Beijing calendar months (issue 10: a year's
overview over 10,000,000 records under 300 ms).

A page's period is read as its whole months from the month tables plus the days of the partial
months at its ends from the day tables (:func:`split`), so a year costs ~12 rows per institution
instead of 365, whatever the period's length:

* ``quality_institution_month`` — ``quality_institution_day`` over a month, with the days that
  had a request as bits (the silent-day check) and the month's rejected-by-code;
* ``finding_institution_month`` and ``finding_rule_month`` — ``finding_day`` over a month per
  institution, and per rule and severity, by current status;
* ``finding_total_day`` — ``finding_day`` over every institution, per day (the daily trend).

They are kept with the day rows they sum, in the same unit of work: whenever the refresh
(:mod:`imsp.supervision.quality`, :mod:`imsp.supervision.rollups`) replaces the day rows of some
(institution, day) pairs, it calls :func:`resum_quality` / :func:`resum_findings` with those
pairs, which rebuild every touched month row from the day rows. That is idempotent and right
however often a day is refreshed again. A row's month is that of its ``day``, which is already a
Beijing date (``quality.beijing_day``), so month boundaries are Beijing ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy import and_, delete, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Date

from imsp.supervision.rollup_models import (
    FindingDay,
    FindingInstitutionMonth,
    FindingRuleMonth,
    FindingTotalDay,
    QualityDay,
    QualityInstitutionDay,
    QualityInstitutionMonth,
)

Pair = tuple[int, date]

#: The additive columns of the quality sums (as ``quality.SUMMED``; repeated, not imported, so
#: that this module stays below ``quality`` in the import graph).
SUMMED: Final = (
    "requests", "received", "accepted", "rejected", "stored", "optional_filled",
    "optional_total", "refs_checked", "refs_resolved",
)  # fmt: skip


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True, slots=True)
class Span:
    """A period [start, end] as whole months (first and last month, inclusive; ``None`` if the
    period holds no whole month) and the day ranges (inclusive) of the partial months."""

    months: tuple[date, date] | None
    days: tuple[tuple[date, date], ...]


def split(start: date, end: date) -> Span:
    """``start`` … ``end`` (inclusive) as whole months plus the partial months' days."""
    first = start if start.day == 1 else next_month(start)
    after = next_month(end)  # the first day after end's month
    last_end = end if end + timedelta(days=1) == after else month_of(end) - timedelta(days=1)
    if first > last_end:
        return Span(None, ((start, end),) if start <= end else ())
    days = []
    if start < first:
        days.append((start, first - timedelta(days=1)))
    if last_end < end:
        days.append((last_end + timedelta(days=1), end))
    return Span((first, month_of(last_end)), tuple(days))


def in_ranges(column: Any, ranges: Iterable[tuple[date, date]]) -> ColumnElement[bool]:
    """``column`` within any of the inclusive date ranges."""
    return or_(*(and_(column >= a, column <= b) for a, b in ranges))


def day_bits(mask: int, month: date) -> list[date]:
    """The days of ``month`` whose bit is set in ``mask`` (``active_days``)."""
    return [month + timedelta(days=i) for i in range(31) if mask >> i & 1]


# --------------------------------------------------------------------------- quality


async def resum_quality(session: AsyncSession, pairs: Iterable[Pair], *, channel: str) -> None:
    """Rebuild the ``quality_institution_month`` rows of the months of ``pairs`` from
    ``quality_institution_day`` and (rejected-by-code) ``quality_day``. Never commits."""
    t = QualityInstitutionDay
    for institution_id, month in sorted({(i, month_of(d)) for i, d in pairs}):
        end = next_month(month)
        await session.execute(
            delete(QualityInstitutionMonth).where(
                QualityInstitutionMonth.channel == channel,
                QualityInstitutionMonth.month == month,
                QualityInstitutionMonth.institution_id == institution_id,
            )
        )
        rows = (
            await session.execute(
                select(t.day, *(getattr(t, n) for n in SUMMED), t.delay_p95_s).where(
                    t.channel == channel,
                    t.institution_id == institution_id,
                    t.day >= month,
                    t.day < end,
                )
            )
        ).all()
        if not rows:
            continue
        sums = [sum(int(r[k]) for r in rows) for k in range(1, len(SUMMED) + 1)]
        p95s = [float(r[-1]) for r in rows if r[-1] is not None]
        mask = sum(1 << (r[0].day - 1) for r in rows if r[1] > 0)
        codes: Counter[str] = Counter()
        for by_code in await session.scalars(
            select(QualityDay.rejected_by_code).where(
                QualityDay.channel == channel,
                QualityDay.institution_id == institution_id,
                QualityDay.day >= month,
                QualityDay.day < end,
                QualityDay.rejected > 0,
            )
        ):
            codes.update({str(k): int(v) for k, v in by_code.items()})
        await session.execute(
            insert(QualityInstitutionMonth),
            [
                {
                    "channel": channel,
                    "month": month,
                    "institution_id": institution_id,
                    **dict(zip(SUMMED, sums, strict=True)),
                    "delay_p95_s": max(p95s) if p95s else None,
                    "active_days": mask,
                    "rejected_by_code": dict(sorted(codes.items())),
                }
            ],
        )


# --------------------------------------------------------------------------- findings


async def resum_findings(session: AsyncSession, pairs: Iterable[Pair]) -> None:
    """Rebuild the finding month rows (per institution, per rule) of the months of ``pairs`` and
    the ``finding_total_day`` rows of their days from ``finding_day``. Never commits."""
    pairs = set(pairs)
    f = FindingDay
    for institution_id, month in sorted({(i, month_of(d)) for i, d in pairs}):
        await session.execute(
            delete(FindingInstitutionMonth).where(
                FindingInstitutionMonth.month == month,
                FindingInstitutionMonth.institution_id == institution_id,
            )
        )
        await session.execute(
            insert(FindingInstitutionMonth).from_select(
                ["channel", "month", "institution_id", "status", "findings"],
                select(f.channel, literal(month, Date), f.institution_id, f.status,
                       func.sum(f.findings))
                .where(
                    f.institution_id == institution_id,
                    f.day >= month,
                    f.day < next_month(month),
                )
                .group_by(f.channel, f.institution_id, f.status),
            )
        )  # fmt: skip
    for month in sorted({month_of(d) for _, d in pairs}):
        await session.execute(delete(FindingRuleMonth).where(FindingRuleMonth.month == month))
        await session.execute(
            insert(FindingRuleMonth).from_select(
                ["channel", "month", "rule_id", "severity", "status", "findings"],
                select(f.channel, literal(month, Date), f.rule_id, f.severity, f.status,
                       func.sum(f.findings))
                .where(f.day >= month, f.day < next_month(month))
                .group_by(f.channel, f.rule_id, f.severity, f.status),
            )
        )  # fmt: skip
    for day in sorted({d for _, d in pairs}):
        await session.execute(delete(FindingTotalDay).where(FindingTotalDay.day == day))
        await session.execute(
            insert(FindingTotalDay).from_select(
                ["channel", "day", "findings"],
                select(f.channel, f.day, func.sum(f.findings))
                .where(f.day == day)
                .group_by(f.channel, f.day),
            )
        )


FINDING_TABLES: Final = (FindingInstitutionMonth, FindingRuleMonth, FindingTotalDay)
