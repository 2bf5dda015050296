"""Reads behind the regulator's pages (监管总览, per hospital), from the daily rollups only.

Nothing here counts the record table: a period's figures are sums of ``quality_day`` rows (one
per institution, dataset and day), so a page costs the same for 10,000 or 10,000,000 records.
Ratios are computed from the summed counts (a weighted mean, never a mean of daily ratios).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Any, Final

from sqlalchemy import BigInteger, String, and_, case, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from imsp.auth.models import Institution
from imsp.standard.model import load_standard
from imsp.supervision import months
from imsp.supervision.quality import PRODUCTION, as_date
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
from imsp.supervision.workflow import OPEN_STATES

#: A day without any request is "silent" when the institution reported on at least this share
#: of the days of the look-back window before it (otherwise it simply does not report daily).
SILENT_WINDOW: Final = 28
SILENT_SHARE: Final = 0.5


def dataset_name(code: str) -> str:
    if not code:
        return "（仅令牌请求）"
    ds = load_standard().datasets.get(code)
    return ds.name if ds else code


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(slots=True)
class Totals:
    """Summed counts of rollup rows, with the derived ratios."""

    requests: int = 0
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    stored: int = 0
    optional_filled: int = 0
    optional_total: int = 0
    refs_checked: int = 0
    refs_resolved: int = 0
    delay_p95_s: float | None = None  # the worst daily p95 of the period
    rejected_by_code: Counter[str] = field(default_factory=Counter)

    def add(self, other: Totals) -> None:
        self.requests += other.requests
        self.received += other.received
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.stored += other.stored
        self.optional_filled += other.optional_filled
        self.optional_total += other.optional_total
        self.refs_checked += other.refs_checked
        self.refs_resolved += other.refs_resolved
        if other.delay_p95_s is not None:  # the worst, as SQL's max (a delay can be negative)
            self.delay_p95_s = (
                other.delay_p95_s
                if self.delay_p95_s is None
                else max(self.delay_p95_s, other.delay_p95_s)
            )
        if other.rejected_by_code:
            self.rejected_by_code.update(other.rejected_by_code)

    @property
    def validity(self) -> float | None:
        return ratio(self.accepted, self.received)

    @property
    def completeness(self) -> float | None:
        return ratio(self.optional_filled, self.optional_total)

    @property
    def integrity(self) -> float | None:
        return ratio(self.refs_resolved, self.refs_checked)


@dataclass(frozen=True, slots=True)
class Hospital:
    id: int
    org_code: str
    name: str


@dataclass(slots=True)
class HospitalLine:
    hospital: Hospital
    totals: Totals
    active_days: int
    silent: list[date]


@dataclass(slots=True)
class Overview:
    start: date
    end: date
    by_dataset: dict[str, Totals]
    by_day: dict[date, Totals]
    hospitals: list[HospitalLine]  # most records first
    total: Totals

    @property
    def active_hospitals(self) -> int:
        return sum(1 for h in self.hospitals if h.totals.received)


@dataclass(slots=True)
class HospitalView:
    hospital: Hospital
    start: date
    end: date
    by_dataset: dict[str, Totals]
    by_day: dict[date, Totals]
    total: Totals
    silent: list[date]


#: The summed columns, in the order :func:`_totals` reads them.
_SUMMED: Final = (
    "requests", "received", "accepted", "rejected", "stored", "optional_filled",
    "optional_total", "refs_checked", "refs_resolved",
)  # fmt: skip


def _sums(table: Any) -> tuple[Any, ...]:
    """The summed columns of a rollup table, in the order :func:`_totals` reads them."""
    # Cast: integers, not NUMERIC (parsing Decimals costs more than the query).
    return (
        *(cast(func.sum(getattr(table, n)), BigInteger) for n in _SUMMED),
        func.max(table.delay_p95_s),
    )


_SUMS = _sums(QualityDay)


def _totals(values: Sequence[Any]) -> Totals:
    n = [int(v or 0) for v in values[:9]]
    p95 = values[9]
    return Totals(
        requests=n[0],
        received=n[1],
        accepted=n[2],
        rejected=n[3],
        stored=n[4],
        optional_filled=n[5],
        optional_total=n[6],
        refs_checked=n[7],
        refs_resolved=n[8],
        delay_p95_s=float(p95) if p95 is not None else None,
    )


async def _grouped(
    session: AsyncSession, key: Any, *where: ColumnElement[bool], table: Any = QualityDay
) -> list[tuple[Any, Totals]]:
    """Summed rollup rows grouped by ``key`` (one aggregate query, computed by the database)."""
    rows = await session.execute(select(key, *_sums(table)).where(*where).group_by(key))
    return [(r[0], _totals(r[1:])) for r in rows.all()]


def _period(start: date, end: date, channel: str) -> list[ColumnElement[bool]]:
    return [QualityDay.channel == channel, QualityDay.day >= start, QualityDay.day <= end]


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def silent_days(
    active: set[date],
    start: date,
    end: date,
    *,
    window: int = SILENT_WINDOW,
    share: float = SILENT_SHARE,
) -> list[date]:
    """Days in [start, end] without any request although the institution usually reports.

    "Usually" = it had requests on at least ``share`` of the ``window`` days before that day. A
    day with only a token request or an empty upload is active ("nothing happened"), not silent."""
    first = start.toordinal() - window
    flags = bytearray((end - start).days + 1 + window)
    for day in active:
        i = day.toordinal() - first
        if 0 <= i < len(flags):
            flags[i] = 1
    return _silent(flags, start, window=window, share=share)


def _silent(
    flags: bytearray, start: date, *, window: int = SILENT_WINDOW, share: float = SILENT_SHARE
) -> list[date]:
    """:func:`silent_days` over ``flags``: one byte per day from ``window`` days before
    ``start``, 1 = active. A year's overview asks this for every institution, so the work is
    done by C loops: prefix sums, and a scan for the inactive days only."""
    need = share * window
    before = list(accumulate(flags, initial=0))  # before[i] = active days among flags[:i]
    out = []
    i = flags.find(0, window)
    while i != -1:
        if before[i] - before[i - window] >= need:
            out.append(start + timedelta(days=i - window))
        i = flags.find(0, i + 1)
    return out


async def _active_days(
    session: AsyncSession, start: date, end: date, channel: str, institution_id: int | None = None
) -> dict[int, set[date]]:
    """Days with any request per institution, from ``SILENT_WINDOW`` days before ``start``."""
    stmt = (
        select(QualityDay.institution_id, QualityDay.day)
        .where(
            QualityDay.channel == channel,
            QualityDay.day >= start - timedelta(days=SILENT_WINDOW),
            QualityDay.day <= end,
            QualityDay.requests > 0,
        )
        .group_by(QualityDay.institution_id, QualityDay.day)
    )
    if institution_id is not None:
        stmt = stmt.where(QualityDay.institution_id == institution_id)
    out: defaultdict[int, set[date]] = defaultdict(set)
    for inst, day in (await session.execute(stmt)).all():
        out[int(inst)].add(as_date(day))
    return out


async def _by_institution(
    session: AsyncSession, start: date, end: date, channel: str, *, use_months: bool = True
) -> tuple[dict[int, Totals], dict[int, bytearray]]:
    """Per institution: the period's sums, and the days with any request from
    ``SILENT_WINDOW`` days before ``start`` as one flag byte per day (see :func:`_silent`).

    With ``use_months`` (the pages): whole months from ``quality_institution_month`` — sums and
    the request-day bits, in one grouped query (the bits of every month of the look-back joined
    into one string by the database) — plus the partial months' days from
    ``quality_institution_day``. Without: one scan of ``quality_institution_day`` over the
    period and its look-back (the definition, which the tests compare against)."""
    if not use_months:
        return await _by_institution_days(session, start, end, channel)
    span = months.split(start, end)
    first = start - timedelta(days=SILENT_WINDOW)
    size = (end - first).days + 1
    m = QualityInstitutionMonth
    agg = func.group_concat if session.get_bind().dialect.name == "sqlite" else func.string_agg
    joined = agg(cast(m.month, String) + ":" + cast(m.active_days, String), ",")
    sums: list[Any] = []
    if span.months is not None:
        whole = and_(m.month >= span.months[0], m.month <= span.months[1])
        sums = [
            *(cast(func.sum(getattr(m, n)).filter(whole), BigInteger) for n in _SUMMED),
            func.max(m.delay_p95_s).filter(whole),
        ]
    rows = await session.execute(
        select(m.institution_id, joined, *sums)
        .where(
            m.channel == channel,
            m.month >= months.month_of(first),
            m.month <= months.month_of(end),
        )
        .group_by(m.institution_id)
    )
    totals: dict[int, Totals] = {}
    active: dict[int, bytearray] = {}
    places: dict[str, tuple[int, int, int]] = {}
    for r in rows.all():
        i = int(r[0])
        if sums and r[2] is not None:  # a whole month in the period (sums over none are NULL)
            totals[i] = _totals(r[2:])
        flags = _month_flags(str(r[1] or ""), first, size, places)
        if flags.find(1) != -1:
            active[i] = flags
    if span.days:
        t = QualityInstitutionDay
        for i, part in await _grouped(
            session,
            t.institution_id,
            t.channel == channel,
            months.in_ranges(t.day, span.days),
            table=t,
        ):
            totals.setdefault(int(i), Totals()).add(part)
    return totals, active


#: One byte per bit of a byte (least significant first): 8 day flags of an ``active_days`` byte.
_BIT_BYTES: Final = [bytes((b >> k) & 1 for k in range(8)) for b in range(256)]


def _month_flags(
    joined: str, first: date, size: int, places: dict[str, tuple[int, int, int]] | None = None
) -> bytearray:
    """Flags of the ``size`` days from ``first`` from ``"yyyy-mm-dd:bits,…"`` (month rows).
    ``places`` caches each month's clipped position (the same months recur per institution)."""
    places = {} if places is None else places
    flags = bytearray(size)
    for item in joined.split(",") if joined else ():
        month_text, _, bits = item.partition(":")
        mask = int(bits)
        if not mask:
            continue
        place = places.get(month_text)
        if place is None:
            month = date.fromisoformat(month_text[:10])
            offset = (month - first).days
            length = (months.next_month(month) - month).days
            place = places[month_text] = (offset, max(0, -offset), min(length, size - offset))
        offset, lo, hi = place
        if lo < hi:
            day_flags = b"".join([_BIT_BYTES[b] for b in mask.to_bytes(4, "little")])
            flags[offset + lo : offset + hi] = day_flags[lo:hi]
    return flags


async def _by_institution_days(
    session: AsyncSession, start: date, end: date, channel: str
) -> tuple[dict[int, Totals], dict[int, bytearray]]:
    """:func:`_by_institution` from the day sums only: one scan of ``quality_institution_day``
    giving the period's sums (``FILTER``) and the request days (joined into one string)."""
    dialect = session.get_bind().dialect.name
    t = QualityInstitutionDay
    in_period = t.day >= start
    day_text = cast(t.day, String)
    agg = func.group_concat if dialect == "sqlite" else func.string_agg
    joined = agg(day_text, ",").filter(t.requests > 0)
    sums = [
        *(cast(func.sum(getattr(t, n)).filter(in_period), BigInteger) for n in _SUMMED),
        func.max(t.delay_p95_s).filter(in_period),
    ]
    rows = await session.execute(
        select(t.institution_id, joined, *sums)
        .where(
            t.channel == channel,
            t.day >= start - timedelta(days=SILENT_WINDOW),
            t.day <= end,
        )
        .group_by(t.institution_id)
    )
    totals: dict[int, Totals] = {}
    active: dict[int, bytearray] = {}
    first = start - timedelta(days=SILENT_WINDOW)
    size = (end - first).days + 1
    position = {(first + timedelta(days=i)).isoformat(): i for i in range(size)}
    for r in rows.all():
        i = int(r[0])
        if r[2] is not None:  # a row in the period (sums over no row are NULL)
            totals[i] = _totals(r[2:])
        if r[1]:
            flags = active[i] = bytearray(size)
            for d in str(r[1]).split(","):
                at = position.get(d)
                if at is not None:
                    flags[at] = 1
    return totals, active


async def overview(
    session: AsyncSession,
    *,
    start: date,
    end: date,
    channel: str = PRODUCTION,
    use_months: bool = True,
) -> Overview:
    """The province's figures for [start, end] (Beijing dates, inclusive), from the summed
    rollups: per dataset and per day from ``quality_dataset_day`` (datasets × days rows), per
    institution and the silent days from ``quality_institution_month`` and the partial months'
    ``quality_institution_day`` rows (institutions × months rows; ``use_months=False`` reads
    the day rows only, with the same result), each a small aggregate returning few rows."""
    ds_where = [
        QualityDatasetDay.channel == channel,
        QualityDatasetDay.day >= start,
        QualityDatasetDay.day <= end,
    ]
    by_dataset: dict[str, Totals] = {}
    by_day: dict[date, Totals] = {d: Totals() for d in days(start, end)}
    t = QualityDatasetDay
    if session.get_bind().dialect.name == "postgresql":  # both groupings in one scan
        sets = func.grouping_sets(tuple_(t.dataset), tuple_(t.day))
        rows = await session.execute(
            select(t.dataset, t.day, *_sums(t)).where(*ds_where).group_by(sets)
        )
        for dataset, day, *values in rows.all():  # NOT NULL keys: the NULL names the set
            if dataset is not None:
                by_dataset[dataset] = _totals(values)
            else:
                by_day[as_date(day)] = _totals(values)
    else:
        by_dataset.update(await _grouped(session, t.dataset, *ds_where, table=t))
        for day, totals in await _grouped(session, t.day, *ds_where, table=t):
            by_day[as_date(day)] = totals
    by_inst, active = await _by_institution(session, start, end, channel, use_months=use_months)
    total = Totals()
    for part in by_dataset.values():
        total.add(part)
    hospitals = await hospitals_by_id(session, set(by_inst) | set(active))
    none = bytearray((end - start).days + 1 + SILENT_WINDOW)
    lines = [
        HospitalLine(
            hospitals[i],
            by_inst.get(i, Totals()),
            active.get(i, none).count(1, SILENT_WINDOW),
            _silent(active.get(i, none), start),
        )
        for i in hospitals
    ]
    lines.sort(key=lambda h: (-h.totals.received, h.hospital.name))
    ordered = dict(sorted(by_dataset.items(), key=lambda kv: _dataset_order(kv[0])))
    return Overview(start, end, ordered, by_day, lines, total)


def _dataset_order(code: str) -> int:
    ds = load_standard().datasets.get(code)
    return ds.number if ds else 99


async def hospitals_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Hospital]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Institution.id, Institution.org_code, Institution.name).where(
            Institution.id.in_(sorted(ids))
        )
    )
    return {int(i): Hospital(int(i), code, name) for i, code, name in rows.all()}


async def hospital_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    return {i: h.name for i, h in (await hospitals_by_id(session, ids)).items()}


async def hospital(
    session: AsyncSession,
    *,
    institution_id: int,
    start: date,
    end: date,
    channel: str = PRODUCTION,
    use_months: bool = True,
) -> HospitalView | None:
    """One hospital's datasets and daily volume for [start, end]; ``None`` if unknown.

    Per dataset from ``quality_day``; per day and the request days of the silent-day check from
    ``quality_institution_day`` (one row a day); the rejected records by issue code from
    ``quality_institution_month`` for whole months and ``quality_day`` for the partial ones.
    ``use_months=False`` reads ``quality_day`` for all of it (the definition the tests compare
    against)."""
    found = await hospitals_by_id(session, {institution_id})
    if not found:
        return None
    where = [*_period(start, end, channel), QualityDay.institution_id == institution_id]
    by_dataset = dict(await _grouped(session, QualityDay.dataset, *where))
    total = Totals()
    for t in by_dataset.values():
        total.add(t)
    by_day: dict[date, Totals] = {d: Totals() for d in days(start, end)}
    if not use_months:
        for day, t in await _grouped(session, QualityDay.day, *where):
            by_day[as_date(day)] = t
        codes = await session.scalars(
            select(QualityDay.rejected_by_code).where(*where, QualityDay.rejected > 0)
        )
        for by_code in codes:
            total.rejected_by_code.update({str(k): int(v) for k, v in by_code.items()})
        active = (await _active_days(session, start, end, channel, institution_id)).get(
            institution_id, set()
        )
    else:
        active = await _hospital_days(session, institution_id, start, end, channel, by_day)
        total.rejected_by_code.update(
            await _rejected_codes(session, institution_id, start, end, channel)
        )
    return HospitalView(
        found[institution_id],
        start,
        end,
        dict(sorted(by_dataset.items(), key=lambda kv: _dataset_order(kv[0]))),
        by_day,
        total,
        silent_days(active, start, end),
    )


async def _hospital_days(
    session: AsyncSession,
    institution_id: int,
    start: date,
    end: date,
    channel: str,
    by_day: dict[date, Totals],
) -> set[date]:
    """Fill ``by_day`` from the institution's day sums and return its days with any request
    from ``SILENT_WINDOW`` days before ``start`` (one query, one row a day)."""
    t = QualityInstitutionDay
    rows = await session.execute(
        select(t.day, *(cast(getattr(t, n), BigInteger) for n in _SUMMED), t.delay_p95_s).where(
            t.channel == channel,
            t.institution_id == institution_id,
            t.day >= start - timedelta(days=SILENT_WINDOW),
            t.day <= end,
        )
    )
    active: set[date] = set()
    for r in rows.all():
        day = as_date(r[0])
        if r[1]:
            active.add(day)
        if day >= start:
            by_day[day] = _totals(r[1:])
    return active


async def _rejected_codes(
    session: AsyncSession, institution_id: int, start: date, end: date, channel: str
) -> Counter[str]:
    """Rejected records by issue code over [start, end]: merged month rows for whole months,
    ``quality_day`` rows for the partial months' days."""
    span = months.split(start, end)
    out: Counter[str] = Counter()
    docs: list[dict[str, Any]] = []
    if span.months is not None:
        m = QualityInstitutionMonth
        docs.extend(
            await session.scalars(
                select(m.rejected_by_code).where(
                    m.channel == channel,
                    m.institution_id == institution_id,
                    m.month >= span.months[0],
                    m.month <= span.months[1],
                    m.rejected > 0,
                )
            )
        )
    if span.days:
        docs.extend(
            await session.scalars(
                select(QualityDay.rejected_by_code).where(
                    QualityDay.channel == channel,
                    QualityDay.institution_id == institution_id,
                    months.in_ranges(QualityDay.day, span.days),
                    QualityDay.rejected > 0,
                )
            )
        )
    for doc in docs:
        out.update({str(k): int(v) for k, v in doc.items()})
    return out


async def hospitals_reporting(
    session: AsyncSession, *, channel: str = PRODUCTION
) -> list[Hospital]:
    """Institutions with any rollup row (for the hospital picker): one primary-key probe each."""
    has_rows = (
        select(QualityDay.institution_id)
        .where(QualityDay.channel == channel, QualityDay.institution_id == Institution.id)
        .exists()
    )
    rows = await session.execute(
        select(Institution.id, Institution.org_code, Institution.name)
        .where(has_rows)
        .order_by(Institution.name)
    )
    return [Hospital(int(i), code, name) for i, code, name in rows.all()]


async def latest_day(session: AsyncSession, *, channel: str = PRODUCTION) -> date | None:
    day: date | None = await session.scalar(
        select(func.max(QualityDay.day)).where(QualityDay.channel == channel)
    )
    return day


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule_id: str
    severity: str
    total: int
    open: int


def _finding_period(start: date, end: date, channel: str) -> list[ColumnElement[bool]]:
    return [FindingDay.channel == channel, FindingDay.day >= start, FindingDay.day <= end]


_OPEN_SUM = func.sum(
    case((FindingDay.status.in_(sorted(OPEN_STATES)), FindingDay.findings), else_=0)
)


async def findings_by_rule(
    session: AsyncSession,
    *,
    start: date,
    end: date,
    institution_id: int | None = None,
    channel: str = PRODUCTION,
) -> list[RuleCount]:
    """Findings first seen in [start, end] per rule and severity (most first), with how many
    are still open."""
    stmt = (
        select(FindingDay.rule_id, FindingDay.severity, func.sum(FindingDay.findings), _OPEN_SUM)
        .where(*_finding_period(start, end, channel))
        .group_by(FindingDay.rule_id, FindingDay.severity)
    )
    if institution_id is not None:
        stmt = stmt.where(FindingDay.institution_id == institution_id)
    rows = [
        RuleCount(r, s, int(t or 0), int(o or 0))
        for r, s, t, o in (await session.execute(stmt)).all()
    ]
    return sorted(rows, key=lambda c: (-c.total, c.rule_id, c.severity))


async def findings_by_institution(
    session: AsyncSession, *, start: date, end: date, channel: str = PRODUCTION
) -> dict[int, tuple[int, int]]:
    """institution id → (findings first seen in the period, of which open)."""
    rows = await session.execute(
        select(FindingDay.institution_id, func.sum(FindingDay.findings), _OPEN_SUM)
        .where(*_finding_period(start, end, channel))
        .group_by(FindingDay.institution_id)
    )
    return {int(i): (int(t or 0), int(o or 0)) for i, t, o in rows.all()}


async def findings_by_day(
    session: AsyncSession,
    *,
    start: date,
    end: date,
    institution_id: int | None = None,
    channel: str = PRODUCTION,
) -> dict[date, int]:
    stmt = (
        select(FindingDay.day, func.sum(FindingDay.findings))
        .where(*_finding_period(start, end, channel))
        .group_by(FindingDay.day)
    )
    if institution_id is not None:
        stmt = stmt.where(FindingDay.institution_id == institution_id)
    found = {as_date(d): int(n or 0) for d, n in (await session.execute(stmt)).all()}
    return {d: found.get(d, 0) for d in days(start, end)}


@dataclass(frozen=True, slots=True)
class FindingCounts:
    """The overview's three views of the findings first seen in a period."""

    by_institution: dict[int, tuple[int, int]]
    by_rule: list[RuleCount]
    by_day: dict[date, int]


async def findings_summary(
    session: AsyncSession,
    *,
    start: date,
    end: date,
    channel: str = PRODUCTION,
    use_months: bool = True,
) -> FindingCounts:
    """:func:`findings_by_institution`, :func:`findings_by_rule` and :func:`findings_by_day`
    at once, for the overview. Whole months from ``finding_institution_month`` and
    ``finding_rule_month``, the partial months' days from ``finding_day`` (on PostgreSQL one
    scan with ``GROUPING SETS``), the daily trend from ``finding_total_day``: a year reads
    institutions × months rows, not one row per finding. ``use_months=False`` reads
    ``finding_day`` only (the definition the tests compare against)."""
    span = months.split(start, end) if use_months else months.Span(None, ((start, end),))
    by_inst: dict[int, tuple[int, int]] = {}
    rules: dict[tuple[str, str], tuple[int, int]] = {}
    if span.days:
        by_inst, rules = await _finding_groups(
            session, FindingDay.channel == channel, months.in_ranges(FindingDay.day, span.days)
        )
    if span.months is not None:
        im, rm = FindingInstitutionMonth, FindingRuleMonth
        for i, n, n_open in await session.execute(
            select(im.institution_id, func.sum(im.findings), _open_sum(im))
            .where(im.channel == channel, im.month >= span.months[0], im.month <= span.months[1])
            .group_by(im.institution_id)
        ):
            by_inst[int(i)] = _plus(by_inst.get(int(i)), (int(n or 0), int(n_open or 0)))
        for rule, severity, n, n_open in await session.execute(
            select(rm.rule_id, rm.severity, func.sum(rm.findings), _open_sum(rm))
            .where(rm.channel == channel, rm.month >= span.months[0], rm.month <= span.months[1])
            .group_by(rm.rule_id, rm.severity)
        ):
            key = (str(rule), str(severity))
            rules[key] = _plus(rules.get(key), (int(n or 0), int(n_open or 0)))
    if use_months:
        td = FindingTotalDay
        rows = await session.execute(
            select(td.day, td.findings).where(td.channel == channel, td.day >= start, td.day <= end)
        )
        found = {as_date(d): int(n) for d, n in rows.all()}
        by_day = {d: found.get(d, 0) for d in days(start, end)}
    else:
        by_day = await findings_by_day(session, start=start, end=end, channel=channel)
    by_rule = [RuleCount(r, sev, t, o) for (r, sev), (t, o) in rules.items()]
    return FindingCounts(
        by_inst, sorted(by_rule, key=lambda c: (-c.total, c.rule_id, c.severity)), by_day
    )


async def _finding_groups(
    session: AsyncSession, *where: ColumnElement[bool]
) -> tuple[dict[int, tuple[int, int]], dict[tuple[str, str], tuple[int, int]]]:
    """``finding_day`` rows matching ``where`` summed (total, open) per institution and per
    (rule, severity): on PostgreSQL one scan with ``GROUPING SETS``, elsewhere two queries."""
    t = FindingDay
    n, n_open = func.sum(t.findings), _open_sum(t)
    by_inst: dict[int, tuple[int, int]] = {}
    rules: dict[tuple[str, str], tuple[int, int]] = {}
    if session.get_bind().dialect.name == "postgresql":
        sets = func.grouping_sets(tuple_(t.institution_id), tuple_(t.rule_id, t.severity))
        rows = await session.execute(
            select(t.institution_id, t.rule_id, t.severity, n, n_open).where(*where).group_by(sets)
        )
        # the key columns are NOT NULL, so the NULLs of a row name its grouping set
        for inst, rule, severity, total, opened in rows.all():
            if inst is not None:
                by_inst[int(inst)] = (int(total or 0), int(opened or 0))
            else:
                rules[(str(rule), str(severity))] = (int(total or 0), int(opened or 0))
        return by_inst, rules
    for inst, total, opened in await session.execute(
        select(t.institution_id, n, n_open).where(*where).group_by(t.institution_id)
    ):
        by_inst[int(inst)] = (int(total or 0), int(opened or 0))
    for rule, severity, total, opened in await session.execute(
        select(t.rule_id, t.severity, n, n_open).where(*where).group_by(t.rule_id, t.severity)
    ):
        rules[(str(rule), str(severity))] = (int(total or 0), int(opened or 0))
    return by_inst, rules


def _plus(a: tuple[int, int] | None, b: tuple[int, int]) -> tuple[int, int]:
    return b if a is None else (a[0] + b[0], a[1] + b[1])


def _open_sum(table: Any) -> Any:
    return func.sum(case((table.status.in_(sorted(OPEN_STATES)), table.findings), else_=0))
