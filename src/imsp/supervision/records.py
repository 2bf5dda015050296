"""The record viewer's read: one stored record, its versions, the exchange request of each.

Reuses the exchange domain's history and log reads (``imsp.exchange.queries``). Viewing a record
is viewing patient data, so every call writes an audit event (《个人信息保护法》第五十一条); the
content is returned with identifiers masked (ID numbers, card numbers, phones).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor, AuditAction, audit
from imsp.auth.models import Institution
from imsp.exchange import queries as exchange
from imsp.exchange.models import Record
from imsp.standard.issues import ISSUES
from imsp.standard.mask import mask_key, mask_record
from imsp.standard.model import load_standard


@dataclass(frozen=True, slots=True)
class VersionLine:
    version: exchange.StoredVersion
    request: exchange.LogRow | None


@dataclass(frozen=True, slots=True)
class Field:
    code: str
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class RecordView:
    id: int
    institution_id: int
    org_code: str
    institution: str
    dataset: str
    dataset_name: str
    key: str  # masked for display
    version: int
    voided: bool
    business_time: datetime | None
    created_at: datetime
    updated_at: datetime
    fields: list[Field]
    versions: list[VersionLine]


@cache
def issue_titles() -> dict[str, str]:
    """Issue code → Chinese title (rejections by issue code on the pages)."""
    return {code: kind.title for code, kind in ISSUES.items()} | {"unarchived": "报文未归档"}


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return str(value)


async def archived_note(session: AsyncSession, *, record_id: int) -> exchange.ArchiveNote | None:
    """Why the record ``record_id`` is gone: its month was archived (``None`` otherwise)."""
    return await exchange.archive_note_for_record_id(session, record_id)


async def record_view(
    session: AsyncSession,
    *,
    record_id: int,
    institution_id: int | None,
    actor: Actor,
    now: datetime,
) -> RecordView | None:
    """The record ``record_id`` (``None`` if unknown or outside ``institution_id`` when given),
    with its history; audits the view."""
    stmt = (
        select(Record, Institution.org_code, Institution.name)
        .join(Institution, Institution.id == Record.institution_id)
        .where(Record.id == record_id)
    )
    if institution_id is not None:
        stmt = stmt.where(Record.institution_id == institution_id)
    found = (await session.execute(stmt)).first()
    if found is None:
        return None
    rec, org_code, inst_name = found
    ds = load_standard().datasets.get(rec.dataset)
    history = await exchange.record_history(
        session, org_code=org_code, dataset=rec.dataset, key=rec.key
    )
    lines = [VersionLine(h, await exchange.get_log(session, h.exchange_id)) for h in history]
    masked = mask_record(ds, rec.data) if ds is not None else {}
    order = [f.code for f in ds.fields] if ds is not None else []
    names = {f.code: f.name for f in ds.fields} if ds is not None else {}
    codes = [c for c in order if c in masked] + [k for k in masked if k not in names]
    fields = [Field(k, names.get(k) or k, _show(masked[k])) for k in codes]
    shown_key = mask_key(ds, rec.key) if ds is not None else rec.key
    await audit(
        session,
        actor,
        AuditAction.PERSONAL_DATA_VIEW,
        now,
        target=f"record:{rec.id}",
        institution_id=rec.institution_id,
        detail={"where": "supervision_record", "dataset": rec.dataset, "key": shown_key},
    )
    return RecordView(
        id=rec.id,
        institution_id=rec.institution_id,
        org_code=org_code,
        institution=inst_name,
        dataset=rec.dataset,
        dataset_name=ds.name if ds else rec.dataset,
        key=shown_key,
        version=rec.version,
        voided=rec.voided,
        business_time=rec.business_time,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        fields=fields,
        versions=lines,
    )
