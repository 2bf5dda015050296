"""Form inputs generated from the Data Standard's field definitions.

A field with a code table becomes a select box fed from that table (several values: check boxes),
a date a date input, a long text a text area; required marks, length limits and hints come from
the definition. Templates only loop over :class:`Input` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from imsp.qualification import fields as F
from imsp.standard.model import CodeTable, Field


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class Group:
    label: str  # "" for an ungrouped list
    options: tuple[Option, ...]


@dataclass(slots=True)
class Input:
    name: str
    label: str
    kind: str  # text | date | number | select | checks | textarea | readonly
    value: Any = ""
    required: str = "N"  # Y | N | C
    condition: str = ""
    hint: str = ""
    maxlength: int | None = None
    error: str = ""
    note: str = ""  # the reviewer's field-level reason of the last rejection
    groups: tuple[Group, ...] = ()
    wide: bool = False
    selected: frozenset[str] = field(default_factory=frozenset)


def _region(table: CodeTable) -> tuple[Group, ...]:
    """GB/T 2260: Hebei's counties under their city; other provinces at the end."""
    names = table.names
    cities: dict[str, list[Option]] = {}
    others: list[Option] = []
    for e in table.entries:
        code = e.code
        if code.startswith("13") and code != "130000":
            city = code[:4] + "00"
            label = f"{code} {e.name}" if code == city else f"{code} {names.get(city, '')}{e.name}"
            cities.setdefault(city, []).append(Option(code, label))
        else:
            others.append(Option(code, f"{code} {e.name}"))
    groups = [Group(f"河北省 · {names.get(c, c)}", tuple(opts)) for c, opts in cities.items()]
    groups.append(Group("省级（含河北省）", tuple(others)))
    return tuple(groups)


def _lettered(table: CodeTable) -> tuple[Group, ...]:
    """WS 218: grouped by the category letter (A 医院, B 社区卫生服务中心（站）, …)."""
    groups: dict[str, tuple[str, list[Option]]] = {}
    for e in table.entries:
        letter = e.code[:1]
        title = table.names.get(letter, letter)
        groups.setdefault(letter, (f"{letter} {title}", []))[1].append(
            Option(e.code, f"{e.code} {e.name}")
        )
    return tuple(Group(label, tuple(opts)) for label, opts in groups.values())


def _flat(table: CodeTable) -> tuple[Group, ...]:
    """Dotted hierarchies (诊疗科目 03 → 03.04 → …) are indented by level."""
    options = tuple(
        Option(e.code, "　" * e.code.count(".") + f"{e.code} {e.name}") for e in table.entries
    )
    return (Group("", options),)


@cache
def groups_for(table_name: str) -> tuple[Group, ...]:
    table = F.standard().tables[table_name]
    if table_name == "region":
        return _region(table)
    if table_name == "org_category":
        return _lettered(table)
    return _flat(table)


def input_for(
    f: Field,
    name: str,
    value: Any,
    *,
    error: str = "",
    note: str = "",
    label: str | None = None,
    readonly: bool = False,
) -> Input:
    text = "" if value is None else value
    hint = f.desc
    common: dict[str, Any] = {
        "name": name,
        "label": label or f.name,
        "required": f.required,
        "condition": f.condition,
        "error": error,
        "note": note,
    }
    if readonly:
        return Input(kind="readonly", value=text, hint=hint, **common)
    if f.table:
        groups = groups_for(f.table)
        if f.multi:
            chosen = text if isinstance(text, list) else str(text).split("|")
            return Input(
                kind="checks",
                groups=groups,
                selected=frozenset(c for c in chosen if c),
                hint=hint,
                wide=True,
                **common,
            )
        return Input(kind="select", value=str(text), groups=groups, hint=hint, **common)
    if f.type == "date":
        return Input(kind="date", value=str(text), hint=hint, **common)
    if f.type == "int":
        return Input(kind="number", value=str(text), hint=hint, **common)
    if (f.length or 0) >= 500:
        return Input(
            kind="textarea", value=str(text), hint=hint, maxlength=f.length, wide=True, **common
        )
    return Input(kind="text", value=str(text), hint=hint, maxlength=f.length, **common)


def institution_inputs(
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    notes: Mapping[str, str],
    *,
    org_code: str,
) -> tuple[Input, dict[str, list[Input]]]:
    """The 机构注册 form: the setting type, then the chapter-5 items for each hospital."""
    tf = F.type_field()
    kind = input_for(
        tf,
        F.TYPE_FIELD,
        values.get(F.TYPE_FIELD, ""),
        error=errors.get(F.TYPE_FIELD, ""),
        note=notes.get(F.TYPE_FIELD, ""),
    )
    kind.hint = (
        "1：互联网医院是实体医院的第二名称，两者统一社会信用代码与执业许可证相同；"
        "2：依托实体医疗机构独立设置，互联网医院有自己的统一社会信用代码"
    )
    sections: dict[str, list[Input]] = {}
    for section in F.SECTIONS:
        given = values.get(section)
        section_values: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        items: list[Input] = []
        for f in F.institution_fields():
            name = f"{section}.{f.code}"
            fixed = section == "entity" and f.code == "organID"
            items.append(
                input_for(
                    f,
                    name,
                    org_code if fixed else section_values.get(f.code, ""),
                    error=errors.get(name, ""),
                    note=notes.get(name, ""),
                    readonly=fixed,
                )
            )
        sections[section] = items
    return kind, sections


def record_inputs(
    roster: F.Roster, values: Mapping[str, Any], errors: Mapping[str, str]
) -> list[Input]:
    """A department or doctor form: every field of the dataset but the common header."""
    out: list[Input] = []
    for f in roster.fields:
        item = input_for(f, f.code, values.get(f.code, ""), error=errors.get(f.code, ""))
        item.required = roster.required(f)
        if f.code in roster.derived:
            item.hint = "留空则按代码表自动填写"
        elif roster.department_ref and f.code == roster.department_ref[1]:
            item.hint = "留空则按所在院内科室编码自动填写"
        out.append(item)
    return out
