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


def _by_month(pairs: Iterable[Pair]) -> dict[date, list[list[int]]]:
    """month → the touched institutions, in chunks (one statement per chunk, not per pair)."""
    out: dict[date, set[int]] = {}
    for institution_id, day in pairs:
        out.setdefault(month_of(day), set()).add(institution_id)
    return {
        m: [sorted(ids)[k : k + _CHUNK] for k in range(0, len(ids), _CHUNK)]
        for m, ids in sorted(out.items())
    }


_CHUNK: Final = 500


async def resum_quality(session: AsyncSession, pairs: Iterable[Pair], *, channel: str) -> None:
    """Rebuild the ``quality_institution_month`` rows of the months of ``pairs`` from
    ``quality_institution_day`` and (rejected-by-code) ``quality_day``. Never commits."""
    t, q, m = QualityInstitutionDay, QualityDay, QualityInstitutionMonth
    for month, chunks in _by_month(pairs).items():
        end = next_month(month)
        for ids in chunks:
            await session.execute(
                delete(m).where(m.channel == channel, m.month == month, m.institution_id.in_(ids))
            )
            days: dict[int, list[Any]] = {}
            for r in await session.execute(
                select(
                    t.institution_id, t.day, *(getattr(t, n) for n in SUMMED), t.delay_p95_s
                ).where(
                    t.channel == channel, t.institution_id.in_(ids), t.day >= month, t.day < end
                )
            ):
                days.setdefault(int(r[0]), []).append(r[1:])
            if not days:
                continue
            codes: dict[int, Counter[str]] = {}
            for institution_id, by_code in await session.execute(
                select(q.institution_id, q.rejected_by_code).where(
                    q.channel == channel,
                    q.institution_id.in_(ids),
                    q.day >= month,
                    q.day < end,
                    q.rejected > 0,
                )
            ):
                codes.setdefault(int(institution_id), Counter()).update(
                    {str(k): int(v) for k, v in by_code.items()}
                )
            await session.execute(
                insert(m),
                [
                    _month_row(channel, month, i, rows, codes.get(i, Counter()))
                    for i, rows in sorted(days.items())
                ],
            )


def _month_row(
    channel: str, month: date, institution_id: int, rows: list[Any], codes: Counter[str]
) -> dict[str, Any]:
    """One ``quality_institution_month`` row from the month's (day, sums…, p95) rows."""
    sums = [sum(int(r[k]) for r in rows) for k in range(1, len(SUMMED) + 1)]
    p95s = [float(r[-1]) for r in rows if r[-1] is not None]
    return {
        "channel": channel,
        "month": month,
        "institution_id": institution_id,
        **dict(zip(SUMMED, sums, strict=True)),
        "delay_p95_s": max(p95s) if p95s else None,
        "active_days": sum(1 << (r[0].day - 1) for r in rows if r[1] > 0),  # requests > 0
        "rejected_by_code": dict(sorted(codes.items())),
    }


# --------------------------------------------------------------------------- findings


async def resum_findings(session: AsyncSession, pairs: Iterable[Pair]) -> None:
    """Rebuild the finding month rows (per institution, per rule) of the months of ``pairs`` and
    the ``finding_total_day`` rows of their days from ``finding_day``. Never commits."""
    pairs = set(pairs)
    f, fm = FindingDay, FindingInstitutionMonth
    for month, chunks in _by_month(pairs).items():
        for ids in chunks:
            await session.execute(delete(fm).where(fm.month == month, fm.institution_id.in_(ids)))
            await session.execute(
                insert(fm).from_select(
                    ["channel", "month", "institution_id", "status", "findings"],
                    select(f.channel, literal(month, Date), f.institution_id, f.status,
                           func.sum(f.findings))
                    .where(
                        f.institution_id.in_(ids), f.day >= month, f.day < next_month(month)
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
