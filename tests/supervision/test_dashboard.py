"""Silent days and chart rendering: pure parts of the regulator's pages."""

from __future__ import annotations

from datetime import date, timedelta

from imsp.supervision import charts
from imsp.supervision.dashboard import silent_days

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
