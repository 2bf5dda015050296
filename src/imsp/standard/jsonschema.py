"""JSON Schema (draft 2020-12) of each dataset's upload body, generated from the definitions.

The schema is published with the interface spec so hospitals can validate offline with any JSON
Schema library; :func:`format_checker` gives Python's ``jsonschema`` the custom formats, so the
schema plus that checker accept and reject the same records as :class:`~imsp.standard.validate.
Validator` — except for what JSON Schema cannot say, listed in :data:`NOT_EXPRESSIBLE` and marked
in the schema with ``x-imsp-*`` annotations.

Shape (数据标准 V1.0 §报文格式): the body is one record or a non-empty array of records;
``$defs/record`` requires every node (all nodes must exist), optional nodes also accept ``null``
and blank strings, conditional requirements are ``if``/``then``.

``jsonschema`` itself is imported lazily (only :func:`format_checker` needs it), so the hospital
SDK can generate schemas without installing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from imsp.standard import checks
from imsp.standard.model import (
    CodeTable,
    Condition,
    Dataset,
    Field,
    Standard,
    load_standard,
)
from imsp.standard.rules import RESIDENT_ID_CARD

if TYPE_CHECKING:
    from jsonschema import FormatChecker

__all__ = [
    "CUSTOM_FORMATS",
    "ENUM_LIMIT",
    "MAX_PRECISION",
    "NOT_EXPRESSIBLE",
    "code_table_json",
    "dataset_schema",
    "format_checker",
]

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
#: Code tables with at most this many codes (aliases included) are inlined as ``enum``; larger
#: ones (icd10, icd10_tcm, …) are referred to by the format ``code:<table>``.
ENUM_LIMIT: Final = 500

#: Format names used by the generated schemas → Chinese description for the published spec.
CUSTOM_FORMATS: Final[Mapping[str, str]] = {
    "date": "日期 yyyy-MM-dd，须为真实日历日期，不早于 1900-01-01（JSON Schema 标准格式 date）",
    "imsp-datetime": "日期时间 yyyy-MM-dd HH:mm:ss（北京时间），须为真实日历日期与时刻，不早于 1900-01-01",
    "decimal(p,s)": "数值（JSON 数字或数字字符串，如 12.30）：整数部分不超过 p−s 位，小数不超过 s 位",
    "gb11643-idcard": "18 位居民身份证号码：出生日期有效，末位校验码符合 GB 11643-1999（X 大写）",
    "gb32100-uscc": "18 位统一社会信用代码：字符集不含 I、O、Z、S、V，末位校验码符合 GB 32100-2015",
    "cn-mobile": "11 位手机号码 1[3-9]xxxxxxxxx",
    "cn-phone": "手机号码，或带区号的固定电话 0xx(x)-xxxxxxx(x)，可带 -分机号",
    "cn-postcode": "6 位邮政编码",
    "http-url": "以 http:// 或 https:// 开头的网址",
    "sha256-hex": "64 位十六进制 SHA-256 摘要",
    "workdate": "出诊时段 yyyy-MM-dd HH:mm-HH:mm，开始早于结束",
    "code:<表名>": "取值为代码表 <表名> 中的代码（或其别名）；用于代码数较多的大表",
    "codes:<表名>": "以 | 连接的多个代码，每一项都在代码表 <表名> 中",
}

#: What the validator checks but JSON Schema cannot express (printed in the published spec).
NOT_EXPRESSIBLE: Final[Mapping[str, str]] = {
    "order": "时间先后（order 规则）：JSON Schema 不能比较两个节点的值",
    "sum": "金额合计（sum 规则）：不能对数组元素求和",
    "product": "乘积（product 规则）：不能做算术",
    "pair": "多值个数对应（pair 规则）：不能数 | 分隔的项数并比较",
    "not_equal": "两项不相同（not_equal 规则）：不能比较两个节点的值",
    "idcard_birthday_sex": "身份证号码与出生日期、性别一致（idcard 规则后半部分）",
    "numeric_string_condition": "以数字字符串给出的数值参与条件比较（lt/le/gt/ge）",
    "decimal_string_range": "以数字字符串给出的 decimal 的 min/max 范围",
    "integer_literal": "int 节点写成 3.0：JSON Schema 的 integer 接受，平台只接受整数字面量",
    "code_system": "诊断编码按编码体系节点（diagCodeType）选择代码表：Schema 只标注 x-imsp-code-system",
}

_FORMAT_NAMES: Final[Mapping[str, str]] = {
    "idcard": "gb11643-idcard",
    "uscc": "gb32100-uscc",
    "mobile": "cn-mobile",
    "phone": "cn-phone",
    "postcode": "cn-postcode",
    "url": "http-url",
    "sha256": "sha256-hex",
    "workdate": "workdate",
}
_FORMAT_FUNCS: Final[Mapping[str, Callable[[str], bool]]] = {
    "date": checks.is_date,
    "imsp-datetime": checks.is_datetime,
    "gb11643-idcard": checks.is_idcard,
    "gb32100-uscc": checks.is_uscc,
    "cn-mobile": checks.is_mobile,
    "cn-phone": checks.is_phone,
    "cn-postcode": checks.is_postcode,
    "http-url": checks.is_url,
    "sha256-hex": checks.is_sha256,
    "workdate": checks.is_workdate,
}

# An empty value (数据标准 V1.0 §通用约定): null or a blank string. Python's and ECMA's \s agree
# with str.isspace() on every character that matters here.
_BLANK: Final[dict[str, Any]] = {"type": "string", "pattern": "^\\s*$"}
_EMPTY_SCALAR: Final[dict[str, Any]] = {"anyOf": [{"type": "null"}, _BLANK]}
# Empty for conditions and rules: also [] and {}.
_EMPTY_ANY: Final[dict[str, Any]] = {
    "anyOf": [
        {"type": "null"},
        _BLANK,
        {"type": "array", "maxItems": 0},
        {"type": "object", "maxProperties": 0},
    ]
}
#: decimal(p,s) formats are registered for every 0 ≤ s ≤ p ≤ this (PostgreSQL numeric's usual cap).
MAX_PRECISION: Final = 38
_DECIMAL_PATTERN: Final = "^-?[0-9]+(\\.[0-9]+)?$"
_MULTI_PATTERN: Final = "^[^|]+(\\|[^|]+)*$"
#: Years from checks.EARLIEST_YEAR (1900) on, for JSON Schema tools that do not know our formats.
_FROM_1900: Final = "^(19|[2-9][0-9])[0-9]{2}-"


def dataset_schema(
    dataset: str | Dataset, standard: Standard | None = None, *, max_items: int | None = None
) -> dict[str, Any]:
    """The JSON Schema of one upload body: a record, or an array of 1..``max_items`` records."""
    std = standard if standard is not None else load_standard()
    ds = std.dataset(dataset) if isinstance(dataset, str) else dataset
    batch: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/record"}}
    if max_items is not None:
        batch["maxItems"] = max_items
    return {
        "$schema": DRAFT,
        "$id": f"urn:imsp:standard:{std.version}:{ds.code}",
        "title": f"{ds.name}（{ds.path}）",
        "description": ds.description,
        "x-imsp-dataset": ds.code,
        "x-imsp-key": list(ds.key),
        "oneOf": [{"$ref": "#/$defs/record"}, batch],
        "$defs": {"record": _Builder(ds, std.tables).record()},
    }


class _Builder:
    def __init__(self, ds: Dataset, tables: Mapping[str, CodeTable]) -> None:
        self.ds = ds
        self.tables = tables

    def record(self) -> dict[str, Any]:
        self.root_all_of: list[dict[str, Any]] = []
        schema = self.node(self.ds.fields, ())
        schema["title"] = self.ds.name
        rules_meta: list[dict[str, Any]] = []
        all_of: list[dict[str, Any]] = schema.setdefault("allOf", [])
        all_of.extend(self.root_all_of)
        for r in self.ds.rules:
            expressed = self.rule(r.kind, r.params, all_of)
            entry: dict[str, Any] = {"kind": r.kind, **dict(r.params), "expressed": expressed}
            if r.desc:
                entry["desc"] = r.desc
            if r.code:
                entry["code"] = r.code
            rules_meta.append(entry)
        if not all_of:
            del schema["allOf"]
        if rules_meta:
            schema["x-imsp-rules"] = rules_meta
        return schema

    def node(self, fields: tuple[Field, ...], steps: tuple[Field, ...]) -> dict[str, Any]:
        """The object schema of ``fields``, reached from the record root through ``steps``
        (list and object fields)."""
        props: dict[str, Any] = {}
        all_of: list[dict[str, Any]] = []
        for f in fields:
            strict = self.strict(f, steps)
            if f.required == "Y":
                props[f.code] = strict
            else:
                props[f.code] = {"anyOf": [*self.empty(f)["anyOf"], strict]}
            if f.required == "C":
                then: dict[str, Any] = {"properties": {f.code: strict}}
                local = all(_resolve(fields, c.field) is not None for c in f.when)
                if local or not steps:
                    conds = [self.condition(c, fields) for c in f.when]
                    all_of.append({"if": {"allOf": conds}, "then": then})
                else:
                    # The condition names a root field: state it at the root and descend.
                    for step in reversed(steps):
                        inner = {"items": then} if step.type == "list" else then
                        then = {"properties": {step.code: inner}}
                    conds = [self.condition(c, self.ds.fields) for c in f.when]
                    self.root_all_of.append({"if": {"allOf": conds}, "then": then})
            _annotate(props[f.code], f)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": [f.code for f in fields if not f.since],
            "minProperties": 1,
            "x-imsp-unknown-nodes": "未定义的节点不存储，回执中以警告提示",
        }
        if all_of:
            schema["allOf"] = all_of
        return schema

    def empty(self, f: Field) -> dict[str, Any]:
        if f.type == "list":
            return {"anyOf": [*_EMPTY_SCALAR["anyOf"], {"type": "array", "maxItems": 0}]}
        if f.type == "object":
            return {"anyOf": [*_EMPTY_SCALAR["anyOf"], {"type": "object", "maxProperties": 0}]}
        return _EMPTY_SCALAR

    def strict(self, f: Field, steps: tuple[Field, ...]) -> dict[str, Any]:
        """The schema of a non-empty, valid value of ``f``."""
        if f.type == "string":
            s: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "\\S"}
            if f.length is not None:
                s["maxLength"] = f.length
            if f.system is not None:
                # The table depends on the code-system node; codes of systems without a table
                # are accepted with a warning, so the schema only annotates.
                s["x-imsp-code-system"] = f.system
                s["x-imsp-table"] = f.table
            elif f.table is not None:
                s.update(self.table(self.tables[f.table], f.multi))
            if f.format is not None and not self._rule_governed(f):
                s["format"] = _FORMAT_NAMES[f.format]
            return s
        if f.type == "int":
            s = {"type": "integer"}
            _bounds(s, f)
            return s
        if f.type == "decimal":
            s = {
                "type": ["number", "string"],
                "pattern": _DECIMAL_PATTERN,
                "format": f"decimal({f.length},{f.scale or 0})",
            }
            _bounds(s, f)
            return s
        if f.type == "date":
            return {"type": "string", "format": "date", "pattern": _FROM_1900}
        if f.type == "datetime":
            return {"type": "string", "format": "imsp-datetime", "pattern": _FROM_1900}
        sub = self.node(f.fields, (*steps, f))
        if f.type == "object":
            return sub
        s = {"type": "array", "items": sub, "minItems": max(f.min_items or 0, 1)}
        return s

    def table(self, t: CodeTable, multi: bool) -> dict[str, Any]:
        accepted = sorted(t.codes | set(t.aliases) | set(t.retired))
        if multi:
            return {"pattern": _MULTI_PATTERN, "format": f"codes:{t.name}", "x-imsp-table": t.name}
        if len(accepted) <= ENUM_LIMIT:
            return {"enum": accepted, "x-imsp-table": t.name}
        return {"format": f"code:{t.name}", "x-imsp-table": t.name}

    def _rule_governed(self, f: Field) -> bool:
        return f.format == "idcard" and any(
            r.kind == "idcard" and r.params.get("id") == f.code for r in self.ds.rules
        )

    def condition(self, c: Condition, fields: tuple[Field, ...]) -> dict[str, Any]:
        """A ``when`` clause as a schema over the object holding the field (validate.py's rules:
        in/not_in/lt… hold only for non-empty values; present=false also holds when absent)."""
        ref = _resolve(fields, c.field) or _resolve(self.ds.fields, c.field)
        table = self.tables.get(ref.table) if ref is not None and ref.table else None
        value: dict[str, Any]
        if c.op == "present":
            value = {"not": _EMPTY_ANY} if c.value else _EMPTY_ANY
            return _at(c.field, value, required=bool(c.value))
        if c.op in ("in", "not_in"):
            raw = c.value if isinstance(c.value, list) else [c.value]
            accepted = _with_aliases([str(x) for x in raw], table)
            enum: list[Any] = sorted(accepted)
            enum += [int(x) for x in enum if x.isdigit() and str(int(x)) == x]
            if c.op == "in":
                value = {"enum": enum}
            else:
                value = {
                    "type": ["string", "integer"],
                    "not": {"anyOf": [_EMPTY_ANY, {"enum": enum}]},
                }
            return _at(c.field, value, required=True)
        key = {"lt": "exclusiveMaximum", "le": "maximum", "gt": "exclusiveMinimum", "ge": "minimum"}
        return _at(c.field, {"type": "number", key[c.op]: c.value}, required=True)

    def rule(self, kind: str, p: Mapping[str, Any], all_of: list[dict[str, Any]]) -> bool:
        """Add what JSON Schema can say of a rule to ``all_of``; True if it says all of it."""
        if kind == "one_of":
            all_of.append(
                {"anyOf": [_at(x, {"not": _EMPTY_ANY}, required=True) for x in p["fields"]]}
            )
            return True
        if kind == "idcard":
            idcard = {"type": "string", "format": "gb11643-idcard"}
            id_schema = {"anyOf": [*_EMPTY_ANY["anyOf"], idcard]}
            check = _at(p["id"], id_schema, required=False)
            if p.get("type"):
                ref = _resolve(self.ds.fields, p["type"])
                table = self.tables.get(ref.table) if ref is not None and ref.table else None
                ids = sorted(_with_aliases([RESIDENT_ID_CARD], table))
                all_of.append({"if": _at(p["type"], {"enum": ids}, required=True), "then": check})
            else:
                all_of.append(check)
            return not (p.get("birthday") or p.get("sex"))
        return False


def _resolve(fields: tuple[Field, ...], path: str) -> Field | None:
    found: Field | None = None
    for part in path.split("."):
        found = next((f for f in fields if f.code == part), None)
        if found is None:
            return None
        fields = found.fields
    return found


def _with_aliases(codes: list[str], table: CodeTable | None) -> set[str]:
    out = set(codes)
    if table is not None:
        out |= {a for a, canon in table.aliases.items() if canon in out}
    return out


def _at(path: str, value: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """``value`` applied at a dotted ``path`` inside an object."""
    schema = value
    for part in reversed(path.split(".")):
        schema = {"properties": {part: schema}}
        if required:
            schema["required"] = [part]
    return schema


def _bounds(s: dict[str, Any], f: Field) -> None:
    if f.min is not None:
        s["minimum"] = f.min
    if f.max is not None:
        s["maximum"] = f.max


def _annotate(s: dict[str, Any], f: Field) -> None:
    s["title"] = f.name
    if f.desc:
        s["description"] = f.desc
    if f.required == "C" and f.condition:
        s["x-imsp-condition"] = f.condition
    if f.example is not None:
        s["examples"] = [f.example]
    s["x-imsp-required"] = f.required
    s["x-imsp-type"] = f.type_label


# --------------------------------------------------------------------------- formats


def _for_strings(fn: Callable[[str], bool]) -> Callable[[object], bool]:
    """Formats constrain strings only (JSON Schema §7.1); other types pass."""
    return lambda v: not isinstance(v, str) or fn(v)


def _decimal_format(precision: int, scale: int) -> Callable[[object], bool]:
    int_max = precision - scale

    def ok(v: object) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            return True
        if isinstance(v, str):
            if not checks.is_decimal_string(v):
                return False
            text = v
        else:
            text = repr(v) if isinstance(v, float) else str(v)
        got = checks.decimal_digits(text)
        return got is not None and got[0] <= int_max and got[1] <= scale

    return ok


def _code_format(t: CodeTable, multi: bool) -> Callable[[object], bool]:
    accepted = t.codes | frozenset(t.aliases) | frozenset(t.retired)
    if multi:
        return lambda v: not isinstance(v, str) or accepted.issuperset(v.split("|"))
    return lambda v: not isinstance(v, str) or v in accepted


def format_checker(standard: Standard | None = None) -> FormatChecker:
    """A ``jsonschema.FormatChecker`` asserting exactly the formats the schemas use.

    Use with ``Draft202012Validator(schema, format_checker=format_checker())``; formats are only
    annotations in 2020-12 unless a checker is given.
    """
    from jsonschema import FormatChecker

    std = standard if standard is not None else load_standard()
    fc = FormatChecker(formats=())
    for name, fn in _FORMAT_FUNCS.items():
        fc.checks(name)(_for_strings(fn))
    for p in range(1, MAX_PRECISION + 1):
        for s in range(p + 1):
            fc.checks(f"decimal({p},{s})")(_decimal_format(p, s))
    for name, t in std.tables.items():
        fc.checks(f"code:{name}")(_code_format(t, multi=False))
        fc.checks(f"codes:{name}")(_code_format(t, multi=True))
    return fc


def code_table_json(table: CodeTable) -> dict[str, Any]:
    """A code table as published JSON (``GET`` by the SDK, printed in the spec's appendix)."""
    return {
        "name": table.name,
        "title": table.title,
        "source": table.source,
        "note": table.note,
        "codes": [
            {"code": e.code, "name": e.name, "aliases": list(e.aliases), "note": e.note}
            | ({"retired": e.retired} if e.retired else {})
            for e in table.entries
        ],
    }
