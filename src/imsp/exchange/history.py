"""Use cases over the exchange log and the request archive: what one request did, and where every
version of a record came from (``imsp exchange show`` / ``trace``, later the portal).

Identifiers stay unmasked here — masking is the display's job (``imsp.standard.mask``). Exporting
the exact bytes of an archived request is audited in the caller's unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import CLI, Actor, AuditAction, audit
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


async def trace_record(
    session: AsyncSession, *, org_code: str, dataset: Dataset, key: str, with_content: bool
) -> list[TracedVersion]:
    """Every version of one record, oldest first (empty if unknown). ``with_content``: each
    version re-read from its archived request body and normalised by the same validator that
    stored it (the archive keeps bodies, not a second copy of every version)."""
    out: list[TracedVersion] = []
    history = await queries.record_history(
        session, org_code=org_code, dataset=dataset.code, key=key
    )
    for v in history:
        content = None
        if with_content:
            archived = await queries.archived_body(session, v.exchange_id)
            if archived is not None:
                raw = archived.records()[v.position]
                verdict = validator_for(dataset).check(raw, v.position)
                content = verdict.record if verdict.record is not None else raw
        out.append(TracedVersion(v, content))
    return out
