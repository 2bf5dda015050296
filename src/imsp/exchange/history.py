"""Use cases over the exchange log and the request archive: what one request did, and where every
version of a record came from (``imsp exchange show`` / ``trace``, later the portal).

Identifiers stay unmasked here — masking is the display's job (``imsp.standard.mask``). Exporting
the exact bytes of an archived request is audited in the caller's unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import CLI, Actor, AuditAction, audit
from imsp.auth.models import Institution
from imsp.exchange import queries
from imsp.standard.model import Dataset
from imsp.standard.validate import validator_for


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request: its log row, its archived body (accepted uploads) and the versions it stored."""

    log: queries.LogRow
    archived: queries.Archived | None
    versions: list[queries.StoredVersion]


async def show_exchange(
    session: AsyncSession,
    *,
    exchange_id: uuid.UUID,
    now: datetime,
    export_to: str | None = None,
    actor: Actor = CLI,
) -> Exchange | None:
    """The request ``exchange_id`` (``None`` if unknown). ``export_to`` names where the caller
    writes the archived body; that export is audited (only when there is a body to export)."""
    row = await queries.get_log(session, exchange_id)
    if row is None:
        return None
    archived = await queries.archived_body(session, exchange_id)
    versions = await queries.versions_of_exchange(session, exchange_id, at=row.at)
    if export_to is not None and archived is not None:
        await audit(
            session, actor, AuditAction.EXCHANGE_BODY_EXPORT, now=now, target=str(exchange_id),
            detail={"file": export_to},
        )  # fmt: skip
    return Exchange(row, archived, versions)


async def audit_record_view(
    session: AsyncSession,
    *,
    org_code: str,
    dataset: Dataset,
    shown_key: str,
    where: str,
    now: datetime,
    actor: Actor = CLI,
) -> None:
    """Audit a viewing of a stored record's content (``imsp exchange record``, ``trace
    --show``): a record holds personal data, and every viewing of it leaves a trace (as the
    portal's record viewer does). Commit it before the content is shown."""
    institution_id = await session.scalar(
        select(Institution.id).where(Institution.org_code == org_code)
    )
    await audit(
        session, actor, AuditAction.PERSONAL_DATA_VIEW, now,
        target=f"record:{dataset.code}:{shown_key}", institution_id=institution_id,
        detail={"where": where, "dataset": dataset.code, "key": shown_key, "organID": org_code},
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class TracedVersion:
    """One stored version of a record and, if asked for and archived, its content as stored."""

    version: queries.StoredVersion
    content: dict[str, Any] | None


async def archived_record(
    session: AsyncSession, *, org_code: str, dataset: Dataset, key: str
) -> queries.ArchiveNote | None:
    """Why a record has no trace any more: its month was archived (``None`` otherwise)."""
    return await queries.archive_note_for_key(
        session, org_code=org_code, dataset=dataset.code, key=key
    )


@dataclass(frozen=True, slots=True)
class Trace:
    """The history of one business key as far as it is online: every online version (oldest
    first — those of records whose month was archived, then the current record's), the versions
    no longer online with the archive files that hold them, and the key's records."""

    versions: list[TracedVersion]
    offline: list[queries.OfflineVersions]
    records: list[queries.RecordRow]

    def record_notes(self, notes: dict[date, queries.ArchiveNote]) -> list[str]:
        """For each record whose row was archived: which month, where, and its last version."""
        return [
            f"记录（版本 1–{r.version}）的存储行{notes[r.month].text()}"
            if r.month in notes
            else f"记录（版本 1–{r.version}）的存储行所在月份 {r.month:%Y-%m} 已归档"
            for r in self.records
            if r.archived
        ]


async def _content(
    session: AsyncSession, dataset: Dataset, v: queries.StoredVersion
) -> dict[str, Any] | None:
    """One version as stored: re-read from its archived request body and normalised by the same
    validator that stored it (the archive keeps bodies, not a second copy of every version)."""
    archived = await queries.archived_body(session, v.exchange_id)
    if archived is None:
        return None
    raw = archived.records()[v.position]
    verdict = validator_for(dataset).check(raw, v.position)
    return verdict.record if verdict.record is not None else raw


async def trace_record(
    session: AsyncSession, *, org_code: str, dataset: Dataset, key: str, with_content: bool
) -> list[TracedVersion]:
    """Every online version of the current record of a key, oldest first (empty if unknown).
    ``with_content``: each version's content as stored (:func:`_content`)."""
    history = await queries.record_history(
        session, org_code=org_code, dataset=dataset.code, key=key
    )
    return [
        TracedVersion(v, await _content(session, dataset, v) if with_content else None)
        for v in history
    ]


async def trace_key(
    session: AsyncSession, *, org_code: str, dataset: Dataset, key: str, with_content: bool
) -> Trace:
    """The whole history of a business key that is still online (:class:`Trace`), across its
    records: a record whose month was archived keeps its later versions, stored in later months,
    online and shown; the versions that went into an archive are named with its file."""
    rows = await queries.record_rows(session, org_code=org_code, dataset=dataset.code, key=key)
    history = await queries.record_history(
        session, org_code=org_code, dataset=dataset.code, key=key, with_archived=True
    )
    offline = await queries.offline_versions(session, rows, history)
    traced = [
        TracedVersion(v, await _content(session, dataset, v) if with_content else None)
        for v in history
    ]
    return Trace(traced, offline, rows)


async def record_archive_notes(
    session: AsyncSession, records: list[queries.RecordRow]
) -> dict[date, queries.ArchiveNote]:
    """The archive notes of the months of ``records`` whose row was archived."""
    out: dict[date, queries.ArchiveNote] = {}
    for r in records:
        if r.archived and r.month not in out:
            note = await queries.archive_note_for_month(session, table="record", month=r.month)
            if note is not None:
                out[r.month] = note
    return out


async def last_online_version(
    session: AsyncSession, *, org_code: str, dataset: Dataset, key: str
) -> TracedVersion | None:
    """A key whose record row was archived (and not sent again since) but whose last version,
    stored in a later month, is online: that version with its content, re-read from its request
    body (``None`` otherwise)."""
    rows = await queries.record_rows(session, org_code=org_code, dataset=dataset.code, key=key)
    if not rows or not rows[-1].archived:
        return None
    last = rows[-1]
    history = await queries.record_history(
        session, org_code=org_code, dataset=dataset.code, key=key, with_archived=True
    )
    for v in history:
        if v.record_id == last.record_id and v.version == last.version:
            return TracedVersion(v, await _content(session, dataset, v))
    return None
