"""The registration authority's decisions (第五章 第 6 步): compare the submitted information with
the offline approval documents; approve when they agree, otherwise reject with a reason —
optionally per field — so the applicant can complete and resubmit.

Decisions go through the one transition table (``workflow.transition``) and are audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor, AuditAction, audit
from imsp.errors import BadRequest, NotFound
from imsp.qualification import fields as F
from imsp.qualification import notify
from imsp.qualification.attachments import KINDS
from imsp.qualification.models import Application, Transition
from imsp.qualification.workflow import on_application, transition

MAX_REASON = 1000


@cache
def reason_targets() -> dict[str, str]:
    """What a per-field rejection reason can point at: form fields, lists, attachment kinds."""
    out = {F.TYPE_FIELD: F.type_field().name}
    for section, title in F.SECTIONS.items():
        for f in F.institution_fields():
            out[f"{section}.{f.code}"] = f"{title} · {f.name}"
    out["departments"] = "科室信息"
    out["doctors"] = "人员信息"
    for kind, label in KINDS.items():
        out[f"attachments.{kind}"] = label
    return out


async def decide(
    session: AsyncSession,
    *,
    app_id: int,
    action: str,
    actor: Actor,
    now: datetime,
    reason: str = "",
    field_reasons: Mapping[str, str] | None = None,
    mail: bool = False,
) -> Transition:
    """Approve or reject the submitted version of application ``app_id``; the applicant
    institution's accounts get a message (and, with ``mail``, an e-mail) in the same unit of
    work."""
    app = await session.scalar(
        select(Application).where(Application.id == app_id).with_for_update()
    )
    if app is None:
        raise NotFound("申请不存在")
    if action not in ("approve", "reject"):
        raise BadRequest("未知的审核操作")
    reason = reason.strip()
    targets = reason_targets()
    per_field = {k: v.strip() for k, v in (field_reasons or {}).items() if v and v.strip()}
    errors: dict[str, str] = {}
    if len(reason) > MAX_REASON:
        errors["reason"] = f"原因不超过 {MAX_REASON} 字"
    unknown = [k for k in per_field if k not in targets]
    if unknown:
        errors["field_reasons"] = "请选择要说明的项目"
    if any(len(v) > MAX_REASON for v in per_field.values()):
        errors["field_reasons"] = f"每项说明不超过 {MAX_REASON} 字"
    if action == "approve":
        per_field = {}
    if errors:
        raise BadRequest("审核意见有误", data={"errors": errors})
    row = await transition(
        session,
        app=app,
        action=action,
        actor=actor.username,
        role=actor.role,
        now=now,
        reason=reason,
        field_reasons=per_field,
    )
    await audit(
        session,
        actor,
        AuditAction(f"qualification.{action}"),
        now=now,
        **on_application(app),
        detail={"version": app.version, "reason": reason, "fields": sorted(per_field)},
    )
    await notify.on_decision(session, app=app, step=row, labels=targets, now=now, mail=mail)
    return row
