"""Data quality (数据质量) per institution, dataset and day, kept as rollups (issue 10, issue 14).

Computed from the exchange log and the stored records:

* from the log, by the Beijing day a request arrived: requests, records received, accepted,
  rejected, and rejected by issue code — reproduced by re-checking the archived body of each
  request that had rejected records with the same pure check the upload ran
  (``imsp.exchange.ingest.check``), so no second copy of receipts is kept;
* from the stored records, by the day a record first arrived (its version 1): completeness of the
  recommended (optional) fields of the current content, timeliness (first upload − business
  time; median and p95), reference integrity (share of records whose patient, doctor and
  department references resolve to a stored record of the same institution).

:func:`recompute_quality` rebuilds every row; :func:`refresh_quality` (through
``imsp.supervision.rollups.refresh_rollups``, which the supervision worker calls)
recomputes only the (institution, day) pairs that anything since the watermark can have changed:

1. days with requests logged since the watermark;
2. first-arrival days of records that got a new version since (their content changed);
3. first-arrival days of records referencing a patient, doctor or department first stored since
   (a reference that now resolves).

The watermark moves back by :data:`LAG` on each refresh so a request whose transaction committed
late (its log time is taken at arrival) is still seen. Recomputing a pair more often than needed
is harmless: a pair's rows are replaced as a whole.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any, Final

import orjson
from sqlalchemy import Date, and_, cast, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from imsp.auth.models import Institution
from imsp.clock import BEIJING
from imsp.exchange import archive
from imsp.exchange.ingest import check
from imsp.exchange.models import ExchangeLog, Record, RecordVersion
from imsp.exchange.partitions import month_of
from imsp.standard.model import load_standard
from imsp.supervision import months
from imsp.supervision.rollup_models import (
    QualityDatasetDay,
    QualityDay,
    QualityInstitutionDay,
    QualityInstitutionMonth,
    RollupState,
)

#: Rollups are kept per exchange channel (接入确认, issue 14): the province's figures read only
#: ``production``; an institution's test-channel uploads (联调数据) go to ``test`` rows, which the
#: acceptance board may read and no dashboard counts. A record's channel is that of the request
#: that first stored it; a request's is that of its credential (``exchange_log.channel``).
PRODUCTION: Final = "production"
TEST: Final = "test"
CHANNELS: Final = (PRODUCTION, TEST)
#: How far behind the watermark a refresh looks again (requests committed after their log time).
LAG: Final = timedelta(minutes=10)
STATE_NAME: Final = "quality_day"
#: Reference kinds checked for integrity: referenced dataset → the record column that carries it.
REFERENCE_COLUMNS: Final = {
    "patient": "patient_id",
    "doctor": "doctor_cert_id",
    "department": "dept_code",
}
_IN_CHUNK: Final = 500


Pair = tuple[int, date]


def beijing_day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The Beijing calendar date of a UTC timestamp column, computed by the database."""
    if dialect == "sqlite":
        return func.date(column, "+8 hours")
    return cast(func.timezone("Asia/Shanghai", column), Date)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC-aware half-open interval of one Beijing day."""
    start = datetime.combine(day, time(), BEIJING)
    return start, start + timedelta(days=1)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@cache
def optional_fields(dataset: str) -> tuple[str, ...]:
    """The recommended (optional, 非必填) top-level fields of a dataset."""
    ds = load_standard().datasets.get(dataset)
    if ds is None:
        return ()
    return tuple(f.code for f in ds.fields if f.required == "N")


@cache
def checked_references(dataset: str) -> tuple[str, ...]:
    ds = load_standard().datasets.get(dataset)
    if ds is None:
        return ()
    return tuple(r for r in ds.references if r in REFERENCE_COLUMNS)


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile (deterministic, one of the values)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


@dataclass(slots=True)
class _Acc:
    requests: int = 0
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    optional_filled: int = 0
    optional_total: int = 0
    delays: list[float] = field(default_factory=list)
    refs_checked: int = 0
    refs_resolved: int = 0


def rejected_codes(dataset: str | None, body: bytes, org_code: str) -> Counter[str]:
    """Issue codes of the rejected records of one archived upload (a record counts once per code).

    Runs the upload's own pure check again; CPU-bound, so callers process few bodies at a time."""
    out: Counter[str] = Counter()
    ds = load_standard().datasets.get(dataset or "")
    if ds is None:
        return out
    try:
        doc = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return out
    records = [doc] if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    for result in check(ds, records, org_code=org_code, encode_time=str).results:
        if result["msgCode"] == 200:
            continue
        out.update({str(e["code"]) for e in result["errors"]})
    return out


async def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _compute_pair(
    session: AsyncSession, institution_id: int, day: date, channel: str = PRODUCTION
) -> dict[str, _Acc]:
    start, end = day_bounds(day)
    accs: defaultdict[str, _Acc] = defaultdict(_Acc)
    in_day = and_(
        ExchangeLog.institution_id == institution_id,
        ExchangeLog.at >= start,
        ExchangeLog.at < end,
        ExchangeLog.channel == channel,
    )
    logs = await session.execute(
        select(
            ExchangeLog.dataset,
            func.count(),
            func.sum(ExchangeLog.total),
            func.sum(ExchangeLog.success),
            func.sum(ExchangeLog.fail),
        )
        .where(in_day)
        .group_by(ExchangeLog.dataset)
    )
    for dataset, n, total, ok, fail in logs.all():
        acc = accs[dataset or ""]
        acc.requests += int(n)
        acc.received += int(total or 0)
        acc.accepted += int(ok or 0)
        acc.rejected += int(fail or 0)
    failed = (
        await session.execute(
            select(ExchangeLog.dataset, ExchangeLog.body, ExchangeLog.fail).where(
                in_day, ExchangeLog.fail > 0
            )
        )
    ).all()
    if failed:
        org_code = await session.scalar(
            select(Institution.org_code).where(Institution.id == institution_id)
        )
        for dataset, blob, fail in failed:
            acc = accs[dataset or ""]
            if blob is None:
                acc.by_code["unarchived"] += int(fail)
                continue
            acc.by_code.update(rejected_codes(dataset, archive.restore(blob), org_code or ""))
    await _record_figures(session, institution_id, start, end, accs, channel)
    return dict(accs)


async def _record_figures(
    session: AsyncSession,
    institution_id: int,
    start: datetime,
    end: datetime,
    accs: defaultdict[str, _Acc],
    channel: str = PRODUCTION,
) -> None:
    """Completeness, timeliness and references of the records first stored in [start, end)."""
    rows = (
        await session.execute(
            select(
                Record.dataset,
                Record.business_time,
                RecordVersion.at,
                Record.data,
                Record.patient_id,
                Record.doctor_cert_id,
                Record.dept_code,
            )
            .select_from(ExchangeLog)
            .join(RecordVersion, RecordVersion.exchange_id == ExchangeLog.id)
            .join(Record, Record.id == RecordVersion.record_id)
            .where(
                ExchangeLog.institution_id == institution_id,
                ExchangeLog.at >= start,
                ExchangeLog.at < end,
                ExchangeLog.channel == channel,
                RecordVersion.version == 1,
                # The same bounds on the partition keys (PostgreSQL prunes to these months): a
                # version row has its request's time, and a record first stored by that
                # request is in the month of that time (``imsp.exchange.partitions``).
                RecordVersion.at >= start,
                RecordVersion.at < end,
                Record.month >= month_of(start),
                Record.month <= month_of(end),
            )
        )
    ).all()
    wanted: dict[str, set[str]] = {k: set() for k in REFERENCE_COLUMNS}
    for r in rows:
        for kind, value in zip(REFERENCE_COLUMNS, r[4:7], strict=True):
            if value and kind in checked_references(r[0]):
                wanted[kind].add(value)
    known = {k: await _existing(session, institution_id, k, v) for k, v in wanted.items()}
    for dataset, business_time, first_at, data, *refs in rows:
        acc = accs[dataset]
        acc.stored += 1
        names = optional_fields(dataset)
        acc.optional_total += len(names)
        if isinstance(data, dict):
            acc.optional_filled += sum(1 for n in names if _filled(data.get(n)))
        if business_time is not None:
            acc.delays.append((first_at - business_time).total_seconds())
        kinds = checked_references(dataset)
        pairs = [(k, v) for k, v in zip(REFERENCE_COLUMNS, refs, strict=True) if v and k in kinds]
        if pairs:
            acc.refs_checked += 1
            if all(v in known[k] for k, v in pairs):
                acc.refs_resolved += 1


async def _existing(
    session: AsyncSession, institution_id: int, kind: str, values: set[str]
) -> set[str]:
    column = getattr(Record, REFERENCE_COLUMNS[kind])
    found: set[str] = set()
    ordered = sorted(values)
    for i in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[i : i + _IN_CHUNK]
        found.update(
            await session.scalars(
                select(column).where(
                    Record.institution_id == institution_id,
                    Record.dataset == kind,
                    column.in_(chunk),
                )
            )
        )
    return found


def _row(
    institution_id: int,
    day: date,
    dataset: str,
    acc: _Acc,
    now: datetime,
    channel: str = PRODUCTION,
) -> dict[str, Any]:
    delays = sorted(acc.delays)
    return {
        "channel": channel,
        "institution_id": institution_id,
        "day": day,
        "dataset": dataset,
        "requests": acc.requests,
        "received": acc.received,
        "accepted": acc.accepted,
        "rejected": acc.rejected,
        "rejected_by_code": dict(sorted(acc.by_code.items())),
        "stored": acc.stored,
        "optional_filled": acc.optional_filled,
        "optional_total": acc.optional_total,
        "delay_median_s": quantile(delays, 0.5),
        "delay_p95_s": quantile(delays, 0.95),
        "refs_checked": acc.refs_checked,
        "refs_resolved": acc.refs_resolved,
        "computed_at": now,
    }


async def recompute_pairs(session: AsyncSession, pairs: Iterable[Pair], *, now: datetime) -> int:
    """Replace the rows of each (institution, day) with freshly computed ones; returns rows."""
    written = 0
    for institution_id, day in sorted(set(pairs)):
        await session.execute(
            delete(QualityDay).where(
                QualityDay.institution_id == institution_id,
                QualityDay.day == day,
            )
        )
        for channel in CHANNELS:
            accs = await _compute_pair(session, institution_id, day, channel)
            rows = [
                _row(institution_id, day, ds, acc, now, channel) for ds, acc in sorted(accs.items())
            ]
            if rows:
                await session.execute(insert(QualityDay), rows)
                written += len(rows)
    await resum(session, set(pairs))
    return written


SUMMED: Final = (
    "requests", "received", "accepted", "rejected", "stored", "optional_filled",
    "optional_total", "refs_checked", "refs_resolved",
)  # fmt: skip


def _sum_columns() -> list[Any]:
    cols: list[Any] = [func.sum(getattr(QualityDay, n)) for n in SUMMED]
    return [*cols, func.max(QualityDay.delay_p95_s)]


async def resum(session: AsyncSession, pairs: set[Pair]) -> None:
    """Rebuild the institution-day and dataset-day sums of the touched pairs and days, and the
    institution-month sums of their months (:mod:`imsp.supervision.months`)."""
    names = [*SUMMED, "delay_p95_s"]
    for institution_id, day in sorted(pairs):
        await session.execute(
            delete(QualityInstitutionDay).where(
                QualityInstitutionDay.channel == PRODUCTION,
                QualityInstitutionDay.day == day,
                QualityInstitutionDay.institution_id == institution_id,
            )
        )
        await session.execute(
            insert(QualityInstitutionDay).from_select(
                ["channel", "day", "institution_id", *names],
                select(
                    QualityDay.channel, QualityDay.day, QualityDay.institution_id, *_sum_columns()
                )
                .where(
                    QualityDay.channel == PRODUCTION,
                    QualityDay.day == day,
                    QualityDay.institution_id == institution_id,
                )
                .group_by(QualityDay.channel, QualityDay.day, QualityDay.institution_id),
            )
        )
    for day in sorted({d for _, d in pairs}):
        await session.execute(
            delete(QualityDatasetDay).where(
                QualityDatasetDay.channel == PRODUCTION, QualityDatasetDay.day == day
            )
        )
        await session.execute(
            insert(QualityDatasetDay).from_select(
                ["channel", "day", "dataset", *names],
                select(QualityDay.channel, QualityDay.day, QualityDay.dataset, *_sum_columns())
                .where(QualityDay.channel == PRODUCTION, QualityDay.day == day)
                .group_by(QualityDay.channel, QualityDay.day, QualityDay.dataset),
            )
        )
    await months.resum_quality(session, pairs, channel=PRODUCTION)


async def all_pairs(session: AsyncSession) -> set[Pair]:
    day = beijing_day(ExchangeLog.at, await _dialect(session))
    rows = await session.execute(
        select(ExchangeLog.institution_id, day)
        .where(ExchangeLog.institution_id.is_not(None))
        .group_by(ExchangeLog.institution_id, day)
    )
    return {(int(i), as_date(d)) for i, d in rows.all()}


async def touched_pairs(session: AsyncSession, since: datetime) -> set[Pair]:
    """Every (institution, day) whose rollup anything logged at or after ``since`` may change."""
    dialect = await _dialect(session)
    pairs: set[Pair] = set()
    day = beijing_day(ExchangeLog.at, dialect)
    logged = select(ExchangeLog.institution_id, day).where(
        ExchangeLog.at >= since, ExchangeLog.institution_id.is_not(None)
    )
    pairs.update((int(i), as_date(d)) for i, d in (await session.execute(logged.distinct())).all())

    first_log = aliased(ExchangeLog)
    first_version = aliased(RecordVersion)
    first_day = beijing_day(first_log.at, dialect)
    new_version = aliased(RecordVersion)
    changed = (
        select(first_log.institution_id, first_day)
        .select_from(ExchangeLog)
        .join(new_version, new_version.exchange_id == ExchangeLog.id)
        .join(
            first_version,
            and_(first_version.record_id == new_version.record_id, first_version.version == 1),
        )
        .join(first_log, first_log.id == first_version.exchange_id)
        .where(ExchangeLog.at >= since, new_version.version > 1)
        .distinct()
    )
    pairs.update((int(i), as_date(d)) for i, d in (await session.execute(changed)).all())

    target = aliased(Record)
    target_version = aliased(RecordVersion)
    referrer = aliased(Record)
    for kind, column in REFERENCE_COLUMNS.items():
        resolved = (
            select(first_log.institution_id, first_day)
            .select_from(ExchangeLog)
            .join(
                target_version,
                and_(target_version.exchange_id == ExchangeLog.id, target_version.version == 1),
            )
            .join(target, and_(target.id == target_version.record_id, target.dataset == kind))
            .join(
                referrer,
                and_(
                    referrer.institution_id == target.institution_id,
                    getattr(referrer, column) == getattr(target, column),
                    referrer.dataset != kind,
                ),
            )
            .join(
                first_version,
                and_(first_version.record_id == referrer.id, first_version.version == 1),
            )
            .join(first_log, first_log.id == first_version.exchange_id)
            .where(ExchangeLog.at >= since)
            .distinct()
        )
        pairs.update((int(i), as_date(d)) for i, d in (await session.execute(resolved)).all())
    return pairs


async def set_watermark(session: AsyncSession, now: datetime, name: str = STATE_NAME) -> None:
    state = await session.get(RollupState, name)
    if state is None:
        session.add(RollupState(name=name, watermark=now))
    else:
        state.watermark = now
    await session.flush()


async def recompute_quality(session: AsyncSession, *, now: datetime) -> int:
    """Rebuild every rollup row (both channels; the sums hold production only) from the log and
    the records; returns rows written."""
    for table in (QualityDay, QualityInstitutionDay, QualityDatasetDay, QualityInstitutionMonth):
        await session.execute(delete(table))
    written = await recompute_pairs(session, await all_pairs(session), now=now)
    await set_watermark(session, now)
    return written


async def refresh_quality(session: AsyncSession, *, now: datetime) -> int:
    """Bring the rollups up to date incrementally (a full :func:`recompute_quality` the first time).

    Called by the supervision worker after each batch and safe to call at any time; returns the
    number of rows written. Never commits (the caller's unit of work does)."""
    state = await session.get(RollupState, STATE_NAME)
    if state is None:
        return await recompute_quality(session, now=now)
    since = min(state.watermark, now) - LAG
    written = await recompute_pairs(session, await touched_pairs(session, since), now=now)
    await set_watermark(session, now)
    return written
