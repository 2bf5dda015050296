"""Issues and verdicts: what the validator reports, and the stable issue-code catalogue.

Each code belongs to one business ``msg_code`` of the upload receipt (``protocol.RECORD``):
-99 必填项缺失, -98 数据为空/非对象, -97 值域不合法, -96 格式/类型/长度错误, -94 数据逻辑错误.
Warnings are stored with the record and do not reject it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from imsp.standard import checks

__all__ = [
    "ISSUES",
    "MISSING",
    "Issue",
    "IssueKind",
    "Severity",
    "Verdict",
    "as_number",
    "get_path",
    "is_empty",
    "show",
]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class IssueKind:
    """One entry of the issue-code catalogue: a stable ``code``, its Chinese ``title`` and the
    per-record business ``msg_code`` of the upload receipt (see ``protocol.RECORD``)."""

    code: str
    title: str
    msg_code: int
    severity: Severity = "error"


def _kinds(msg_code: int, *pairs: tuple[str, str]) -> list[IssueKind]:
    return [IssueKind(c, t, msg_code) for c, t in pairs]


#: The stable issue-code catalogue (数据标准 V1.0 §错误代码). Codes never change meaning; new
#: checks get new codes.
ISSUES: Final[Mapping[str, IssueKind]] = {
    k.code: k
    for k in (
        *_kinds(
            -99,
            ("node_missing", "节点缺失"),
            ("required", "必填项为空"),
            ("conditional_required", "条件必填项为空"),
            ("min_items", "明细条数不足"),
        ),
        *_kinds(-98, ("not_object", "记录不是 JSON 对象"), ("empty", "记录为空")),
        *_kinds(-97, ("value_set", "代码不在值域内")),
        *_kinds(
            -96,
            ("type", "类型错误"),
            ("length", "长度超过上限"),
            ("precision", "整数位数超过上限"),
            ("scale", "小数位数超过上限"),
            ("range", "数值超出范围"),
            ("date", "日期格式错误"),
            ("datetime", "日期时间格式错误"),
            ("date_range", "日期早于 1900-01-01"),
            ("idcard", "居民身份证号码无效"),
            ("idcard_birthday", "出生日期与身份证号码不一致"),
            ("idcard_sex", "性别与身份证号码不一致"),
            ("uscc", "统一社会信用代码无效"),
            ("mobile", "手机号码格式错误"),
            ("phone", "联系电话格式错误"),
            ("postcode", "邮政编码格式错误"),
            ("url", "网址格式错误"),
            ("sha256", "SHA-256 摘要格式错误"),
            ("workdate", "出诊时段格式错误"),
            ("multi_value", "多值代码格式错误"),
        ),
        *_kinds(
            -94,
            ("time_order", "时间先后顺序错误"),
            ("sum_mismatch", "金额合计不符"),
            ("product_mismatch", "数量与单价之积不符"),
            ("pair_mismatch", "多值代码与名称个数不对应"),
            ("one_of", "至少填写一项"),
            ("not_equal", "两项不应相同"),
            ("age_mismatch", "年龄与出生日期不符"),
            ("period_mismatch", "有效天数与起止日期不符"),
        ),
        IssueKind("unknown_field", "未定义的节点（未存储）", 200, "warning"),
        IssueKind("code_alias", "代码别名已转换为标准代码", 200, "warning"),
        IssueKind("code_retired", "已撤销的代码（历史记录，接受）", 200, "warning"),
        IssueKind("diag_unchecked", "诊断编码体系无平台代码表，未逐码校验", 200, "warning"),
        IssueKind("diag_who_category", "WHO ICD-10 类目，未逐码校验", 200, "warning"),
    )
}

#: msg_code used for a rule whose ``code`` override is not in :data:`ISSUES`.
_RULE_MSG_CODE: Final = -94


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of one record. ``field`` is the node path (``items[2].amount``; ``""`` for the
    record itself), ``code`` a key of :data:`ISSUES` (or a rule's own code), ``msg`` Chinese."""

    field: str
    code: str
    msg: str
    severity: Severity

    @property
    def msg_code(self) -> int:
        """The receipt's business code for this issue (``-99`` … ``-94``; 200 for warnings)."""
        kind = ISSUES.get(self.code)
        if kind is not None:
            return kind.msg_code
        return _RULE_MSG_CODE if self.severity == "error" else 200


@dataclass(slots=True)
class Verdict:
    """The validator's answer for one record.

    ``key`` is the business key (key field values joined with ``|``; ``None`` if one is empty).
    ``record`` is what to store — defined nodes only, code aliases replaced — or ``None`` when the
    record has errors. When nothing needed changing it is the input dict itself, not a copy.
    """

    index: int
    key: str | None
    errors: list[Issue]
    warnings: list[Issue]
    record: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------- value helpers

MISSING: Final[Any] = object()  # a node absent from the record


def show(value: Any, limit: int = 40) -> str:
    """A value as printed in an issue message: JSON-like, truncated to ``limit`` characters."""
    if value is None:
        text = "null"
    elif value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value if value.strip() else f'"{value}"'
    elif isinstance(value, dict):
        text = "{…}"
    elif isinstance(value, list):
        text = f"[…{len(value)} 项]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_empty(v: Any) -> bool:
    """``null``, absent, ``""``, blank string, ``[]`` or ``{}`` (数据标准 V1.0 §通用约定)."""
    if v is None or v is MISSING:
        return True
    if type(v) is str:
        return not v or (v[0].isspace() and not v.strip())
    if type(v) is list or type(v) is dict:
        return not v
    return False


def as_number(v: Any) -> float | None:
    """A JSON number (not a bool) or a plain decimal string as float, else ``None``."""
    t = type(v)
    if t is int or t is float:
        return float(v)
    if t is str and checks.is_decimal_string(v):
        return float(v)
    return None


def get_path(node: Any, parts: tuple[str, ...]) -> Any:
    if len(parts) == 1 and type(node) is dict:  # most paths name a top-level node
        return node.get(parts[0], MISSING)
    for p in parts:
        if type(node) is not dict:
            return MISSING
        node = node.get(p, MISSING)
        if node is MISSING:
            return MISSING
    return node
