"""Who is told what when an application changes state (消息中心, optional e-mail).

* the applicant institution's accounts — when the registration authority approves or rejects
  (with the reasons, per item too);
* the reviewers (登记机关) — when an application is submitted, resubmitted or withdrawn.

Called by the use cases (``registration.submit``/``withdraw``, ``review.decide``) in their unit of
work, right after the transition: the message exists exactly when the new state does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution, PortalUser
from imsp.clock import format_datetime
from imsp.notify.service import Note, post
from imsp.qualification.models import Application, Transition


async def _applicants(session: AsyncSession, app: Application) -> list[PortalUser]:
    rows = await session.scalars(
        select(PortalUser)
        .where(
            PortalUser.role == "applicant",
            PortalUser.institution_id == app.institution_id,
            PortalUser.active.is_(True),
        )
        .order_by(PortalUser.id)
    )
    return list(rows)


async def _reviewers(session: AsyncSession) -> list[PortalUser]:
    rows = await session.scalars(
        select(PortalUser)
        .where(PortalUser.role == "reviewer", PortalUser.active.is_(True))
        .order_by(PortalUser.id)
    )
    return list(rows)


async def _name(session: AsyncSession, app: Application) -> str:
    inst = await session.get(Institution, app.institution_id)
    return inst.name if inst is not None else ""


async def on_decision(
    session: AsyncSession,
    *,
    app: Application,
    step: Transition,
    labels: Mapping[str, str],
    now: datetime,
    mail: bool,
) -> None:
    """Tell the applicant institution that version ``step.version`` was approved or rejected;
    ``labels`` name the items a rejection's per-item reasons point at."""
    name = await _name(session, app)
    when = format_datetime(now)
    if step.action == "approve":
        subject = f"资质申请审核通过（第 {step.version} 版）"
        lines = [
            f"{name}：",
            f"贵机构提交的资质申请第 {step.version} 版已于 {when} 经登记机关审核通过。",
        ]
        if step.reason:
            lines.append(f"审核意见：{step.reason}")
        lines.append("可在“审核进度查询”中下载备案登记表。")
    else:
        subject = f"资质申请被驳回（第 {step.version} 版），请补充完善后重新提交"
        lines = [
            f"{name}：",
            f"贵机构提交的资质申请第 {step.version} 版已于 {when} 被登记机关驳回。",
            f"驳回原因：{step.reason}",
        ]
        for target, text in step.field_reasons.items():
            lines.append(f"· {labels.get(str(target), str(target))}：{text}")
        lines.append("请按审核意见修改后重新提交。")
    note = Note(subject, "\n".join(lines), "/my/progress")
    await post(session, users=await _applicants(session, app), note=note, now=now, mail=mail)


_SUBMITTED = {
    "submit": ("新的资质申请待审核", "提交了资质申请第 {v} 版，请审核。"),
    "resubmit": ("资质申请已重新提交，待审核", "补充完善后重新提交了资质申请第 {v} 版，请审核。"),
    "withdraw": ("资质申请已撤回", "撤回了尚未审核的资质申请第 {v} 版，无需审核。"),
}


async def on_submission(
    session: AsyncSession, *, app: Application, action: str, now: datetime, mail: bool
) -> None:
    """Tell the reviewers that an application was submitted, resubmitted or withdrawn."""
    title, text = _SUBMITTED[action]
    name = await _name(session, app)
    body = f"{name} 于 {format_datetime(now)} " + text.format(v=app.version)
    note = Note(f"{title}：{name}", body, f"/applications/{app.id}")
    await post(session, users=await _reviewers(session), note=note, now=now, mail=mail)
