"""The confirmation workflow as ONE transition table (数据接入工作说明 第四章、第五章).

    (none)     ──apply────►  applied     the institution applies; only when the board is green
    applied    ──confirm──►  confirmed   统计信息中心 confirms; the report is issued
    applied    ──return───►  returned    统计信息中心 returns it, with comments
    returned   ──reapply──►  applied     the institution fixes and applies again (board green)
    confirmed  ──revoke───►  revoked     统计信息中心 revokes; the report is marked, never deleted
    revoked    ──reapply──►  applied

Nothing else is allowed; the use cases in ``imsp.acceptance.service`` go through
:func:`transition` only, which records every step with the board as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance.models import AcceptanceCase, AcceptanceTransition
from imsp.errors import BadRequest, Forbidden


@dataclass(frozen=True, slots=True)
class State:
    label: str
    tone: str  # neutral | pending | ok | bad


#: ``None`` is an institution that has not applied yet.
STATES: Final[dict[str | None, State]] = {
    None: State("未申请", "neutral"),
    "applied": State("已申请接入确认", "pending"),
    "confirmed": State("已确认", "ok"),
    "returned": State("已退回", "bad"),
    "revoked": State("确认已撤销", "bad"),
}


@dataclass(frozen=True, slots=True)
class Step:
    target: str
    roles: frozenset[str]
    label: str
    needs_reason: bool = False
    needs_green: bool = False  # only when every item of the board is green
    new_version: bool = False


_APPLICANT = frozenset({"applicant"})
_CENTRE = frozenset({"centre"})

TRANSITIONS: Final[dict[tuple[str | None, str], Step]] = {
    (None, "apply"): Step(
        "applied", _APPLICANT, "申请接入确认", needs_green=True, new_version=True
    ),
    ("applied", "confirm"): Step("confirmed", _CENTRE, "确认通过"),
    ("applied", "return"): Step("returned", _CENTRE, "退回修改", needs_reason=True),
    ("returned", "reapply"): Step(
        "applied", _APPLICANT, "修改后重新申请", needs_green=True, new_version=True
    ),
    ("confirmed", "revoke"): Step("revoked", _CENTRE, "撤销确认", needs_reason=True),
    ("revoked", "reapply"): Step(
        "applied", _APPLICANT, "重新申请接入确认", needs_green=True, new_version=True
    ),
}

ACTION_LABELS: Final[dict[str, str]] = {a: s.label for (_, a), s in TRANSITIONS.items()}


def allowed_actions(status: str | None, role: str) -> list[str]:
    """The actions ``role`` may take on a case in ``status``."""
    return [a for (s, a), step in TRANSITIONS.items() if s == status and role in step.roles]


def step_for(status: str | None, action: str, role: str) -> Step:
    """The table row for ``action`` from ``status`` by ``role``; ``Forbidden`` if there is none."""
    step = TRANSITIONS.get((status, action))
    if step is None:
        label = STATES[status].label if status in STATES else status
        raise Forbidden(f"当前状态（{label}）不允许“{ACTION_LABELS.get(action, action)}”操作")
    if role not in step.roles:
        raise Forbidden(f"当前角色无权执行“{step.label}”操作")
    return step


async def transition(
    session: AsyncSession,
    *,
    case: AcceptanceCase,
    action: str,
    actor: str,
    role: str,
    now: datetime,
    board: dict[str, Any],
    green: bool,
    missing: list[str],
    reason: str = "",
) -> AcceptanceTransition:
    """Apply one row of the table to ``case`` and record it with the board (``board``) as seen."""
    status = None if case.status == "new" else case.status
    step = step_for(status, action, role)
    reason = reason.strip()
    if step.needs_reason and not reason:
        raise BadRequest("请填写意见（原因）", data={"errors": {"reason": "请填写意见（原因）"}})
    if step.needs_green and not green:
        raise BadRequest(
            "验收看板尚有未达标项，不能申请接入确认：" + "；".join(missing),
            data={"missing": missing},
        )
    if step.new_version:
        case.version += 1
    row = AcceptanceTransition(
        case_id=case.id,
        version=case.version,
        action=action,
        from_status=status,
        to_status=step.target,
        actor=actor,
        actor_role=role,
        at=now,
        reason=reason,
        board=board,
    )
    case.status = step.target
    case.updated_at = now
    session.add(row)
    await session.flush()
    return row
