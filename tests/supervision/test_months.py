"""Month rollups: a period read as whole months + partial months' days gives exactly the figures
of the day rows (property tests on random rollup rows, both databases), the month rows follow a
day refreshed again, and a request just after midnight Beijing time counts in the new month."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_exchange_app
from imsp.auth.service import ensure_institution
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.supervision import dashboard, months, quality, rollups
from imsp.supervision.quality import PRODUCTION, TEST
from imsp.supervision.rollup_models import (
    FindingDay,
    FindingInstitutionMonth,
    FindingRuleMonth,
    FindingTotalDay,
    QualityDatasetDay,
    QualityDay,
    QualityInstitutionDay,
    QualityInstitutionMonth,
)
from tests.exchange.builders import ORG_A, get_token, make_credential, record
from tests.supervision.builders import NOW
from tests.support.database import run

D0 = date(2026, 1, 20)  # the random rows span late January to May: four month boundaries
SPAN = 120
ROLLUP_TABLES = (
    QualityDay, QualityInstitutionDay, QualityDatasetDay, QualityInstitutionMonth, FindingDay,
    FindingInstitutionMonth, FindingRuleMonth, FindingTotalDay,
)  # fmt: skip


# --------------------------------------------------------------------------- periods


@given(start=st.integers(0, 500), length=st.integers(0, 500))
def test_a_period_splits_into_whole_months_and_the_days_at_its_ends(
    start: int, length: int
) -> None:
    first = date(2025, 1, 1) + timedelta(days=start)
    last = first + timedelta(days=length)
    span = months.split(first, last)
    covered: list[date] = []
    if span.months is None:  # no whole month inside: the days of (at most) two partial months
        assert span.days == ((first, last),)
        assert months.month_of(last) <= months.next_month(first)
    for a, b in span.days:
        assert a <= b
        if span.months is not None:  # each end inside one partial month
            assert months.month_of(a) == months.month_of(b)
            assert not (a.day == 1 and months.next_month(a) - timedelta(days=1) == b)
        covered += dashboard.days(a, b)
    if span.months is not None:
        month = span.months[0]
        while month <= span.months[1]:
            covered += dashboard.days(month, months.next_month(month) - timedelta(days=1))
            month = months.next_month(month)
    assert sorted(covered) == dashboard.days(first, last)  # every day once


def test_month_bits_name_the_days() -> None:
    assert months.day_bits(0b101, date(2026, 2, 1)) == [date(2026, 2, 1), date(2026, 2, 3)]
    assert months.day_bits(1 << 30, date(2026, 3, 1)) == [date(2026, 3, 31)]


# --------------------------------------------------------------------------- random rollups

QUALITY_ROWS = st.lists(
    st.tuples(
        st.integers(0, 2),  # institution
        st.integers(0, SPAN - 1),  # day
        st.sampled_from(["", "patient", "prescription"]),
        st.integers(0, 3),  # requests
        st.integers(0, 50),  # received
        st.integers(0, 5),  # rejected
        st.one_of(st.none(), st.floats(-3600, 90000, allow_nan=False)),  # p95
        st.sampled_from([PRODUCTION, PRODUCTION, TEST]),
    ),
    max_size=40,
    unique_by=lambda r: (r[0], r[1], r[2], r[7]),
)
FINDING_ROWS = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, SPAN - 1),
        st.sampled_from(["R01", "R19", "R43"]),
        st.sampled_from(["violation", "risk"]),
        st.sampled_from(["pending_review", "confirmed", "dismissed", "rectified"]),
        st.integers(1, 9),
        st.sampled_from([PRODUCTION, PRODUCTION, TEST]),
    ),
    max_size=40,
    unique_by=lambda r: (r[0], r[1], r[2], r[3], r[4], r[6]),
)
PERIODS = st.lists(
    st.tuples(st.integers(-10, SPAN + 10), st.integers(0, SPAN)), min_size=1, max_size=4
)


async def _fill(
    s: AsyncSession, quality_rows: list[tuple[Any, ...]], finding_rows: list[tuple[Any, ...]]
) -> list[int]:
    """Random day rows, summed (institution-day, dataset-day, months) as the refresh does."""
    for table in ROLLUP_TABLES:
        await s.execute(delete(table))
    ids = [
        (await ensure_institution(s, org_code=f"9113000{k}TESTMONTH", name=f"医院{k}", now=NOW)).id
        for k in range(3)
    ]
    for k, offset, dataset, requests, received, rejected, p95, channel in quality_rows:
        s.add(
            QualityDay(
                channel=channel, institution_id=ids[k], day=D0 + timedelta(days=offset),
                dataset=dataset, requests=requests, received=received + rejected,
                accepted=received, rejected=rejected,
                rejected_by_code={"required": rejected, "-95": 1} if rejected else {},
                stored=received, optional_filled=received, optional_total=2 * received,
                delay_median_s=None, delay_p95_s=p95, refs_checked=received,
                refs_resolved=received // 2, computed_at=NOW,
            )
        )  # fmt: skip
    for k, offset, rule, severity, status, n, channel in finding_rows:
        s.add(
            FindingDay(
                channel=channel, institution_id=ids[k], day=D0 + timedelta(days=offset),
                rule_id=rule, severity=severity, status=status, findings=n, computed_at=NOW,
            )
        )  # fmt: skip
    await s.flush()
    pairs = {(ids[r[0]], D0 + timedelta(days=r[1])) for r in [*quality_rows, *finding_rows]}
    await quality.resum(s, pairs)
    await months.resum_findings(s, pairs)
    return ids


async def _both_ways(s: AsyncSession, ids: list[int], start: date, end: date) -> None:
    """Every figure the overview and hospital pages show, with and without the month tables."""
    for use_months in (False, True):
        ov = await dashboard.overview(s, start=start, end=end, use_months=use_months)
        found = await dashboard.findings_summary(s, start=start, end=end, use_months=use_months)
        views = [
            await dashboard.hospital(
                s, institution_id=i, start=start, end=end, use_months=use_months
            )
            for i in ids
        ]
        if not use_months:
            expected = (ov, found, views)
    assert (ov, found, views) == expected, (start, end)
    # the separate day-table reads the hospital page uses agree as well
    assert found.by_institution == await dashboard.findings_by_institution(s, start=start, end=end)
    assert found.by_rule == await dashboard.findings_by_rule(s, start=start, end=end)


@settings_(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quality_rows=QUALITY_ROWS, finding_rows=FINDING_ROWS, periods=PERIODS)
def test_pages_read_the_same_figures_with_and_without_month_tables(
    settings: Settings,
    quality_rows: list[tuple[Any, ...]],
    finding_rows: list[tuple[Any, ...]],
    periods: list[tuple[int, int]],
) -> None:
    async def work(s: AsyncSession) -> None:
        ids = await _fill(s, quality_rows, finding_rows)
        for offset, length in periods:
            start = D0 + timedelta(days=offset)
            await _both_ways(s, ids, start, start + timedelta(days=min(length, 365)))

    run(settings, work)


async def _month_rows(s: AsyncSession) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for table in (
        QualityInstitutionMonth, FindingInstitutionMonth, FindingRuleMonth, FindingTotalDay,
    ):  # fmt: skip
        for row in (await s.scalars(select(table))).all():
            values = {c.key: getattr(row, c.key) for c in table.__table__.columns}
            out.append((table.__tablename__, *sorted(values.items(), key=lambda kv: kv[0])))
    return sorted(out, key=repr)


@settings_(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quality_rows=QUALITY_ROWS,
    finding_rows=FINDING_ROWS,
    changes=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 7)), max_size=8),
)
def test_month_rows_follow_a_day_refreshed_again(
    settings: Settings,
    quality_rows: list[tuple[Any, ...]],
    finding_rows: list[tuple[Any, ...]],
    changes: list[tuple[int, int]],
) -> None:
    """Day rows change (a day refreshed again: counts move, a row disappears); re-summing just
    the touched pairs — twice, as a refresh may — gives the month rows of a full rebuild."""

    async def work(s: AsyncSession) -> None:
        ids = await _fill(s, quality_rows, finding_rows)
        touched: set[tuple[int, date]] = set()
        for index, value in changes:
            if quality_rows:
                k, offset, dataset, *_rest, channel = quality_rows[index % len(quality_rows)]
                key = (channel, ids[k], D0 + timedelta(days=offset), dataset)
                row = await s.get(QualityDay, key)
                if row is not None and value == 0:
                    await s.delete(row)
                elif row is not None:
                    row.requests, row.received, row.accepted = value % 2, value, value
                touched.add((ids[k], key[2]))
            if finding_rows:
                k, offset, rule, severity, status, _n, channel = finding_rows[
                    index % len(finding_rows)
                ]
                day = D0 + timedelta(days=offset)
                found = await s.get(FindingDay, (channel, ids[k], day, rule, severity, status))
                if found is not None and value == 0:
                    await s.delete(found)
                elif found is not None:
                    found.findings = value
                touched.add((ids[k], day))
        await s.flush()
        for _ in range(2):
            await quality.resum(s, touched)
            await months.resum_findings(s, touched)
        incremental = await _month_rows(s)
        everything = {
            (ids[r[0]], D0 + timedelta(days=r[1])) for r in [*quality_rows, *finding_rows]
        }
        for table in (QualityInstitutionMonth, *months.FINDING_TABLES):
            await s.execute(delete(table))
        await quality.resum(s, everything)
        await months.resum_findings(s, everything)
        assert incremental == await _month_rows(s)
        await _both_ways(s, ids, D0, D0 + timedelta(days=SPAN))

    run(settings, work)


# --------------------------------------------------------------------------- through uploads


def test_a_request_after_midnight_beijing_time_counts_in_the_new_month(settings: Settings) -> None:
    """2026-03-31 23:30 and 2026-04-01 00:30 in Beijing (15:30 and 16:30 UTC): March and April."""
    clock = FrozenClock(datetime(2026, 3, 31, 15, 30, tzinfo=UTC))
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        cred = make_credential(settings, clock, ORG_A)
        for n in (0, 1):
            r = exchange.post(
                "/uploadPatientFile",
                json=[record("patient", n=n)],
                headers={"accessToken": get_token(exchange, cred)},
            )
            assert r.status_code == 200, r.text
            run(settings, lambda s: rollups.refresh_rollups(s, now=clock.now()))
            clock.advance(hours=1)

    async def read(s: AsyncSession) -> list[tuple[date, int, int, list[date]]]:
        rows = (await s.scalars(select(QualityInstitutionMonth))).all()
        return sorted(
            (r.month, r.requests, r.received, months.day_bits(r.active_days, r.month)) for r in rows
        )

    march, april = date(2026, 3, 1), date(2026, 4, 1)
    # each month: the token request and the upload (one record)
    assert run(settings, read) == [
        (march, 2, 1, [date(2026, 3, 31)]),
        (april, 2, 1, [april]),
    ]
    view = run(
        settings,
        lambda s: dashboard.overview(s, start=date(2026, 3, 1), end=date(2026, 4, 30)),
    )
    assert [(d, t.received) for d, t in view.by_day.items() if t.received] == [
        (date(2026, 3, 31), 1),
        (april, 1),
    ]
