"""Upload receipts (回执): one result per record, with a stable business code and every problem.

Shape (the published contract, see ``protocol``)::

    {"code": 200, "msg": "处理完成：共 3 条，成功 2 条，失败 1 条",
     "data": {"exchangeId": "0193…", "standardVersion": "1.1", "total": 3, "success": 2, "fail": 1,
              "results": [{"index": 0, "key": "RX1", "msgCode": 200, "msg": "成功",
                           "errors": [], "warnings": []}, …]}}

``results`` lists every record, in body order. A rejected record lists *every* problem in
``errors`` (``field`` is the node path, ``code`` a stable issue code, ``msg`` Chinese); its
``msgCode`` is the most fundamental of its problems, in the order of :data:`imsp.standard.protocol.RECORD_CODE_PRIORITY`.
Warnings (unknown nodes dropped, code aliases normalised) never reject a record.
"""

from __future__ import annotations

from typing import Any, Final

from imsp.standard.issues import Issue
from imsp.standard.protocol import EXCHANGE_ISSUES, RECORD, record_msg_code

_SHOWN_FIELDS = 5
#: At most this many errors and this many warnings are listed per record; a last entry
#: (``more_issues``) says how many were left out. A body with 50,000 unknown nodes must not
#: produce a receipt of 16 MB.
MAX_LISTED = 100

MSG_UNCHANGED: Final = "已存在，内容未变化（未生成新版本）"


def issue_code(issue: Issue) -> int:
    """The receipt business code of one issue."""
    extra = EXCHANGE_ISSUES.get(issue.code)
    return extra.msg_code if extra is not None else issue.msg_code


def issue_json(issue: Issue) -> dict[str, str]:
    return {"field": issue.field, "code": issue.code, "msg": issue.msg}


def failure(
    index: int, key: str | None, errors: list[Issue], warnings: list[Issue]
) -> dict[str, Any]:
    """The result of a rejected record."""
    codes = {issue_code(e) for e in errors}
    code = record_msg_code(codes)
    fields = list(dict.fromkeys(e.field or "记录" for e in errors if issue_code(e) == code))
    shown = "、".join(fields[:_SHOWN_FIELDS])
    if len(fields) > _SHOWN_FIELDS:
        shown += f" 等 {len(fields)} 项"
    msg = f"{RECORD[code].msg}：{shown}"
    others = sum(1 for e in errors if issue_code(e) != code)
    if others:
        msg += f"（另有 {others} 个其他问题）"
    return {
        "index": index,
        "key": key,
        "msgCode": code,
        "msg": msg,
        "errors": _listed(errors),
        "warnings": _listed(warnings),
    }


def success(index: int, key: str | None, warnings: list[Issue]) -> dict[str, Any]:
    """The result of a valid record (``msgCode`` 200 until the store says otherwise)."""
    return {
        "index": index,
        "key": key,
        "msgCode": 200,
        "msg": RECORD[200].msg,
        "errors": [],
        "warnings": _listed(warnings) if warnings else [],
    }


def _listed(issues: list[Issue]) -> list[dict[str, str]]:
    out = [issue_json(i) for i in issues[:MAX_LISTED]]
    if len(issues) > MAX_LISTED:
        left = len(issues) - MAX_LISTED
        out.append({"field": "", "code": "more_issues", "msg": f"另有 {left} 条未列出"})
    return out


def mark(result: dict[str, Any], code: int, msg: str | None = None) -> None:
    result["msgCode"] = code
    result["msg"] = msg or RECORD[code].msg


def summary(total: int, ok: int, failed: int, *, dry_run: bool, atomic_failed: bool) -> str:
    if atomic_failed:
        return f"整批未入库（atomic=true）：共 {total} 条，其中 {failed} 条未通过校验"
    if dry_run:
        return f"试运行完成（未入库）：共 {total} 条，校验通过 {ok} 条，未通过 {failed} 条"
    return f"处理完成：共 {total} 条，成功 {ok} 条，失败 {failed} 条"
