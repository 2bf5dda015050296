"""Reads of the exchange domain: the exchange log, the request archive and record history.

Used by ``imsp exchange …`` and by other domains (acceptance checks, supervision). Every function
takes a session and an explicit scope; nothing here decides who may see what — callers pass the
institution they are allowed to see (a hospital only its own, a regulator any).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import LargeBinary, Select, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution
from imsp.clock import format_datetime
from imsp.exchange import archive
from imsp.exchange.models import (
    ArchivedPartition,
    ArchivedRecord,
    ExchangeLog,
    Record,
    RecordKey,
    RecordVersion,
)
from imsp.exchange.partitions import month_of


@dataclass(frozen=True, slots=True)
class LogRow:
    id: uuid.UUID
    at: datetime
    org_code: str | None
    app_id: str
    service: str
    client_addr: str
    size: int
    code: int
    total: int
    success: int
    fail: int
    latency_ms: float
    dry_run: bool
    atomic: bool
    channel: str
    chunked: bool
    archived: bool


@dataclass(frozen=True, slots=True)
class Archived:
    """An accepted request's exact body, checked against the SHA-256 logged when it arrived."""

    row: LogRow
    sha256: str | None
    body: bytes
    intact: bool

    def records(self) -> list[Any]:
        doc = orjson.loads(self.body.removeprefix(b"\xef\xbb\xbf"))
        return [doc] if isinstance(doc, dict) else list(doc)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    record_id: int
    dataset: str
    key: str
    version: int
    current: bool
    exchange_id: uuid.UUID
    position: int
    at: datetime
    app_id: str
    #: The month of the record's row when that month was archived: the version is still online
    #: (stored in a later month) but its record row is in the archive (``ArchivedRecord``).
    archived_month: date | None = None


_LOG_COLUMNS = (
    ExchangeLog.id,
    ExchangeLog.at,
    Institution.org_code,
    ExchangeLog.app_id,
    ExchangeLog.service,
    ExchangeLog.client_addr,
    ExchangeLog.size,
    ExchangeLog.code,
    ExchangeLog.total,
    ExchangeLog.success,
    ExchangeLog.fail,
    ExchangeLog.latency_ms,
    ExchangeLog.dry_run,
    ExchangeLog.atomic,
    ExchangeLog.channel,
    ExchangeLog.chunked,
    ExchangeLog.body.is_not(None),
)


def _log_row(row: Any) -> LogRow:
    values = list(row)
    values[-1] = bool(values[-1])
    return LogRow(*values)


async def list_log(
    session: AsyncSession,
    *,
    org_code: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    failed: bool = False,
    limit: int = 50,
) -> list[LogRow]:
    """Newest first. ``failed``: refused requests and requests with rejected records."""
    stmt = (
        select(*_LOG_COLUMNS)
        .outerjoin(Institution, Institution.id == ExchangeLog.institution_id)
        .order_by(ExchangeLog.at.desc(), ExchangeLog.id.desc())
        .limit(limit)
    )
    if org_code:
        stmt = stmt.where(Institution.org_code == org_code)
    if service:
        stmt = stmt.where(func.lower(ExchangeLog.service) == service.lower().lstrip("/"))
    if since is not None:
        stmt = stmt.where(ExchangeLog.at >= since)
    if failed:
        stmt = stmt.where(or_(ExchangeLog.code != 200, ExchangeLog.fail > 0))
    return [_log_row(r) for r in (await session.execute(stmt)).all()]


def _by_id(column: Any, at: Any, exchange_id: uuid.UUID) -> list[Any]:
    """``column = exchange_id``, and the time window the id implies on ``at`` (the tables'
    partition key): PostgreSQL then plans only the month(s) that can hold the row instead of
    probing every monthly partition ever kept (``archive.id_window``)."""
    where = [column == exchange_id]
    window = archive.id_window(exchange_id)
    if window is not None:
        where += [at >= window[0], at < window[1]]
    return where


async def get_log(session: AsyncSession, exchange_id: uuid.UUID) -> LogRow | None:
    """The log row of the request ``exchange_id`` (``None`` if unknown or archived)."""
    row = (
        await session.execute(
            select(*_LOG_COLUMNS)
            .outerjoin(Institution, Institution.id == ExchangeLog.institution_id)
            .where(*_by_id(ExchangeLog.id, ExchangeLog.at, exchange_id))
        )
    ).first()
    return _log_row(row) if row is not None else None


async def archived_body(session: AsyncSession, exchange_id: uuid.UUID) -> Archived | None:
    """The exact bytes of an accepted request (``None`` if unknown or not archived)."""
    row = await get_log(session, exchange_id)
    if row is None or not row.archived:
        return None
    blob, sha = (
        await session.execute(
            select(ExchangeLog.body, ExchangeLog.sha256).where(
                ExchangeLog.id == exchange_id, ExchangeLog.at == row.at
            )
        )
    ).one()
    if blob is None:
        return None
    body = archive.restore(blob)
    return Archived(row, sha, body, archive.sha256_hex(body) == sha)


def _versions() -> Select[int, str, str, int, bool, uuid.UUID, int, datetime, str, date | None]:
    """Version rows with their record — the online one, or the identity an archived one left
    (``ArchivedRecord``) — in the column order :func:`_version` reads. Version rows of neither
    are left out."""
    return (
        select(
            RecordVersion.record_id,
            func.coalesce(Record.dataset, ArchivedRecord.dataset),
            func.coalesce(Record.key, ArchivedRecord.key),
            RecordVersion.version,
            Record.version == RecordVersion.version,
            RecordVersion.exchange_id,
            RecordVersion.position,
            RecordVersion.at,
            RecordVersion.app_id,
            ArchivedRecord.month,
        )
        .select_from(RecordVersion)
        .outerjoin(Record, Record.id == RecordVersion.record_id)
        .outerjoin(ArchivedRecord, ArchivedRecord.record_id == RecordVersion.record_id)
        .where(or_(Record.id.is_not(None), ArchivedRecord.record_id.is_not(None)))
    )


async def versions_of_exchange(
    session: AsyncSession, exchange_id: uuid.UUID, *, at: datetime | None = None
) -> list[StoredVersion]:
    """The record versions a request stored, in body order — also those whose record's month
    was archived since (``StoredVersion.archived_month``); ``at``: the request's receipt time
    if known (its log row's, which its versions share), else the id's window."""
    where = (
        [RecordVersion.exchange_id == exchange_id, RecordVersion.at == at]
        if at is not None
        else _by_id(RecordVersion.exchange_id, RecordVersion.at, exchange_id)
    )
    stmt = _versions().where(*where).order_by(RecordVersion.position)
    return [_version(r) for r in (await session.execute(stmt)).all()]


def _version(r: Any) -> StoredVersion:
    return StoredVersion(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9])


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One record a business key has had: the online one, or one whose month was archived while
    later versions of it stayed online (``archived``). A key has several when it was sent again
    after its month was archived (it then starts over at version 1)."""

    record_id: int
    month: date
    version: int  # its last version
    archived: bool


async def record_rows(
    session: AsyncSession, *, org_code: str, dataset: str, key: str
) -> list[RecordRow]:
    """The records of one business key, oldest first: archived ones (by month), then the online
    one."""
    inst = select(Institution.id).where(Institution.org_code == org_code).scalar_subquery()
    archived = (
        await session.execute(
            select(ArchivedRecord.record_id, ArchivedRecord.month, ArchivedRecord.version)
            .where(
                ArchivedRecord.institution_id == inst,
                ArchivedRecord.dataset == dataset,
                ArchivedRecord.key == key,
            )
            .order_by(ArchivedRecord.month, ArchivedRecord.record_id)
        )
    ).all()
    online = (
        await session.execute(
            select(Record.id, Record.month, Record.version).where(
                Record.institution_id == inst, Record.dataset == dataset, Record.key == key
            )
        )
    ).all()
    return [RecordRow(i, m, v, True) for i, m, v in archived] + [
        RecordRow(i, m, v, False) for i, m, v in online
    ]


async def record_history(
    session: AsyncSession, *, org_code: str, dataset: str, key: str, with_archived: bool = False
) -> list[StoredVersion]:
    """Every stored version of one record that is online, oldest first (empty if the record is
    unknown). ``with_archived``: also the online versions of the key's records whose month was
    archived (:func:`record_rows`), before the current record's."""
    rows = await record_rows(session, org_code=org_code, dataset=dataset, key=key)
    ids = [r.record_id for r in rows if with_archived or not r.archived]
    if not ids:
        return []
    order = {rid: n for n, rid in enumerate(ids)}
    stmt = _versions().where(RecordVersion.record_id.in_(ids))
    found = [_version(r) for r in (await session.execute(stmt)).all()]
    return sorted(found, key=lambda v: (order[v.record_id], v.version))


@dataclass(frozen=True, slots=True)
class OfflineVersions:
    """Versions ``first``..``last`` of the record ``record_id`` are no longer online: their
    ``record_version`` rows went into the archives ``notes`` (the archived months that can hold
    them, usually one)."""

    record_id: int
    first: int
    last: int
    notes: list[ArchiveNote]

    def text(self) -> str:
        which = (
            f"版本 {self.first}" if self.first == self.last else (f"版本 {self.first}–{self.last}")
        )
        if not self.notes:
            return f"{which} 不在线，也没有找到其归档记录"
        return f"{which} 已归档：" + "；".join(n.text() for n in self.notes)


async def offline_versions(
    session: AsyncSession, rows: list[RecordRow], online: list[StoredVersion]
) -> list[OfflineVersions]:
    """For each record of ``rows``, its versions not among ``online`` (:func:`record_history`)
    and the archives that hold them: the archived months of ``record_version`` between the months
    of the nearest online versions around them (the record's own month below the first)."""
    by_record: dict[int, dict[int, StoredVersion]] = {}
    for v in online:
        by_record.setdefault(v.record_id, {})[v.version] = v
    gaps: list[tuple[int, int, int, date, date | None]] = []
    for r in rows:
        have = by_record.get(r.record_id, {})
        n = 1
        while n <= r.version:
            if n in have:
                n += 1
                continue
            first = n
            while n <= r.version and n not in have:
                n += 1
            below, above = have.get(first - 1), have.get(n)
            lo = month_of(below.at) if below is not None else r.month
            hi = month_of(above.at) if above is not None else None
            gaps.append((r.record_id, first, n - 1, lo, hi))
    if not gaps:
        return []
    archives = [
        _note(a)
        for a in (
            await session.execute(
                select(ArchivedPartition)
                .where(ArchivedPartition.parent == "record_version")
                .where(ArchivedPartition.month >= min(g[3] for g in gaps))
                .order_by(ArchivedPartition.month)
            )
        ).scalars()
    ]
    return [
        OfflineVersions(
            rid,
            first,
            last,
            [a for a in archives if lo <= a.month and (hi is None or a.month <= hi)],
        )
        for rid, first, last, lo, hi in gaps
    ]


@dataclass(frozen=True, slots=True)
class CurrentRecord:
    """The stored (current) version of one record: its document decoded (``exchange.codec``)
    and the size of its stored encoding."""

    id: int
    version: int
    month: date
    updated_at: datetime
    exchange_id: uuid.UUID
    data: dict[str, Any]
    stored_bytes: int


async def current_record(
    session: AsyncSession, *, org_code: str, dataset: str, key: str
) -> CurrentRecord | None:
    """The current version of one record as stored (``None`` if unknown)."""
    row = (
        await session.execute(
            select(
                Record.id,
                Record.version,
                Record.month,
                Record.updated_at,
                Record.exchange_id,
                Record.data,
                func.length(type_coerce(Record.data, LargeBinary)),
            )
            .join(Institution, Institution.id == Record.institution_id)
            .where(Institution.org_code == org_code, Record.dataset == dataset, Record.key == key)
        )
    ).first()
    return None if row is None else CurrentRecord(*row)


# --------------------------------------------------------------------------- archived months


@dataclass(frozen=True, slots=True)
class ArchiveNote:
    """A month of a partitioned table that ``imsp db partitions archive`` detached and exported:
    why a record, its history or a request is no longer in the database, and where it went."""

    table: str
    month: date
    archived_at: datetime
    location: str

    def text(self, *, with_location: bool = True) -> str:
        where = f"，归档位置：{self.location}" if with_location else ""
        return (
            f"所在月份 {self.month:%Y-%m} 的数据已于 {format_datetime(self.archived_at)}"
            f" 归档，不再在线查询{where}"
        )


def _note(row: Any) -> ArchiveNote:
    return ArchiveNote(row.parent, row.month, row.archived_at, row.location)


async def archive_note_for_key(
    session: AsyncSession, *, org_code: str, dataset: str, key: str
) -> ArchiveNote | None:
    """The archived month of the record (org, dataset, key): the month of the record itself if
    it was archived, else the month its earlier versions went to if it was sent again after that
    (``record_key`` keeps archived keys and, for one sent again, the archived month)."""
    row = (
        await session.execute(
            select(ArchivedPartition)
            .join(
                RecordKey,
                or_(
                    RecordKey.month == ArchivedPartition.month,
                    RecordKey.archived_month == ArchivedPartition.month,
                ),
            )
            .join(Institution, Institution.id == RecordKey.institution_id)
            .where(
                ArchivedPartition.parent == "record",
                Institution.org_code == org_code,
                RecordKey.dataset == dataset,
                RecordKey.key == key,
            )
            .order_by(ArchivedPartition.month.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return _note(row) if row is not None else None


async def archive_note_for_month(
    session: AsyncSession, *, table: str, month: date
) -> ArchiveNote | None:
    """The archive of ``table``'s ``month`` (``None`` if that month is not archived)."""
    row = (
        await session.execute(
            select(ArchivedPartition).where(
                ArchivedPartition.parent == table, ArchivedPartition.month == month
            )
        )
    ).scalar_one_or_none()
    return _note(row) if row is not None else None


async def archive_note_for_record_id(session: AsyncSession, record_id: int) -> ArchiveNote | None:
    """The archived month whose record ids span ``record_id`` (ids grow with time)."""
    row = (
        await session.execute(
            select(ArchivedPartition).where(
                ArchivedPartition.parent == "record",
                ArchivedPartition.min_id <= record_id,
                ArchivedPartition.max_id >= record_id,
            )
        )
    ).scalar_one_or_none()
    return _note(row) if row is not None else None


async def archive_note_for_exchange(
    session: AsyncSession, exchange_id: uuid.UUID
) -> ArchiveNote | None:
    """The archived month of the exchange log holding ``exchange_id`` (a UUIDv7: its first 48
    bits are the request's receipt time, ``archive.new_exchange_id``)."""
    at = archive.id_time(exchange_id)
    if at is None:
        return None
    row = (
        await session.execute(
            select(ArchivedPartition).where(
                ArchivedPartition.parent == "exchange_log",
                ArchivedPartition.month == month_of(at),
            )
        )
    ).scalar_one_or_none()
    return _note(row) if row is not None else None
