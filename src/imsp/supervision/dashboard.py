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
from typing import Any, Final

from sqlalchemy import BigInteger, String, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from imsp.auth.models import Institution
from imsp.exchange.models import Record
from imsp.standard.model import load_standard
from imsp.supervision.models import Finding
from imsp.supervision.quality import PRODUCTION, as_date, day_bounds
from imsp.supervision.queries import on_channel, record_on_channel
from imsp.supervision.rollup_models import (
    FindingDay,
    QualityDatasetDay,
    QualityDay,
    QualityInstitutionDay,
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
        if other.delay_p95_s is not None:
            self.delay_p95_s = max(self.delay_p95_s or 0.0, other.delay_p95_s)
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
def _sums(table: Any) -> tuple[Any, ...]:
    """The summed columns of a rollup table, in the order :func:`_totals` reads them."""
    names = (
        "requests", "received", "accepted", "rejected", "stored", "optional_filled",
        "optional_total", "refs_checked", "refs_resolved",
    )  # fmt: skip
    # Cast: integers, not NUMERIC (parsing Decimals costs more than the query).
    return (
        *(cast(func.sum(getattr(table, n)), BigInteger) for n in names),
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
    out = []
    for day in days(start, end):
        if day in active:
            continue
        before = sum(1 for i in range(1, window + 1) if day - timedelta(days=i) in active)
        if before >= share * window:
            out.append(day)
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


async def _active_days_all(
    session: AsyncSession, start: date, end: date, channel: str
) -> dict[int, set[date]]:
    """Days with any request per institution (from ``SILENT_WINDOW`` days before ``start``),
    one row per institution: its days joined into one string by the database."""
    dialect = session.get_bind().dialect.name
    day_text = cast(QualityInstitutionDay.day, String)
    joined = (
        func.group_concat(day_text, ",") if dialect == "sqlite" else func.string_agg(day_text, ",")
    )
    rows = await session.execute(
        select(QualityInstitutionDay.institution_id, joined)
        .where(
            QualityInstitutionDay.channel == channel,
            QualityInstitutionDay.day >= start - timedelta(days=SILENT_WINDOW),
            QualityInstitutionDay.day <= end,
            QualityInstitutionDay.requests > 0,
        )
        .group_by(QualityInstitutionDay.institution_id)
    )
    return {
        int(i): {date.fromisoformat(d) for d in str(text).split(",") if d} for i, text in rows.all()
    }


async def overview(
    session: AsyncSession, *, start: date, end: date, channel: str = PRODUCTION
) -> Overview:
    """The province's figures for [start, end] (Beijing dates, inclusive), from the summed
    rollups: per dataset from ``quality_dataset_day`` (datasets × days rows), per day, per
    institution and the silent days from ``quality_institution_day`` (institutions × days rows),
    each a small aggregate returning few rows."""
    ds_where = [
        QualityDatasetDay.channel == channel,
        QualityDatasetDay.day >= start,
        QualityDatasetDay.day <= end,
    ]
    inst_where = [
        QualityInstitutionDay.channel == channel,
        QualityInstitutionDay.day >= start,
        QualityInstitutionDay.day <= end,
    ]
    by_dataset = dict(
        await _grouped(session, QualityDatasetDay.dataset, *ds_where, table=QualityDatasetDay)
    )
    by_day: dict[date, Totals] = {d: Totals() for d in days(start, end)}
    for day, t in await _grouped(
        session, QualityInstitutionDay.day, *inst_where, table=QualityInstitutionDay
    ):
        by_day[as_date(day)] = t
    by_inst = {
        int(i): t
        for i, t in await _grouped(
            session, QualityInstitutionDay.institution_id, *inst_where, table=QualityInstitutionDay
        )
    }
    total = Totals()
    for t in by_dataset.values():
        total.add(t)
    active = await _active_days_all(session, start, end, channel)
    hospitals = await _hospitals(session, set(by_inst) | set(active))
    lines = [
        HospitalLine(
            hospitals[i],
            by_inst.get(i, Totals()),
            len([d for d in active.get(i, set()) if start <= d <= end]),
            silent_days(active.get(i, set()), start, end),
        )
        for i in hospitals
    ]
    lines.sort(key=lambda h: (-h.totals.received, h.hospital.name))
    ordered = dict(sorted(by_dataset.items(), key=lambda kv: _dataset_order(kv[0])))
    return Overview(start, end, ordered, by_day, lines, total)


def _dataset_order(code: str) -> int:
    ds = load_standard().datasets.get(code)
    return ds.number if ds else 99


async def _hospitals(session: AsyncSession, ids: set[int]) -> dict[int, Hospital]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Institution.id, Institution.org_code, Institution.name).where(
            Institution.id.in_(sorted(ids))
        )
    )
    return {int(i): Hospital(int(i), code, name) for i, code, name in rows.all()}


async def hospital_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    return {i: h.name for i, h in (await _hospitals(session, ids)).items()}


async def hospital(
    session: AsyncSession,
    *,
    institution_id: int,
    start: date,
    end: date,
    channel: str = PRODUCTION,
) -> HospitalView | None:
    """One hospital's datasets and daily volume for [start, end]; ``None`` if unknown."""
    found = await _hospitals(session, {institution_id})
    if not found:
        return None
    where = [*_period(start, end, channel), QualityDay.institution_id == institution_id]
    by_dataset = dict(await _grouped(session, QualityDay.dataset, *where))
    by_day: dict[date, Totals] = {d: Totals() for d in days(start, end)}
    for day, t in await _grouped(session, QualityDay.day, *where):
        by_day[as_date(day)] = t
    total = Totals()
    for t in by_dataset.values():
        total.add(t)
    codes = await session.scalars(
        select(QualityDay.rejected_by_code).where(*where, QualityDay.rejected > 0)
    )
    for by_code in codes:
        total.rejected_by_code.update({str(k): int(v) for k, v in by_code.items()})
    active = await _active_days(session, start, end, channel, institution_id)
    return HospitalView(
        found[institution_id],
        start,
        end,
        dict(sorted(by_dataset.items(), key=lambda kv: _dataset_order(kv[0]))),
        by_day,
        total,
        silent_days(active.get(institution_id, set()), start, end),
    )


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
    return sorted(rows, key=lambda c: (-c.total, c.rule_id))


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
class DoctorCount:
    doctor_cert_id: str
    total: int
    open: int
    finding_id: int  # one of the doctor's findings: identifies the doctor in URLs, unlike the ID

    @property
    def token(self) -> str:
        return f"f{self.finding_id}"


async def top_doctors(
    session: AsyncSession, *, institution_id: int, start: date, end: date, limit: int = 10
) -> list[DoctorCount]:
    """The hospital's doctors with the most findings first seen in [start, end] (read from the
    findings, which are few next to the records; indexed by institution)."""
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    open_sum = func.sum(case((Finding.status.in_(sorted(OPEN_STATES)), 1), else_=0))
    rows = await session.execute(
        select(Finding.doctor_cert_id, func.count(), open_sum, func.min(Finding.id))
        .where(
            Finding.institution_id == institution_id,
            Finding.doctor_cert_id.is_not(None),
            on_channel(PRODUCTION),
            Finding.first_seen >= since,
            Finding.first_seen < until,
        )
        .group_by(Finding.doctor_cert_id)
        .order_by(func.count().desc(), Finding.doctor_cert_id)
        .limit(limit)
    )
    return [DoctorCount(str(d), int(t), int(o or 0), int(f)) for d, t, o, f in rows.all()]


@dataclass(frozen=True, slots=True)
class DoctorView:
    institution: Hospital
    doctor_cert_id: str
    name: str
    visits: dict[str, int]  # dataset → records naming the doctor
    findings: int
    open: int


#: Datasets counted on the doctor page: visits (复诊、咨询、挂号) and prescriptions.
DOCTOR_DATASETS: Final = ("outpatient", "consult", "register", "prescription")


async def doctor(session: AsyncSession, *, institution_id: int, token: str) -> DoctorView | None:
    """A doctor of one hospital, identified by ``f<finding id>`` (never by the ID number in a URL).

    Counts come from the record table's (doctor_cert_id) index, bounded to one doctor."""
    if not token.startswith("f") or not token[1:].isdigit():
        return None
    cert = await session.scalar(
        select(Finding.doctor_cert_id).where(
            Finding.id == int(token[1:]), Finding.institution_id == institution_id
        )
    )
    found = await _hospitals(session, {institution_id})
    if not cert or not found:
        return None
    rows = await session.execute(
        select(Record.dataset, func.count())
        .where(
            Record.doctor_cert_id == cert,
            Record.institution_id == institution_id,
            Record.dataset.in_(DOCTOR_DATASETS),
            record_on_channel(PRODUCTION),
        )
        .group_by(Record.dataset)
    )
    visits = {d: 0 for d in DOCTOR_DATASETS} | {d: int(n) for d, n in rows.all()}
    data = await session.scalar(
        select(Record.data).where(
            Record.institution_id == institution_id,
            Record.dataset == "doctor",
            Record.doctor_cert_id == cert,
        )
    )
    name = str(data.get("doctorName") or "") if isinstance(data, dict) else ""
    counts = (
        await session.execute(
            select(
                func.count(),
                func.sum(case((Finding.status.in_(sorted(OPEN_STATES)), 1), else_=0)),
            ).where(
                Finding.institution_id == institution_id,
                Finding.doctor_cert_id == cert,
                on_channel(PRODUCTION),
            )
        )
    ).one()
    return DoctorView(
        found[institution_id], cert, name, visits, int(counts[0]), int(counts[1] or 0)
    )
