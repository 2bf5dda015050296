"""Finding use cases: the regulator's and the hospital's actions, all through the transition table.

Every function takes a session and never commits (the page or job boundary does). A hospital
(``role="applicant"``) acts only on its own institution's findings — another institution's finding
is reported as not found, never as forbidden, so its existence does not leak. Every human action
is written to the audit log (``imsp.auth.service.audit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.service import audit
from imsp.errors import BadRequest, Forbidden, NotFound
from imsp.supervision import workflow
from imsp.supervision.models import Finding, FindingEvent

__all__ = [
    "act",
    "answer",
    "assign",
    "bulk_act",
    "close",
    "comment",
    "confirm",
    "dismiss",
    "expire_overdue",
    "load_finding",
    "reopen",
    "request_rectification",
]

_TEXT_LABEL = {"dismiss": "排除原因", "reopen": "重新打开原因", "answer": "整改说明"}


async def load_finding(
    session: AsyncSession, *, finding_id: int, institution_id: int | None = None
) -> Finding:
    """The finding, scoped to ``institution_id`` when given (a hospital's view); else NotFound."""
    finding = await session.get(Finding, finding_id)
    if finding is None or (institution_id is not None and finding.institution_id != institution_id):
        raise NotFound("监管发现不存在")
    return finding


def _event(
    finding: Finding,
    *,
    action: str,
    from_status: str | None,
    to_status: str | None,
    actor: str,
    role: str,
    now: datetime,
    text: str = "",
    attachment: str | None = None,
    data: dict[str, Any] | None = None,
) -> FindingEvent:
    return FindingEvent(
        finding_id=finding.id,
        at=now,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        actor_role=role,
        text=text,
        attachment=attachment,
        data=dict(data or {}),
    )


async def act(
    session: AsyncSession,
    *,
    finding_id: int,
    action: str,
    actor: str,
    role: str,
    now: datetime,
    text: str = "",
    due_at: datetime | None = None,
    attachment: str | None = None,
    assignee: str | None = None,
    institution_id: int | None = None,
    client_addr: str = "",
) -> FindingEvent:
    """Apply one workflow action (a row of ``workflow.TRANSITIONS``) or note (``workflow.NOTES``)
    to a finding and record it in its history. ``institution_id`` scopes a hospital's action."""
    if role == workflow.HOSPITAL and institution_id is None:
        raise Forbidden("医疗机构账号未关联机构")
    finding = await load_finding(
        session,
        finding_id=finding_id,
        institution_id=institution_id if role == workflow.HOSPITAL else None,
    )
    text = text.strip()
    before = finding.status
    if action in workflow.NOTES:
        roles, label = workflow.NOTES[action]
        if role not in roles:
            raise Forbidden(f"当前角色无权执行“{label}”操作")
        if action == "comment" and not text:
            raise BadRequest("请填写备注内容", data={"errors": {"text": "请填写备注内容"}})
        if action == "assign":
            who = (assignee or "").strip()
            if not who:
                raise BadRequest("请填写处理人", data={"errors": {"assignee": "请填写处理人"}})
            finding.assignee = who
            text = text or who
        event = _event(
            finding,
            action=action,
            from_status=before,
            to_status=before,
            actor=actor,
            role=role,
            now=now,
            text=text,
            attachment=attachment,
            data={"assignee": finding.assignee} if action == "assign" else None,
        )
    else:
        step = workflow.step_for(before, action, role)
        if step.needs_text and not text:
            label = _TEXT_LABEL.get(action, "说明")
            raise BadRequest(f"请填写{label}", data={"errors": {"text": f"请填写{label}"}})
        data: dict[str, Any] = {}
        if step.needs_due:
            if due_at is None:
                raise BadRequest("请填写整改期限", data={"errors": {"due_at": "请填写整改期限"}})
            if due_at <= now:
                raise BadRequest(
                    "整改期限须晚于当前时间", data={"errors": {"due_at": "整改期限须晚于当前时间"}}
                )
            finding.due_at = due_at
            data["due_at"] = due_at.isoformat()
            if assignee and assignee.strip():
                finding.assignee = assignee.strip()
        if step.target == "rectified":
            finding.resolution = "closed"
            finding.resolved_version = finding.record_version
        elif step.target == "dismissed":
            finding.resolution = "dismissed"
            finding.resolved_version = finding.record_version
        else:
            finding.resolution = None
            finding.resolved_version = None
        finding.status = step.target
        event = _event(
            finding,
            action=action,
            from_status=before,
            to_status=step.target,
            actor=actor,
            role=role,
            now=now,
            text=text,
            attachment=attachment,
            data=data,
        )
    finding.updated_at = now
    session.add(event)
    await session.flush()
    if role != workflow.SYSTEM:
        await audit(
            session,
            now=now,
            actor=actor,
            actor_kind="user",
            action=f"supervision.{action}",
            target=f"finding:{finding.id}",
            institution_id=finding.institution_id,
            client_addr=client_addr,
            detail={"rule": finding.rule_id, "from": before, "to": finding.status},
        )
    return event


async def bulk_act(
    session: AsyncSession,
    *,
    finding_ids: Sequence[int],
    action: str,
    actor: str,
    role: str,
    now: datetime,
    text: str = "",
    client_addr: str = "",
) -> list[FindingEvent]:
    """The same action on several findings (bulk confirm / dismiss): all or nothing — the first
    finding that does not allow it raises, and the boundary rolls the whole batch back."""
    if not finding_ids:
        raise BadRequest("请选择监管发现")
    return [
        await act(
            session,
            finding_id=fid,
            action=action,
            actor=actor,
            role=role,
            now=now,
            text=text,
            client_addr=client_addr,
        )
        for fid in dict.fromkeys(finding_ids)
    ]


async def confirm(
    session: AsyncSession, *, finding_id: int, actor: str, now: datetime
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="confirm",
        actor=actor,
        role=workflow.REGULATOR,
        now=now,
    )


async def dismiss(
    session: AsyncSession, *, finding_id: int, actor: str, now: datetime, reason: str
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="dismiss",
        actor=actor,
        role=workflow.REGULATOR,
        now=now,
        text=reason,
    )


async def request_rectification(
    session: AsyncSession,
    *,
    finding_id: int,
    actor: str,
    now: datetime,
    due_at: datetime,
    text: str = "",
    assignee: str | None = None,
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="rectify",
        actor=actor,
        role=workflow.REGULATOR,
        now=now,
        text=text,
        due_at=due_at,
        assignee=assignee,
    )


async def answer(
    session: AsyncSession,
    *,
    finding_id: int,
    institution_id: int,
    actor: str,
    now: datetime,
    text: str,
    attachment: str | None = None,
) -> FindingEvent:
    """The hospital's rectification answer, with an optional attachment reference (the portal
    stores the file and passes its reference)."""
    return await act(
        session,
        finding_id=finding_id,
        action="answer",
        actor=actor,
        role=workflow.HOSPITAL,
        now=now,
        text=text,
        attachment=attachment,
        institution_id=institution_id,
    )


async def close(
    session: AsyncSession, *, finding_id: int, actor: str, now: datetime, text: str = ""
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="close",
        actor=actor,
        role=workflow.REGULATOR,
        now=now,
        text=text,
    )


async def reopen(
    session: AsyncSession, *, finding_id: int, actor: str, now: datetime, reason: str
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="reopen",
        actor=actor,
        role=workflow.REGULATOR,
        now=now,
        text=reason,
    )


async def comment(
    session: AsyncSession,
    *,
    finding_id: int,
    actor: str,
    role: str,
    now: datetime,
    text: str,
    institution_id: int | None = None,
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="comment",
        actor=actor,
        role=role,
        now=now,
        text=text,
        institution_id=institution_id,
    )


async def assign(
    session: AsyncSession, *, finding_id: int, actor: str, now: datetime, assignee: str
) -> FindingEvent:
    return await act(
        session,
        finding_id=finding_id,
        action="assign",
        actor=actor,
        role=workflow.REGULATOR,
        now=now,
        assignee=assignee,
    )


async def expire_overdue(session: AsyncSession, *, now: datetime) -> int:
    """Mark findings whose rectification deadline passed as 逾期 (run by the worker)."""
    due = (
        await session.scalars(
            select(Finding.id).where(Finding.status == "rectifying", Finding.due_at < now)
        )
    ).all()
    for fid in due:
        await act(
            session, finding_id=fid, action="expire", actor="system", role=workflow.SYSTEM, now=now
        )
    return len(due)
