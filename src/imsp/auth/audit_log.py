"""Reading the audit log (审计日志) on screen: filters, paging and the Chinese name of each action.

Writing stays in ``imsp.auth.audit`` (one helper); this is its read side, for the operator and
the regulator (every event) and for one application's own history (the events of its
institution). Actions another domain adds later are shown by their dotted name until they get a
label here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import AuditAction
from imsp.auth.models import AuditEvent, Institution

A = AuditAction
LABELS: Final[dict[str, str]] = {
    A.CREDENTIAL_CREATE: "创建接入凭据",
    A.CREDENTIAL_ROTATE: "轮换接入凭据",
    A.CREDENTIAL_REVOKE: "吊销接入凭据",
    A.ACCOUNT_CREATE: "创建账号",
    A.ACCOUNT_RESET_PASSWORD: "重置密码",
    A.ACCOUNT_ENABLE: "启用账号",
    A.ACCOUNT_DISABLE: "停用账号",
    A.ACCOUNT_LOCK: "账号锁定",
    A.ACCOUNT_UNLOCK: "解锁账号",
    A.ACCOUNT_CHANGE_PASSWORD: "修改密码",
    A.LOGIN_SUCCESS: "登录成功",
    A.LOGIN_FAILURE: "登录失败",
    A.LOGIN_REFUSE: "拒绝登录",
    A.LOGOUT: "退出登录",
    A.QUALIFICATION_SUBMIT: "提交资质申请",
    A.QUALIFICATION_RESUBMIT: "重新提交资质申请",
    A.QUALIFICATION_APPROVE: "审核通过",
    A.QUALIFICATION_REJECT: "审核驳回",
    A.QUALIFICATION_WITHDRAW: "撤回提交",
    A.ATTACHMENT_VIEW: "查看附件",
    A.ATTACHMENT_DOWNLOAD: "下载附件",
    A.PERSONAL_DATA_VIEW: "查看个人信息",
    A.EXCHANGE_BODY_EXPORT: "导出上报原文",
}


def label(action: str) -> str:
    return LABELS.get(action, action)


@dataclass(frozen=True, slots=True)
class Filter:
    """What the audit page narrows to; blank fields do not filter."""

    action: str = ""  # an exact action, or a subject prefix ending in "." ("login.")
    actor: str = ""  # login name contains
    institution: str = ""  # institution name or 组织机构代码 contains
    institution_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Row:
    event: AuditEvent
    institution: Institution | None

    @property
    def label(self) -> str:
        return label(self.event.action)

    @property
    def detail(self) -> str:
        return "；".join(f"{k}={_plain(v)}" for k, v in sorted(self.event.detail.items()))


def _plain(value: Any) -> str:
    return str(value)[:80]


def _contains(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(f: Filter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.action.endswith("."):
        where.append(AuditEvent.action.startswith(f.action))
    elif f.action:
        where.append(AuditEvent.action == f.action)
    if f.actor.strip():
        where.append(AuditEvent.actor.ilike(_contains(f.actor.strip()), escape="\\"))
    if f.institution.strip():
        pattern = _contains(f.institution.strip())
        where.append(
            Institution.name.ilike(pattern, escape="\\")
            | Institution.org_code.ilike(pattern, escape="\\")
        )
    if f.institution_id is not None:
        where.append(AuditEvent.institution_id == f.institution_id)
    if f.since is not None:
        where.append(AuditEvent.at >= f.since)
    if f.until is not None:
        where.append(AuditEvent.at < f.until)
    return where


async def events(
    session: AsyncSession, *, where: Filter, offset: int, limit: int
) -> tuple[list[Row], int]:
    """Audit events matching ``where``, newest first, and how many there are."""
    conditions = _where(where)
    joined = select(AuditEvent, Institution).outerjoin(
        Institution, Institution.id == AuditEvent.institution_id
    )
    total = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .outerjoin(Institution, Institution.id == AuditEvent.institution_id)
        .where(*conditions)
    )
    rows = await session.execute(
        joined.where(*conditions)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [Row(e, i) for e, i in rows], int(total or 0)
