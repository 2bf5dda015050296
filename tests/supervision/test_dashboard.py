"""Silent days and chart rendering of the regulator's pages."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.service import ensure_institution
from imsp.config import Settings
from imsp.supervision import charts, dashboard, months
from imsp.supervision.dashboard import silent_days
from imsp.supervision.quality import PRODUCTION, SUMMED
from imsp.supervision.rollup_models import QualityInstitutionDay
from tests.supervision.builders import NOW, ORG
from tests.support.database import run

D0 = date(2026, 3, 1)


def _span(start: date, n: int, *, skip_weekday: int | None = None) -> set[date]:
    out = {start + timedelta(days=i) for i in range(n)}
    return {d for d in out if skip_weekday is None or d.weekday() != skip_weekday}


def test_a_gap_in_daily_reporting_is_silent() -> None:
    active = _span(D0, 40) - {D0 + timedelta(days=35)}
    assert silent_days(active, D0 + timedelta(days=30), D0 + timedelta(days=39)) == [
        D0 + timedelta(days=35)
    ]


def test_an_institution_that_rarely_reports_has_no_silent_days() -> None:
    weekly = {D0 + timedelta(days=7 * i) for i in range(10)}
    assert silent_days(weekly, D0 + timedelta(days=30), D0 + timedelta(days=60)) == []


def test_a_day_with_only_a_token_request_is_not_silent() -> None:
    active = _span(D0, 40)  # every day had a request, records or not
    assert silent_days(active, D0 + timedelta(days=30), D0 + timedelta(days=39)) == []


def test_charts_escape_labels_and_show_values() -> None:
    svg = charts.bars("每数据集", [("<script>", 5.0), ("处方信息", 1234.0)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "1,234" in svg
    col = charts.columns(
        "每日", [("2026-03-01", 2.0), ("2026-03-02", 0.0)], highlight=frozenset({"2026-03-02"})
    )
    assert col.count("<rect") == 2 and charts.RED in col


def _silent_by_definition(active: set[date], start: date, end: date) -> list[date]:
    """The definition, day by day (what the one-pass :func:`silent_days` must agree with)."""
    out = []
    day = start
    while day <= end:
        before = sum(1 for i in range(1, 29) if day - timedelta(days=i) in active)
        if day not in active and before >= 0.5 * 28:
            out.append(day)
        day += timedelta(days=1)
    return out


@given(
    offsets=st.sets(st.integers(-40, 120), max_size=150),
    first=st.integers(-10, 60),
    length=st.integers(0, 90),
)
def test_silent_days_agree_with_their_definition(
    offsets: set[int], first: int, length: int
) -> None:
    active = {D0 + timedelta(days=i) for i in offsets}
    start = D0 + timedelta(days=first)
    end = start + timedelta(days=length)
    assert silent_days(active, start, end) == _silent_by_definition(active, start, end)


def test_the_overview_counts_active_and_silent_days_from_the_rollups(settings: Settings) -> None:
    """Through the database: the days with requests come back as one joined string per
    institution and are turned into flags; a gap after a month of daily reports is silent, days
    before the period count for the look-back only, a day with no request row is not active."""
    start, end = D0 + timedelta(days=30), D0 + timedelta(days=39)
    gap = D0 + timedelta(days=35)
    quiet_row = D0 + timedelta(days=37)  # a row without requests (records counted elsewhere)

    async def work(s: AsyncSession) -> dashboard.Overview:
        inst = await ensure_institution(s, org_code=ORG, name="示范医院", now=NOW)
        zero = {c: 0 for c in SUMMED}
        for i in range(40):
            day = D0 + timedelta(days=i)
            if day == gap:
                continue
            s.add(
                QualityInstitutionDay(
                    channel=PRODUCTION, day=day, institution_id=inst.id, delay_p95_s=None,
                    **(zero | {"requests": 0 if day == quiet_row else 2, "received": 5}),
                )
            )  # fmt: skip
        await s.flush()
        # the month sums, as the refresh keeps them (the look-back straddles March and April)
        pairs = {(inst.id, D0 + timedelta(days=i)) for i in range(40)}
        await months.resum_quality(s, pairs, channel=PRODUCTION)
        by_days = await dashboard.overview(s, start=start, end=end, use_months=False)
        by_months = await dashboard.overview(s, start=start, end=end)
        assert by_months == by_days
        return by_months

    ov = run(settings, work)
    (line,) = ov.hospitals
    assert line.silent == [gap, quiet_row]
    assert line.active_days == 8 and line.totals.received == 5 * 9
