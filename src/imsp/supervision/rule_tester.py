"""The rule catalogue's "test this rule" form: parse a pasted record set, run one rule on it
with the engine's ``try_rule`` (no database, nothing stored), and shape what it found.

Pasted text is either a JSON object ``{"prescription": [...], "doctor": [...]}`` (dataset code or
service name → records) or a JSON array of records of the rule's first dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from imsp.errors import BadRequest
from imsp.standard.model import load_standard
from imsp.standard.ruleset import load_rules
from imsp.supervision.engine import try_rule

MAX_PASTED: Final = 1_000_000
MAX_RECORDS: Final = 1000


@dataclass(frozen=True, slots=True)
class Tested:
    """One evaluated record: its dataset and key, and what the rule said about it."""

    dataset: str
    key: str
    problems: list[dict[str, Any]]
    missing: list[dict[str, str]]

    @property
    def verdict(self) -> str:
        if self.problems:
            return "违反规则"
        if self.missing:
            return "待关联（缺少被引用的记录）"
        return "符合"


def parse_pasted(text: str, *, rule_id: str) -> dict[str, list[dict[str, Any]]]:
    rules = {r.id: r for r in load_rules()}
    if rule_id not in rules:
        raise BadRequest("规则不存在")
    if not text.strip():
        raise BadRequest("请粘贴要检查的记录（JSON）")
    if len(text) > MAX_PASTED:
        raise BadRequest("粘贴内容过大：不能超过 1 MB")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"不是合法的 JSON：{exc}") from None
    if isinstance(doc, list):
        doc = {rules[rule_id].datasets[0]: doc}
    if not isinstance(doc, dict):
        raise BadRequest("应为 JSON 数组（记录列表）或 JSON 对象（数据集 → 记录列表）")
    std = load_standard()
    out: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for name, records in doc.items():
        try:
            code = std.dataset(str(name)).code
        except KeyError:
            raise BadRequest(f"未知的数据集：{str(name)[:40]}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise BadRequest(f"数据集 {code} 的内容应为记录（JSON 对象）列表")
        out.setdefault(code, []).extend(records)
        count += len(records)
    if count > MAX_RECORDS:
        raise BadRequest(f"一次最多检查 {MAX_RECORDS} 条记录")
    return out


def run(rule_id: str, records: dict[str, list[dict[str, Any]]], *, now: datetime) -> list[Tested]:
    """CPU-bound: callers run it off the event loop."""
    return [
        Tested(o.subject.dataset, o.subject.key, list(o.verdict.problems), list(o.verdict.missing))
        for o in try_rule(rule_id, records, now=now)
    ]
