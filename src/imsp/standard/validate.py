"""The one validator of the Data Standard: every record of every dataset goes through it.

A :class:`Validator` is compiled once per dataset from the definitions (``Dataset``/``Field``/
``Rule``) into per-field checker closures with their parameters bound, and each JSON object level
into one Python function generated from those definitions (:func:`_generate`: every field's
happy-path test inline, its checker called only when that test fails), so checking a record never
re-reads the definitions. It collects *every* problem of a record — never stops at
the first — as :class:`Issue` objects with a path (``items[2].amount``), a stable code from
:data:`ISSUES` and a Chinese message naming the field and the bad value.

Input typing (数据标准 V1.0 §通用约定, decided here and printed in the published spec):

* ``string``, ``date``, ``datetime`` fields and code fields accept JSON strings only; a number sent
  for a string is a type error (codes such as sex ``"1"`` are strings).
* ``int`` fields accept JSON integers only (not ``true``/``false``, not ``"3"``, not ``3.0``).
* ``decimal`` fields accept a JSON number or a plain decimal string (``"12.30"``); the scale is
  measured on what was sent, so ``12.345`` in a ``decimal(10,2)`` field is an error.
* Every defined node must exist (missing node ⇒ ``node_missing``, also for optional fields);
  optional nodes may be ``null`` or ``""``; ``null``, ``""`` and blank strings count as empty.
* Unknown nodes are dropped from the stored record and reported as warnings; code aliases (e.g.
  Tianjin's certificate type ``1``) are replaced by the canonical code with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from imsp.standard import checks
from imsp.standard.issues import (
    ISSUES,
    MISSING,
    Issue,
    IssueKind,
    Verdict,
    as_number,
    get_path,
    is_empty,
    show,
)
from imsp.standard.model import (
    CodeEntry,
    CodeTable,
    Condition,
    Dataset,
    Field,
    Standard,
    StandardDataError,
    load_standard,
)
from imsp.standard.rules import HappyPath, compile_happy_path, compile_rules, error_paths

__all__ = [
    "ISSUES",
    "Issue",
    "IssueKind",
    "Validator",
    "Verdict",
    "validator_for",
]

# --------------------------------------------------------------------------- compiled pieces

_SAME: Final[Any] = object()  # checker result: keep the value as given
_TYPE_LABEL: Final = {
    "string": "字符串",
    "int": "整数",
    "decimal": "数值（数字或数字字符串）",
    "date": "日期字符串 yyyy-MM-dd",
    "datetime": "日期时间字符串 yyyy-MM-dd HH:mm:ss",
    "list": "数组",
    "object": "对象",
}
_FORMATS: Final[Mapping[str, tuple[Callable[[str], bool], str]]] = {
    "idcard": (checks.is_idcard, "不是有效的居民身份证号码（GB 11643 校验失败）"),
    "uscc": (checks.is_uscc, "不是有效的统一社会信用代码（GB 32100 校验失败）"),
    "mobile": (checks.is_mobile, "不是有效的 11 位手机号码"),
    "phone": (checks.is_phone, "不是有效的手机号码或带区号的固定电话"),
    "postcode": (checks.is_postcode, "不是 6 位邮政编码"),
    "url": (checks.is_url, "不是有效的 http(s) 网址"),
    "sha256": (checks.is_sha256, "不是 64 位十六进制 SHA-256 摘要"),
    "workdate": (checks.is_workdate, "不是 yyyy-MM-dd HH:mm-HH:mm 时段"),
}


def _blank(v: Any) -> bool:
    """A field-level empty value: ``null`` or a blank string (``[]``/``{}`` only for lists/objects)."""
    return v is None or (type(v) is str and (not v or v.isspace()))


_Obj = dict[str, Any]
_Errs = list[Issue]
_Cond = Callable[[_Obj, _Obj], bool]
_Check = Callable[[Any, _Obj, _Obj, str, _Errs, _Errs], Any]


class _Meta:
    """A field's identity and emptiness handling, shared by its checker closure."""

    __slots__ = ("code", "cond", "condition", "name", "req", "since")

    def __init__(self, f: Field, cond: _Cond | None) -> None:
        self.code = f.code
        self.since = f.since
        self.name = f.name
        self.req = f.required
        self.cond = cond
        self.condition = f.condition

    def issue(self, prefix: str, code: str, detail: str, value: Any = MISSING) -> Issue:
        path = prefix + self.code
        msg = f"{self.name}({path}) {detail}"
        if value is not MISSING:
            msg += f"：{show(value)}"
        return Issue(path, code, msg, "error")

    def warn(self, prefix: str, code: str, detail: str) -> Issue:
        path = prefix + self.code
        return Issue(path, code, f"{self.name}({path}) {detail}", "warning")

    def empty(
        self, node: dict[str, Any], root: dict[str, Any], prefix: str, errs: list[Issue]
    ) -> Any:
        req = self.req
        if req == "Y":
            errs.append(self.issue(prefix, "required", "为必填项，不能为空"))
        elif req == "C" and self.cond is not None and self.cond(node, root):
            errs.append(
                self.issue(
                    prefix, "conditional_required", f"为条件必填项（{self.condition}），不能为空"
                )
            )
        return _SAME

    def bad_type(self, type_: str, prefix: str, errs: list[Issue], v: Any) -> Any:
        errs.append(self.issue(prefix, "type", f"类型错误，应为{_TYPE_LABEL[type_]}", v))
        return _SAME

    def not_text(
        self, v: Any, node: _Obj, root: _Obj, prefix: str, errs: list[Issue], limit: int
    ) -> bool:
        """What every string checker does first: True when ``v`` is empty (an error if the
        field is required) or not a string (a type error) — nothing more to check; a string
        longer than ``limit`` is an error, and the checker goes on with it."""
        if type(v) is not str:
            if v is None:
                self.empty(node, root, prefix, errs)
            else:
                self.bad_type("string", prefix, errs, v)
            return True
        if not v or (v[0].isspace() and not v.strip()):
            self.empty(node, root, prefix, errs)
            return True
        if len(v) > limit:
            errs.append(self.issue(prefix, "length", f"长度超过 {limit} 个字符（{len(v)}）", v))
        return False


def _string_check(f: Field, m: _Meta, table: CodeTable | None, fmt: str | None) -> _Check:
    limit = f.length if f.length is not None else 1 << 30
    codes = table.codes if table is not None else None
    aliases = table.aliases if table is not None else {}
    retired = table.retired if table is not None else {}
    title = table.title if table is not None else ""
    multi = f.multi
    fmt_fn, fmt_msg = _FORMATS[fmt] if fmt is not None else (None, "")

    def codes_multi(v: str, prefix: str, errs: list[Issue], warns: list[Issue]) -> Any:
        # 数据标准 V1.0 §通用约定: 多值代码以 | 连接, 每一项都须在值域内.
        parts = v.split("|")
        assert codes is not None
        if codes.issuperset(parts):
            return _SAME
        out: list[str] = []
        changed = False
        for part in parts:
            if part in codes:
                out.append(part)
            elif not part:
                errs.append(m.issue(prefix, "multi_value", "多值代码中有空项（以 | 分隔）", v))
                out.append(part)
            elif part in aliases:
                canon = aliases[part]
                warns.append(m.warn(prefix, "code_alias", f"代码 {part} 已按别名转换为 {canon}"))
                out.append(canon)
                changed = True
            elif part in retired:
                warns.append(m.warn(prefix, "code_retired", _retired_detail(retired[part], title)))
                out.append(part)
            else:
                errs.append(m.issue(prefix, "value_set", f"代码不在《{title}》值域内", part))
                out.append(part)
        return "|".join(out) if changed else _SAME

    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        if m.not_text(v, node, root, prefix, errs, limit):
            return _SAME
        if fmt_fn is not None and not fmt_fn(v):
            errs.append(m.issue(prefix, fmt or "", fmt_msg, v))
        if codes is None or v in codes:
            return _SAME
        if multi:
            return codes_multi(v, prefix, errs, warns)
        canon = aliases.get(v)
        if canon is None:
            old = retired.get(v)
            if old is not None:
                # 数据标准 V1.1: 已撤销的代码仍见于历史记录，接受并警告。
                warns.append(m.warn(prefix, "code_retired", _retired_detail(old, title)))
                return _SAME
            errs.append(m.issue(prefix, "value_set", f"代码不在《{title}》值域内", v))
            return _SAME
        warns.append(m.warn(prefix, "code_alias", f"代码 {v} 已按别名转换为 {canon}"))
        return canon

    return check


def _is_who_category(code: str) -> bool:
    """A WHO ICD-10 3-character category (``I10``) or 4-character subcategory (``J06.9``)."""
    n = len(code)
    return (
        (n == 3 or (n == 5 and code[3] == "." and code[4].isdigit()))
        and "A" <= code[0] <= "Z"
        and code[1:3].isdigit()
        and code.isascii()
    )


def _system_check(
    f: Field,
    m: _Meta,
    selector: tuple[bool, tuple[str, ...]],
    sel_table: CodeTable,
    tables: Mapping[str, CodeTable],
) -> _Check:
    """A code whose table is chosen by a code-system node (数据标准 V1.1 §诊断编码): the linked
    table checks it exactly; a WHO ICD-10 category, or a system without a table, is accepted with
    a warning naming the system — never rejected (valid diagnoses coded elsewhere are data)."""
    limit = f.length if f.length is not None else 1 << 30
    local, parts_path = selector
    default = next(iter(sel_table.links))
    multi = f.multi

    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        if m.not_text(v, node, root, prefix, errs, limit):
            return _SAME
        raw = get_path(node if local else root, parts_path)
        system = sel_table.canonical(raw) if type(raw) is str else None
        system = system or default
        system_name = sel_table.names[system]
        target = sel_table.links.get(system)
        parts = v.split("|") if multi else [v]
        if target is None:
            if any(not p for p in parts):
                errs.append(m.issue(prefix, "multi_value", "多值代码中有空项（以 | 分隔）", v))
            detail = f"编码体系为“{system_name}”，平台无该体系代码表，编码未逐码校验：{show(v)}"
            warns.append(m.warn(prefix, "diag_unchecked", detail))
            return _SAME
        table = tables[target]
        for part in parts:
            if part in table.codes:
                continue
            if not part:
                errs.append(m.issue(prefix, "multi_value", "多值代码中有空项（以 | 分隔）", v))
            elif _is_who_category(part):
                detail = (
                    f"{part} 是 WHO ICD-10（世界卫生组织版）类目，不是《{table.title}》中的编码；"
                    "已接受，未逐码校验"
                )
                warns.append(m.warn(prefix, "diag_who_category", detail))
            else:
                errs.append(m.issue(prefix, "value_set", f"代码不在《{table.title}》值域内", part))
        return _SAME

    return check


def _systems(
    sel_table: CodeTable, tables: Mapping[str, CodeTable]
) -> tuple[dict[str, frozenset[str] | None], frozenset[str] | None]:
    """For the happy-path test of a code chosen by a code-system node (:func:`_system_check`):
    each code or alias of the system node → the codes of the table it links to (None: no table,
    the checker warns), and the same for the default system (an empty, unknown or non-string
    system node)."""

    def linked(system: str) -> frozenset[str] | None:
        target = sel_table.links.get(system)
        return tables[target].codes if target is not None else None

    default = next(iter(sel_table.links))
    known = sel_table.codes | sel_table.aliases.keys()
    return {c: linked(sel_table.canonical(c) or default) for c in known}, linked(default)


def _retired_detail(entry: CodeEntry, title: str) -> str:
    return f"代码 {entry.code}（{entry.name}）是《{title}》中已撤销的代码：{entry.note}"


def _int_check(f: Field, m: _Meta) -> _Check:
    lo, hi = f.min, f.max

    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        if type(v) is int:
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                errs.append(m.issue(prefix, "range", f"超出范围 [{_num(lo)}, {_num(hi)}]", v))
            return _SAME
        if _blank(v):
            return m.empty(node, root, prefix, errs)
        return m.bad_type("int", prefix, errs, v)

    return check


def _num(x: float | None) -> str:
    if x is None:
        return "…"
    return str(int(x)) if float(x).is_integer() else str(x)


def _decimal_check(f: Field, m: _Meta) -> _Check:
    scale = f.scale or 0
    int_max = (f.length or 38) - scale
    lo, hi = f.min, f.max

    def digits(v: Any, text: str, prefix: str, errs: list[Issue]) -> None:
        dot = text.find(".")
        if "e" not in text:
            neg = 1 if text[0] == "-" else 0
            n_int = (dot if dot >= 0 else len(text)) - neg
            n_frac = len(text) - dot - 1 if dot >= 0 else 0
            if n_int <= int_max and n_frac <= scale:
                return  # fast path: the common, clearly valid case
        got = checks.decimal_digits(text)
        assert got is not None
        if got[0] > int_max:
            errs.append(m.issue(prefix, "precision", f"整数位超过 {int_max} 位", v))
        if got[1] > scale:
            errs.append(m.issue(prefix, "scale", f"小数位超过 {scale} 位", v))

    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        t = type(v)
        if t is float:
            if v != v or v in (float("inf"), float("-inf")):
                return m.bad_type("decimal", prefix, errs, v)
            digits(v, repr(v), prefix, errs)
        elif t is int:
            digits(v, str(v), prefix, errs)
        elif t is str:
            if not v or (v[0].isspace() and not v.strip()):
                return m.empty(node, root, prefix, errs)
            if not checks.is_decimal_string(v):
                return m.bad_type("decimal", prefix, errs, v)
            digits(v, v, prefix, errs)
        elif v is None:
            return m.empty(node, root, prefix, errs)
        else:
            return m.bad_type("decimal", prefix, errs, v)
        if lo is not None or hi is not None:
            x = float(v)
            if (lo is not None and x < lo) or (hi is not None and x > hi):
                errs.append(m.issue(prefix, "range", f"超出范围 [{_num(lo)}, {_num(hi)}]", v))
        return _SAME

    return check


_EARLY: Final = f"早于 {checks.EARLIEST_YEAR}-01-01，超出数据标准允许的日期范围"


def _temporal_check(f: Field, m: _Meta) -> _Check:
    is_ok = checks.is_date if f.type == "date" else checks.is_datetime
    code = f.type
    detail = (
        "不是有效日期（yyyy-MM-dd）"
        if code == "date"
        else "不是有效日期时间（yyyy-MM-dd HH:mm:ss）"
    )

    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        if type(v) is not str:
            if v is None:
                return m.empty(node, root, prefix, errs)
            return m.bad_type(code, prefix, errs, v)
        if is_ok(v):
            return _SAME
        if not v or v.isspace():
            return m.empty(node, root, prefix, errs)
        if checks.is_early(v):
            errs.append(m.issue(prefix, "date_range", _EARLY, v))
            return _SAME
        errs.append(m.issue(prefix, code, detail, v))
        return _SAME

    return check


def _list_check(f: Field, m: _Meta, sub: _Node) -> _Check:
    min_items = f.min_items or 0

    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        if type(v) is not list:
            if _blank(v):
                return m.empty(node, root, prefix, errs)
            return m.bad_type("list", prefix, errs, v)
        if not v:
            if m.req == "Y" and min_items:
                errs.append(m.issue(prefix, "min_items", f"至少应有 {min_items} 条明细，实际 0 条"))
                return _SAME
            return m.empty(node, root, prefix, errs)
        if len(v) < min_items:
            errs.append(
                m.issue(prefix, "min_items", f"至少应有 {min_items} 条明细，实际 {len(v)} 条")
            )
        base = prefix + m.code
        out: list[Any] | None = None
        for i, el in enumerate(v):
            path = f"{base}[{i}]"
            if type(el) is not dict:
                errs.append(Issue(path, "not_object", f"{m.name}({path}) 应为 JSON 对象", "error"))
                continue
            new = sub.run(el, root, path + ".", errs, warns)
            if new is not None:
                if out is None:
                    out = list(v)
                out[i] = new
        return _SAME if out is None else out

    return check


def _object_check(f: Field, m: _Meta, sub: _Node) -> _Check:
    def check(v: Any, node: _Obj, root: _Obj, prefix: str, errs: _Errs, warns: _Errs) -> Any:
        if type(v) is not dict:
            if _blank(v):
                return m.empty(node, root, prefix, errs)
            return m.bad_type("object", prefix, errs, v)
        if not v:
            return m.empty(node, root, prefix, errs)
        new = sub.run(v, root, prefix + m.code + ".", errs, warns)
        return _SAME if new is None else new

    return check


_Entry = tuple[int, str, _Check, _Meta]  # (position, code, checker, meta)


class _Node:
    """The compiled fields of one JSON object level (the record, a list element, an object).

    ``run`` checks a node: by default the function :func:`_generate` made from these entries.
    :meth:`interpret` is the reference it is tested against: fields grouped by the shape of their
    happy-path test — plain strings, single codes, dates, datetimes, integers, formatted strings —
    each group a tight loop doing only that inline test. A field that fails it (or has no such
    test here: decimals, codes chosen by a code-system node, lists, objects) goes to its full
    checker closure, which finds and words the problem. Issues come out in message order because
    the pending fields are checked by position.
    """

    __slots__ = (
        "codes",
        "count",
        "dates",
        "datetimes",
        "formatted",
        "ints",
        "items",
        "members",
        "others",
        "run",
        "strings",
    )

    def __init__(self, items: list[tuple[_Entry, tuple[Any, ...]]]) -> None:
        self.items = tuple(items)
        #: What checks a node: :meth:`interpret`, or the function generated from the same
        #: entries by :func:`_generate` (``Validator(..., generated=True)``, the default).
        self.run: Callable[[_Obj, _Obj, str, _Errs, _Errs], _Obj | None] = self.interpret
        self.codes = frozenset(e[1] for e, _ in items)
        self.count = len(items)
        self.strings = tuple((e[1], fast[1], e) for e, fast in items if fast[0] == "str")
        self.members = tuple((e[1], fast[1], e) for e, fast in items if fast[0] == "code")
        self.formatted = tuple((e[1], fast[1], fast[2], e) for e, fast in items if fast[0] == "fmt")
        self.dates = tuple((e[1], e) for e, fast in items if fast[0] == "date")
        self.datetimes = tuple((e[1], e) for e, fast in items if fast[0] == "datetime")
        self.ints = tuple((e[1], fast[1], fast[2], e) for e, fast in items if fast[0] == "int")
        self.others = tuple((e[1], e) for e, fast in items if fast[0] in ("", "dec", "sys"))

    def interpret(
        self,
        node: dict[str, Any],
        root: dict[str, Any],
        prefix: str,
        errs: list[Issue],
        warns: list[Issue],
    ) -> dict[str, Any] | None:
        """Check ``node``; return the normalised node if it differs from the input, else None."""
        get = node.get
        pending: list[tuple[_Entry, Any]] = []
        add = pending.append
        for code, n, e in self.strings:
            v = get(code, MISSING)
            if not (type(v) is str and 0 < len(v) <= n and not v.isspace()):
                add((e, v))
        for code, codes, e in self.members:
            v = get(code, MISSING)
            if not (type(v) is str and v in codes):
                add((e, v))
        for code, n, ok, e in self.formatted:
            v = get(code, MISSING)
            if not (type(v) is str and len(v) <= n and ok(v)):
                add((e, v))
        is_date, is_datetime = checks.is_date, checks.is_datetime
        for code, e in self.dates:
            v = get(code, MISSING)
            if not (type(v) is str and is_date(v)):
                add((e, v))
        for code, e in self.datetimes:
            v = get(code, MISSING)
            if not (type(v) is str and is_datetime(v)):
                add((e, v))
        for code, lo, hi, e in self.ints:
            v = get(code, MISSING)
            if not (type(v) is int and lo <= v <= hi):
                add((e, v))
        failed = len(pending)
        for code, e in self.others:
            add((e, get(code, MISSING)))
        if failed:
            pending.sort(key=_position)
        repl: dict[str, Any] | None = None
        missing = 0
        for (_, code, check, meta), v in pending:
            if v is MISSING:
                if meta.since:
                    # 数据标准 V1.1 §兼容性: a node added in a minor version may be absent from
                    # records of senders still on the older version; it is then empty.
                    missing += 1
                    check(None, node, root, prefix, errs, warns)
                    continue
                # 数据标准 V1.0 §通用约定: 所有节点都必须存在 (optional ones may be null or "").
                errs.append(meta.issue(prefix, "node_missing", "节点缺失"))
                missing += 1
                continue
            r = check(v, node, root, prefix, errs, warns)
            if r is not _SAME:
                if repl is None:
                    repl = {}
                repl[code] = r
        if repl is not None or len(node) + missing != self.count:
            return self.tail(node, prefix, warns, missing, repl)
        return None

    def tail(
        self,
        node: dict[str, Any],
        prefix: str,
        warns: list[Issue],
        missing: int,
        repl: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """The end of checking ``node``: warn about keys that are not defined nodes and build
        the normalised node (defined nodes only, replacements applied) if it differs."""
        if len(node) + missing != self.count:  # some keys are not defined nodes
            codes = self.codes
            for k in node:
                if k not in codes:
                    path = prefix + str(k)
                    msg = f"{path} 未在数据标准中定义，未存储"
                    warns.append(Issue(path, "unknown_field", msg, "warning"))
            out = {k: v for k, v in node.items() if k in codes}
            if repl:
                out.update(repl)
            return out
        if repl:
            out = dict(node)
            out.update(repl)
            return out
        return None


def _position(p: tuple[_Entry, Any]) -> int:
    return p[0][0]


# --------------------------------------------------------------------------- generated code


def _slow(
    e: _Entry,
    v: Any,
    node: _Obj,
    root: _Obj,
    prefix: str,
    errs: _Errs,
    warns: _Errs,
    missing: int,
    repl: dict[str, Any] | None,
) -> tuple[int, dict[str, Any] | None]:
    """A field that failed its inline test (or has none), as :meth:`_Node.interpret` handles a
    pending field: the node is missing, or the field's full checker words the issue."""
    _, code, check, meta = e
    if v is MISSING:
        if meta.since:  # 数据标准 V1.1 §兼容性 (see _Node.interpret)
            check(None, node, root, prefix, errs, warns)
        else:
            errs.append(meta.issue(prefix, "node_missing", "节点缺失"))
        return missing + 1, repl
    r = check(v, node, root, prefix, errs, warns)
    if r is not _SAME:
        if repl is None:
            repl = {}
        repl[code] = r
    return missing, repl


_DIGIT: Final = "0123456789"
_MEMO_FORMATS: Final = {"idcard": checks.is_idcard, "uscc": checks.is_uscc}


def _fast_test(fast: tuple[Any, ...], k: int, ns: dict[str, Any]) -> str | None:
    """A Python expression over ``v`` that is true only if the field's full checker would accept
    ``v`` as it is (no issue, no replacement) — or None when the field has no inline test.

    Sound, not complete: a value it refuses goes to the full checker, which decides. Memo
    lookups (``checks``' bounded memos of dates, times, ID numbers) count only a remembered
    ``True``; a value not remembered yet goes to the full checker, which remembers it.
    """
    kind = fast[0]
    if kind == "str":
        n = fast[1]
        size = "v" if n >= 1 << 30 else f"0 < len(v) <= {n:d}"
        return f"type(v) is str and {size} and not v.isspace()"
    if kind == "code":
        ns[f"C{k}"] = fast[1]
        return f"type(v) is str and v in C{k}"
    if kind == "fmt":
        n, ok = fast[1], fast[2]
        if fast[3] in _MEMO_FORMATS:  # the memo's answer for an 18-character number
            ns[f"F{k}"] = checks.memo_of(_MEMO_FORMATS[fast[3]]).get
            return f"type(v) is str and len(v) <= {n:d} and F{k}(v) is True"
        ns[f"F{k}"] = ok
        return f"type(v) is str and len(v) <= {n:d} and F{k}(v)"
    if kind == "sys":  # the table named by the system node, as _system_check finds it
        n, local, selector, systems, default, multi = fast[1:]
        ns[f"Y{k}"], ns[f"D{k}"] = systems, default
        system = (
            f"(Y{k}.get(sv, D{k}) if type(sv := {'node' if local else 'root'}.get("
            f"{selector!r}, M)) is str else D{k})"
        )
        member = 'cs.issuperset(v.split("|"))' if multi else "v in cs"
        return f"type(v) is str and len(v) <= {n:d} and (cs := {system}) is not None and {member}"
    if kind == "date":
        return "type(v) is str and DATES(v) is True"
    if kind == "datetime":
        return (
            'type(v) is str and len(v) == 19 and v[10] == " " and v[16] == ":" '
            'and v[17] in "012345" and v[18] in DIGIT '
            "and DATES(v[:10]) is True and MINUTES(v[11:16]) is True"
        )
    if kind == "int":
        lo, hi = fast[1], fast[2]
        ns[f"L{k}"], ns[f"H{k}"] = lo, hi
        return f"type(v) is int and L{k} <= v <= H{k}"
    if kind == "dec":
        int_max, scale, lo, hi = fast[1:]
        ns[f"B{k}"] = 10**int_max  # |v| < B: at most int_max integer digits
        # a float as the checker reads it: repr without exponent, ≤ scale digits after "."
        test = (
            f"(type(v) is int and -B{k} < v < B{k} or type(v) is float and -B{k} < v < B{k} "
            f'and 0 < (d := (t := repr(v)).find(".")) and len(t) - d <= {scale + 1:d} '
            'and "e" not in t)'
        )
        if lo is not None or hi is not None:
            ns[f"L{k}"] = lo if lo is not None else float("-inf")
            ns[f"H{k}"] = hi if hi is not None else float("inf")
            test += f" and L{k} <= v <= H{k}"
        return test
    return None


def _empty_test(meta: _Meta, k: int, ns: dict[str, Any]) -> str | None:
    """An expression true when ``v`` is an empty value (``null`` or ``""``) the field accepts as
    it is: an optional field, or a conditional one whose condition does not hold (every full
    checker sends these two values to :meth:`_Meta.empty`)."""
    if meta.req == "N" or (meta.req == "C" and meta.cond is None):
        return 'v is None or v == ""'
    if meta.req == "C":
        ns[f"K{k}"] = meta.cond
        return f'(v is None or v == "") and not K{k}(node, root)'
    return None


def _generate(node: _Node, where: str) -> Callable[[_Obj, _Obj, str, _Errs, _Errs], _Obj | None]:
    """One function checking ``node``, generated from its compiled entries (so from the dataset's
    definitions, never written per dataset) and ``compile()``d once: each field's inline test
    in field order, then :func:`_slow` for a field that fails it, then :meth:`_Node.tail`.
    It gives what :meth:`_Node.interpret` gives — the same issues in the same order."""
    ns: dict[str, Any] = {
        "__builtins__": {
            "type": type,
            "len": len,
            "repr": repr,
            "str": str,
            "int": int,
            "float": float,
        },
        "M": MISSING,
        "slow": _slow,
        "tail": node.tail,
        "DATES": checks.memo_of(checks.is_date).get,
        "MINUTES": checks.memo_of(checks.is_time).get,
        "DIGIT": _DIGIT,
    }
    lines = [
        f"# generated from {where}",
        "def run(node, root, prefix, errs, warns):",
        "    get = node.get",
        "    missing = 0",
        "    repl = None",
    ]
    for k, (entry, fast) in enumerate(sorted(node.items, key=lambda item: item[0][0])):
        ns[f"E{k}"] = entry
        lines.append(f"    v = get({entry[1]!r}, M)")
        slow = f"missing, repl = slow(E{k}, v, node, root, prefix, errs, warns, missing, repl)"
        tests = [t for t in (_fast_test(fast, k, ns), _empty_test(entry[3], k, ns)) if t]
        if not tests:
            lines.append(f"    {slow}")
        else:
            lines += [f"    if not ({' or '.join(f'({t})' for t in tests)}):", f"        {slow}"]
    lines += [
        f"    if repl is not None or len(node) + missing != {node.count:d}:",
        "        return tail(node, prefix, warns, missing, repl)",
        "    return None",
    ]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<imsp.standard.validate {where}>", "exec"), ns)  # noqa: S102
    run: Callable[[_Obj, _Obj, str, _Errs, _Errs], _Obj | None] = ns["run"]
    return run


# --------------------------------------------------------------------------- conditions (`when`)


def _resolve(fields: tuple[Field, ...], parts: tuple[str, ...]) -> Field | None:
    found: Field | None = None
    for p in parts:
        found = next((f for f in fields if f.code == p), None)
        if found is None:
            return None
        fields = found.fields
    return found


def _compile_cond(
    conds: tuple[Condition, ...],
    siblings: tuple[Field, ...],
    top: tuple[Field, ...],
    tables: Mapping[str, CodeTable],
    where: str,
) -> _Cond:
    """All clauses must hold. A clause's ``field`` is looked up among the field's siblings first
    (inside a list element: the element), else from the record root. ``in``/``not_in`` and the
    numeric comparisons hold only for a non-empty value; codes are compared after alias
    normalisation; numbers may be JSON numbers or numeric strings."""
    parts: list[tuple[bool, tuple[str, ...], Callable[[Any], bool]]] = []
    for c in conds:
        path = tuple(c.field.split("."))
        local = _resolve(siblings, path) is not None
        ref = _resolve(siblings if local else top, path)
        if ref is None:
            raise StandardDataError(f"{where}: `when` names unknown field {c.field!r}")
        table = tables.get(ref.table) if ref.table else None
        parts.append((local, path, _compile_op(c, table)))

    if len(parts) == 1 and len(parts[0][1]) == 1:  # the common case: one clause, one node
        one_local, (one_code,), one_test = parts[0]

        def one(node: dict[str, Any], root: dict[str, Any]) -> bool:
            return one_test((node if one_local else root).get(one_code, MISSING))

        return one

    def cond(node: dict[str, Any], root: dict[str, Any]) -> bool:
        return all(test(get_path(node if local else root, path)) for local, path, test in parts)

    return cond


def _compile_op(c: Condition, table: CodeTable | None) -> Callable[[Any], bool]:
    op, value = c.op, c.value
    if op == "present":
        want = bool(value)
        return lambda v: is_empty(v) is not want
    if op in ("in", "not_in"):
        allowed = frozenset(str(x) for x in (value if isinstance(value, list) else [value]))
        positive = op == "in"

        def member(v: Any) -> bool:
            if is_empty(v):
                return False
            if type(v) is not str:
                if type(v) is not int:
                    return False
                v = str(v)
            if table is not None:
                v = table.canonical(v) or v
            return (v in allowed) is positive

        return member
    bound = float(value)
    compare: Callable[[float], bool] = {
        "lt": lambda x: x < bound,
        "le": lambda x: x <= bound,
        "gt": lambda x: x > bound,
        "ge": lambda x: x >= bound,
    }[op]

    def numeric(v: Any) -> bool:
        x = as_number(v)
        return x is not None and compare(x)

    return numeric


# --------------------------------------------------------------------------- compiling fields


def _compile_node(
    fields: tuple[Field, ...],
    top: tuple[Field, ...],
    tables: Mapping[str, CodeTable],
    rule_ids: frozenset[str],
    dotted: str,
    where: str,
    generated: bool,
) -> _Node:
    items: list[tuple[_Entry, tuple[Any, ...]]] = []
    for pos, f in enumerate(fields):
        fw = f"{where}.{f.code}"
        cond = _compile_cond(f.when, fields, top, tables, fw) if f.required == "C" else None
        m = _Meta(f, cond)
        if (f.table or f.format) and f.type != "string":
            raise StandardDataError(f"{fw}: code tables and formats apply to string fields only")
        check: _Check
        fast: tuple[Any, ...] = ("",)  # the happy-path test of _Node.run, "" = none
        if f.type == "string" and f.system is not None:
            path = tuple(f.system.split("."))
            local = _resolve(fields, path) is not None
            sel = _resolve(fields if local else top, path)
            if sel is None or sel.table is None:
                raise StandardDataError(f"{fw}: system names unknown field {f.system!r}")
            check = _system_check(f, m, (local, path), tables[sel.table], tables)
            if len(path) == 1:
                n = f.length if f.length is not None else 1 << 30
                fast = ("sys", n, local, path[0], *_systems(tables[sel.table], tables), f.multi)
        elif f.type == "string":
            if f.table is not None and f.table not in tables:
                raise StandardDataError(f"{fw}: unknown code table {f.table!r}")
            table = tables[f.table] if f.table is not None else None
            fmt = f.format
            if fmt == "idcard" and dotted + f.code in rule_ids:
                fmt = None  # governed by the dataset's `idcard` rule (only for resident ID cards)
            check = _string_check(f, m, table, fmt)
            n = f.length if f.length is not None else 1 << 30
            if table is not None:
                if fmt is None and all(len(c) <= n for c in table.codes):
                    fast = ("code", table.codes)
            elif fmt is not None:
                fast = ("fmt", n, _FORMATS[fmt][0], fmt)
            else:
                fast = ("str", n)
        elif f.type == "int":
            check = _int_check(f, m)
            lo = f.min if f.min is not None else float("-inf")
            hi = f.max if f.max is not None else float("inf")
            fast = ("int", lo, hi)
        elif f.type == "decimal":
            check = _decimal_check(f, m)
            scale = f.scale or 0
            fast = ("dec", (f.length or 38) - scale, scale, f.min, f.max)
        elif f.type in ("date", "datetime"):
            check = _temporal_check(f, m)
            fast = (f.type,)
        else:
            sub = _compile_node(
                f.fields, top, tables, rule_ids, f"{dotted}{f.code}.", fw, generated
            )
            check = _list_check(f, m, sub) if f.type == "list" else _object_check(f, m, sub)
        items.append(((pos, f.code, check, m), fast))
    node = _Node(items)
    if generated:
        node.run = _generate(node, where)
    return node


# --------------------------------------------------------------------------- the validator


class Validator:
    """The compiled checks of one dataset. Build with :func:`validator_for` (cached)."""

    __slots__ = ("_happy", "_key", "_root", "_rules", "dataset")

    def __init__(
        self, dataset: Dataset, tables: Mapping[str, CodeTable], *, generated: bool = True
    ) -> None:
        """``generated``: check each object level with the function generated for it from the
        definitions (:func:`_generate`, the default); False keeps the field-by-field
        interpreter (:meth:`_Node.interpret`) and runs the in-record rules' closures one by one
        instead of their generated happy path (``rules.compile_happy_path``) — same issues,
        slower; the tests compare the two."""
        self.dataset = dataset
        rule_ids = frozenset(
            str(r.params["id"]) for r in dataset.rules if r.kind == "idcard" and "id" in r.params
        )
        where = f"datasets/{dataset.code}"
        fields = dataset.fields
        self._root = _compile_node(fields, fields, tables, rule_ids, "", where, generated)
        self._rules = compile_rules(dataset, tables)
        self._happy: HappyPath | None = (
            compile_happy_path(dataset, tables, self._rules) if generated and self._rules else None
        )
        self._key = tuple(tuple(k.split(".")) for k in dataset.key)

    def check(self, record: object, index: int = 0) -> Verdict:
        """Check one parsed JSON record; never raises for bad input."""
        if type(record) is not dict:
            if not isinstance(record, dict):
                issue = Issue(
                    "", "not_object", f"第 {index} 条记录不是 JSON 对象：{show(record)}", "error"
                )
                return Verdict(index, None, [issue], [], None)
            record = dict(record)
        if not record:
            issue = Issue("", "empty", f"第 {index} 条记录为空对象", "error")
            return Verdict(index, None, [issue], [], None)
        errs: list[Issue] = []
        warns: list[Issue] = []
        new = self._root.run(record, record, "", errs, warns)
        rec: dict[str, Any] = record if new is None else new
        if not errs and self._happy is not None:
            self._happy(rec, errs)
        elif self._rules:
            bad = error_paths(errs)
            for rule in self._rules:
                rule(rec, bad, errs)
        return Verdict(index, self._key_of(rec), errs, warns, None if errs else rec)

    def check_many(self, records: Iterable[object]) -> list[Verdict]:
        """Check a batch; verdict ``index`` is the position in ``records``."""
        check = self.check
        return [check(r, i) for i, r in enumerate(records)]

    def _key_of(self, rec: dict[str, Any]) -> str | None:
        values: list[str] = []
        for parts in self._key:
            v = rec.get(parts[0], MISSING) if len(parts) == 1 else get_path(rec, parts)
            if is_empty(v) or type(v) is dict or type(v) is list:
                return None
            values.append(v if type(v) is str else str(v))
        return join_key(values) if values else None


def join_key(values: Sequence[str]) -> str:
    """A business key from its values, joined with ``|``. In a key of several values every ``\\``
    and ``|`` inside a value is escaped with ``\\``, so two different records never share a key
    (``recipeID`` "R1|X" + ``recipeDetailId`` "Y" ≠ "R1" + "X|Y"); keys without them are as before.
    """
    if len(values) == 1:
        return values[0]
    return "|".join(
        v.replace("\\", "\\\\").replace("|", "\\|") if "|" in v or "\\" in v else v for v in values
    )


_cache: dict[tuple[int, int], tuple[Dataset, Standard, Validator]] = {}


def validator_for(dataset: str | Dataset, standard: Standard | None = None) -> Validator:
    """The (cached) validator of a dataset given by short code, service name, path or object.

    ``standard`` defaults to the packaged V1 standard; it supplies the code tables.
    """
    std = standard if standard is not None else load_standard()
    ds = std.dataset(dataset) if isinstance(dataset, str) else dataset
    key = (id(ds), id(std))
    hit = _cache.get(key)
    if hit is not None and hit[0] is ds and hit[1] is std:
        return hit[2]
    v = Validator(ds, std.tables)
    if len(_cache) >= 256:
        _cache.clear()
    _cache[key] = (ds, std, v)
    return v
