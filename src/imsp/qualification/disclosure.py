"""Showing what the law protects, audited: attachments and personal data (ID numbers) unmasked.

Every showing writes an audit event in the same unit of work (《个人信息保护法》第五十一条:
调阅留痕); the reads themselves, with their access scoping, are ``queries``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor, AuditAction, audit
from imsp.errors import NotFound
from imsp.qualification import fields as F
from imsp.qualification.filing import Filing, filing_of
from imsp.qualification.models import Application, Attachment
from imsp.qualification.queries import application_for, institution, readable_attachment

#: Who may have an approved application's filing record: its own institution and the
#: registration authority.
FILING_READERS = frozenset({"applicant", "reviewer"})


async def open_attachment(
    session: AsyncSession,
    *,
    actor: Actor,
    attachment_id: int,
    data_dir: Path,
    now: datetime,
    download: bool,
) -> tuple[Attachment, Path]:
    """The attachment row and its file, if ``actor`` may see it; the view is audited."""
    row, app, path = await readable_attachment(
        session, actor=actor, attachment_id=attachment_id, data_dir=data_dir
    )
    action = AuditAction.ATTACHMENT_DOWNLOAD if download else AuditAction.ATTACHMENT_VIEW
    detail = {"application": app.id, "kind": row.kind, "sha256": row.sha256}
    target = f"attachment:{row.id}"
    await audit(
        session, actor, action, now=now, target=target, institution_id=app.institution_id,
        detail=detail,
    )  # fmt: skip
    return row, path


async def view_person(
    session: AsyncSession,
    *,
    actor: Actor,
    app: Application,
    roster: F.Roster,
    record: dict[str, Any],
    now: datetime,
    where: str,
) -> None:
    """Audit that ``actor`` saw a record's personal data (ID numbers) unmasked."""
    detail = {
        "where": where,
        "record": roster.shown_key(record.get(roster.key)),
        "name": str(record.get(roster.label_field) or ""),
    }
    target = f"application:{app.id}/{roster.dataset}"
    await audit(
        session, actor, AuditAction.PERSONAL_DATA_VIEW, now=now, target=target,
        institution_id=app.institution_id, detail=detail,
    )  # fmt: skip


async def filing_record(
    session: AsyncSession, *, actor: Actor, app_id: int, now: datetime
) -> Filing:
    """The 备案登记表 of approved application ``app_id`` for ``actor`` (its own applicant or a
    reviewer; *not found* otherwise, and for applications not approved); the handing-out of its
    personal data (doctors' names, masked ID numbers) is audited."""
    if actor.role not in FILING_READERS:
        raise NotFound("申请不存在")
    app = await application_for(session, actor=actor, app_id=app_id)
    filing = await filing_of(session, app=app, institution=await institution(session, app=app))
    detail = {"where": "filing_record", "version": filing.version, "doctors": filing.doctor_count}
    await audit(
        session, actor, AuditAction.PERSONAL_DATA_VIEW, now=now,
        target=f"application:{app.id}/filing", institution_id=app.institution_id, detail=detail,
    )  # fmt: skip
    return filing
