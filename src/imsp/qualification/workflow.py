"""The review workflow as ONE transition table (数据接入工作说明 第五章 第 4–7 步).

    (none)     ──open────►  draft       the operator allocates the account (第二步)
    draft      ──submit───► submitted   the applicant submits (第 5 步)        待审核
    submitted  ──approve──► approved    the reviewer approves; data locked    审核通过
    submitted  ──reject───► rejected    the reviewer rejects, with a reason   审核驳回
    rejected   ──resubmit─► submitted   the applicant fixes and resubmits     待审核
    submitted  ──withdraw─► withdrawn   the applicant takes back a submission  已撤回
                                        not yet reviewed (the version stays on record)
    withdrawn  ──resubmit─► submitted   the applicant changes and resubmits   待审核

Nothing else is allowed: no state has a transition that is not a row of ``TRANSITIONS``, and the
use cases (``registration.submit``, ``review.decide``) go through :func:`transition` only.
Whether the applicant may edit its data is a property of the state (``STATES[...].editable``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.errors import BadRequest, Forbidden
from imsp.qualification.models import Application, Transition


@dataclass(frozen=True, slots=True)
class State:
    label: str
    editable: bool  # the applicant may change its data
    tone: str  # for the UI badge: neutral | pending | ok | bad


STATES: Final[dict[str, State]] = {
    "draft": State("填报中", editable=True, tone="neutral"),
    "submitted": State("待审核", editable=False, tone="pending"),
    "approved": State("审核通过", editable=False, tone="ok"),
    "rejected": State("审核驳回", editable=True, tone="bad"),
    "withdrawn": State("已撤回", editable=True, tone="neutral"),
}


@dataclass(frozen=True, slots=True)
class Step:
    target: str
    roles: frozenset[str]
    label: str
    needs_reason: bool = False
    new_version: bool = False  # the step freezes a new submission version


TRANSITIONS: Final[dict[tuple[str | None, str], Step]] = {
    (None, "open"): Step("draft", frozenset({"operator", "applicant"}), "分配账号，开始填报"),
    ("draft", "submit"): Step("submitted", frozenset({"applicant"}), "提交审核", new_version=True),
    ("submitted", "approve"): Step("approved", frozenset({"reviewer"}), "审核通过"),
    ("submitted", "reject"): Step(
        "rejected", frozenset({"reviewer"}), "审核驳回", needs_reason=True
    ),
    ("rejected", "resubmit"): Step(
        "submitted", frozenset({"applicant"}), "补充完善后重新提交", new_version=True
    ),
    ("submitted", "withdraw"): Step("withdrawn", frozenset({"applicant"}), "撤回提交"),
    ("withdrawn", "resubmit"): Step(
        "submitted", frozenset({"applicant"}), "修改后重新提交", new_version=True
    ),
}

ACTION_LABELS: Final[dict[str, str]] = {action: s.label for (_, action), s in TRANSITIONS.items()}


def allowed_actions(status: str | None, role: str) -> list[str]:
    """The actions ``role`` may take on an application in ``status``."""
    return [a for (s, a), step in TRANSITIONS.items() if s == status and role in step.roles]


def step_for(status: str | None, action: str, role: str) -> Step:
    """The table row for ``action`` from ``status`` by ``role``; ``Forbidden`` if there is none."""
    step = TRANSITIONS.get((status, action))
    label = STATES[status].label if status in STATES else "未开始"
    if step is None:
        raise Forbidden(f"当前状态（{label}）不允许“{ACTION_LABELS.get(action, action)}”操作")
    if role not in step.roles:
        raise Forbidden(f"当前角色无权执行“{step.label}”操作")
    return step


def is_editable(status: str) -> bool:
    return STATES[status].editable


def ensure_editable(app: Application) -> None:
    """Refuse changes to an application whose state locks its data (待审核, 审核通过)."""
    if not is_editable(app.status):
        state = STATES[app.status]
        raise Forbidden(f"申请当前状态为“{state.label}”，资料不可修改")


async def transition(
    session: AsyncSession,
    *,
    app: Application,
    action: str,
    actor: str,
    role: str,
    now: datetime,
    reason: str = "",
    field_reasons: dict[str, Any] | None = None,
) -> Transition:
    """Apply one row of the table to ``app`` and record it. The caller has checked its own
    preconditions (e.g. completeness before a submission); this checks state, role and reason."""
    step = step_for(app.status if action != "open" else None, action, role)
    reason = reason.strip()
    if step.needs_reason and not reason:
        raise BadRequest("请填写驳回原因", data={"errors": {"reason": "请填写驳回原因"}})
    if step.new_version:
        app.version += 1
    row = Transition(
        application_id=app.id,
        version=app.version,
        action=action,
        from_status=app.status if action != "open" else None,
        to_status=step.target,
        actor=actor,
        actor_role=role,
        at=now,
        reason=reason,
        field_reasons=dict(field_reasons or {}),
    )
    app.status = step.target
    app.updated_at = now
    session.add(row)
    await session.flush()
    return row


def on_application(app: Application) -> dict[str, Any]:
    """The ``target`` and ``institution_id`` of an audit event about ``app``."""
    return {"target": f"application:{app.id}", "institution_id": app.institution_id}
