"""The finding workflow as ONE transition table (监管发现的核实与整改).

    (raised)        ──────────────► pending_review   the engine records a finding        待核实
    pending_review  ──confirm─────► confirmed        the regulator confirms it           已确认
    pending_review  ──dismiss─────► dismissed        … or excludes it, with a reason     已排除
    confirmed       ──dismiss─────► dismissed        excluded after all, with a reason
    confirmed       ──rectify─────► rectifying       rectification ordered, with a due date  整改中
    rectifying      ──answer──────► rectifying       the hospital answers (attachment)
    rectifying      ──close───────► rectified        the regulator accepts the rectification 已整改
    rectifying      ──expire──────► overdue          the due date passed (system)        逾期
    overdue         ──answer──────► overdue          the hospital answers late
    overdue         ──close───────► rectified
    rectified       ──reopen──────► rectifying       the regulator reopens, with a reason
    dismissed       ──reopen──────► pending_review
    open states     ──resubmitted─► rectified        a corrected version no longer breaks the rule
                                                     (system: 已整改-重新上传, both versions linked)
    rectified       ──recur───────► pending_review   a later version breaks it again (system)

Assignment and comments do not change the state; they are ``NOTES`` and appear in the history.
Nothing else is allowed: use cases go through :func:`step_for` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from imsp.errors import Forbidden

REGULATOR: Final = "regulator"
HOSPITAL: Final = "applicant"  # the institution's portal account
SYSTEM: Final = "system"


@dataclass(frozen=True, slots=True)
class State:
    label: str
    open: bool  # still needs attention (counts as an open finding)
    tone: str  # UI badge: neutral | pending | ok | bad


STATES: Final[dict[str, State]] = {
    "pending_review": State("待核实", open=True, tone="pending"),
    "confirmed": State("已确认", open=True, tone="bad"),
    "dismissed": State("已排除", open=False, tone="neutral"),
    "rectifying": State("整改中", open=True, tone="pending"),
    "rectified": State("已整改", open=False, tone="ok"),
    "overdue": State("逾期", open=True, tone="bad"),
}

OPEN_STATES: Final = frozenset(s for s, st in STATES.items() if st.open)
INITIAL: Final = "pending_review"


@dataclass(frozen=True, slots=True)
class Step:
    target: str
    roles: frozenset[str]
    label: str
    needs_text: bool = False  # a reason (dismiss, reopen) or an answer
    needs_due: bool = False  # a rectification deadline


_R = frozenset({REGULATOR})
_H = frozenset({HOSPITAL})
_S = frozenset({SYSTEM})

TRANSITIONS: Final[dict[tuple[str, str], Step]] = {
    ("pending_review", "confirm"): Step("confirmed", _R, "确认"),
    ("pending_review", "dismiss"): Step("dismissed", _R, "排除", needs_text=True),
    ("confirmed", "dismiss"): Step("dismissed", _R, "排除", needs_text=True),
    ("confirmed", "rectify"): Step("rectifying", _R, "要求整改", needs_due=True),
    ("rectifying", "answer"): Step("rectifying", _H, "提交整改说明", needs_text=True),
    ("rectifying", "close"): Step("rectified", _R, "整改完成，关闭"),
    ("rectifying", "expire"): Step("overdue", _S, "整改逾期"),
    ("overdue", "answer"): Step("overdue", _H, "提交整改说明", needs_text=True),
    ("overdue", "close"): Step("rectified", _R, "整改完成，关闭"),
    ("rectified", "reopen"): Step("rectifying", _R, "重新打开", needs_text=True),
    ("dismissed", "reopen"): Step("pending_review", _R, "重新打开", needs_text=True),
    ("pending_review", "resubmitted"): Step("rectified", _S, "已整改-重新上传"),
    ("confirmed", "resubmitted"): Step("rectified", _S, "已整改-重新上传"),
    ("rectifying", "resubmitted"): Step("rectified", _S, "已整改-重新上传"),
    ("overdue", "resubmitted"): Step("rectified", _S, "已整改-重新上传"),
    ("rectified", "recur"): Step("pending_review", _S, "重新上传后再次违反规则"),
}

#: Actions that add to the history without changing the state: action → (roles, label).
NOTES: Final[dict[str, tuple[frozenset[str], str]]] = {
    "assign": (_R, "指派"),
    "comment": (frozenset({REGULATOR, HOSPITAL}), "备注"),
}

ACTION_LABELS: Final[dict[str, str]] = {
    "raise": "发现",
    **{action: s.label for (_, action), s in TRANSITIONS.items()},
    **{action: label for action, (_, label) in NOTES.items()},
}


def allowed_actions(status: str, role: str) -> list[str]:
    """The workflow actions ``role`` may take on a finding in ``status`` (notes excluded)."""
    return [a for (s, a), step in TRANSITIONS.items() if s == status and role in step.roles]


def step_for(status: str, action: str, role: str) -> Step:
    """The table row for ``action`` from ``status`` by ``role``; ``Forbidden`` if there is none."""
    step = TRANSITIONS.get((status, action))
    label = STATES[status].label if status in STATES else status
    if step is None:
        raise Forbidden(f"当前状态（{label}）不允许“{ACTION_LABELS.get(action, action)}”操作")
    if role not in step.roles:
        raise Forbidden(f"当前角色无权执行“{step.label}”操作")
    return step
