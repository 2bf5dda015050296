"""In-record rules (FORMAT.md §rules; 数据标准 V1.0 §记录内规则) compiled into closures.

A rule is skipped for fields that already carry an error (a bad date cannot be ordered), and for
empty values (emptiness is the required/conditional checks' business).

For a record without any error yet — nearly every record — :func:`compile_happy_path` generates
one function from the same definitions that runs every rule's happy-path test inline and calls a
rule's closure only when that test fails, so the closure alone finds and words an issue (the
pattern of the validator's generated field checks, ``standard.validate._generate``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from itertools import pairwise
from typing import Any, Final

from imsp.standard import checks
from imsp.standard.issues import MISSING, Issue, as_number, get_path, is_empty, show
from imsp.standard.model import CodeTable, Dataset, Field, StandardDataError

__all__ = [
    "RESIDENT_ID_CARD",
    "HappyPath",
    "RuleCheck",
    "compile_happy_path",
    "compile_rules",
    "error_paths",
    "full_years",
    "infant_age",
]

_TOLERANCE: Final = 0.01 + 1e-9  # 数据标准 V1.0 §记录内规则: 合计、乘积允许 ±0.01 元

RuleCheck = Callable[[dict[str, Any], "set[str] | None", list[Issue]], None]
#: Every rule of a dataset on a record without errors: ``happy(record, errors)``.
HappyPath = Callable[[dict[str, Any], list[Issue]], None]

#: 居民身份证 in 身份证件类别代码 (WS 364.3 CV02.01.101).
RESIDENT_ID_CARD: Final = "01"


def error_paths(errors: list[Issue]) -> set[str] | None:
    """The paths with errors and every path enclosing one (``items[0].amount`` also marks
    ``items[0]`` and ``items``), so a rule asks one set lookup per field; None if no errors."""
    if not errors:
        return None
    bad: set[str] = set()
    for issue in errors:
        p = issue.field
        bad.add(p)
        for k, ch in enumerate(p):
            if ch == "." or ch == "[":
                bad.add(p[:k])
    return bad


def _touched(bad: set[str] | None, path: str) -> bool:
    """Whether ``path`` (or anything inside it) already has an error (see :func:`error_paths`)."""
    return bad is not None and path in bad


class _RuleCompiler:
    """Turns one ``[[rules]]`` entry (FORMAT.md §rules) into a closure over the record."""

    def __init__(self, ds: Dataset, tables: Mapping[str, CodeTable]) -> None:
        self.ds = ds
        self.tables = tables
        self.paths = dict(ds.walk())

    def field(self, path: str, where: str) -> tuple[str, tuple[str, ...], str, Field]:
        f = self.paths.get(path)
        if f is None:
            raise StandardDataError(f"datasets/{self.ds.code} {where}: unknown field {path!r}")
        return path, tuple(path.split(".")), f"{f.name}({path})", f

    def param(self, params: Mapping[str, Any], name: str, where: str) -> Any:
        if name not in params:
            raise StandardDataError(f"datasets/{self.ds.code} {where}: rule needs `{name}`")
        return params[name]

    def compile(self, kind: str, params: Mapping[str, Any], code: str | None) -> RuleCheck:
        where = f"rule {kind}"
        build = getattr(self, "_" + kind, None)
        if build is None:
            raise StandardDataError(f"datasets/{self.ds.code}: unknown rule kind {kind!r}")
        fn: RuleCheck = build(params, code, where)
        return fn

    def _order(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        items = [self.field(p, where) for p in self.param(params, "fields", where)]
        issue_code = code or "time_order"

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            prev: str | None = None
            prev_label = ""
            for path, parts, label, _ in items:
                v = get_path(rec, parts)
                if type(v) is not str or is_empty(v) or _touched(bad, path):
                    continue
                if prev is not None:
                    a, b = (prev, v) if len(prev) == len(v) else (prev[:10], v[:10])
                    if b < a:
                        msg = f"{label} 早于 {prev_label}：{v} < {prev}"
                        errs.append(Issue(path, issue_code, msg, "error"))
                        continue
                prev, prev_label = v, label

        return rule

    def _sum(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        total, tparts, tlabel, _ = self.field(self.param(params, "total", where), where)
        lpath, lparts, _, _ = self.field(self.param(params, "list", where), where)
        sub = self.param(params, "field", where)
        _, _, slabel, _ = self.field(f"{lpath}.{sub}", where)
        issue_code = code or "sum_mismatch"

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            if _touched(bad, total) or _touched(bad, lpath):
                return
            raw = get_path(rec, tparts)
            t = as_number(raw)
            items = get_path(rec, lparts)
            if t is None or type(items) is not list:
                return
            s = 0.0
            for el in items:
                if type(el) is dict:
                    x = as_number(el.get(sub))
                    if x is not None:
                        s += x
            if abs(t - s) > _TOLERANCE:
                msg = f"{tlabel} 应等于各条 {slabel} 之和 {s:.2f}（允许 ±0.01）：{show(raw)}"
                errs.append(Issue(total, issue_code, msg, "error"))

        return rule

    def _product(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        lpath = params.get("list")
        lparts: tuple[str, ...] = ()
        base = ""
        if lpath is not None:
            lpath, lparts, _, _ = self.field(lpath, where)
            base = lpath + "."
        result = self.param(params, "result", where)
        factors = list(self.param(params, "factors", where))
        _, _, rlabel, _ = self.field(base + result, where)
        flabels = [self.field(base + f, where)[2] for f in factors]
        issue_code = code or "product_mismatch"
        detail = f"应等于 {' × '.join(flabels)}（允许 ±0.01）"

        def one(el: dict[str, Any], at: str, bad: set[str] | None, errs: list[Issue]) -> None:
            if bad and any(_touched(bad, at + c) for c in (result, *factors)):
                return
            raw = el.get(result)
            r = as_number(raw)
            if r is None:
                return
            p = 1.0
            for c in factors:
                x = as_number(el.get(c))
                if x is None:
                    return
                p *= x
            if abs(r - p) > _TOLERANCE:
                path = at + result
                msg = f"{rlabel.replace(base + result, path)} {detail}，积为 {p:.4g}：{show(raw)}"
                errs.append(Issue(path, issue_code, msg, "error"))

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            if not lparts:
                one(rec, "", bad, errs)
                return
            items = get_path(rec, lparts)
            if type(items) is not list:
                return
            for i, el in enumerate(items):
                if type(el) is dict:
                    one(el, f"{lpath}[{i}].", bad, errs)

        return rule

    def _idcard(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        id_path, id_parts, id_label, _ = self.field(self.param(params, "id", where), where)
        opt = {
            k: self.field(params[k], where) if params.get(k) else None
            for k in ("type", "birthday", "sex")
        }
        type_ref, bday_ref, sex_ref = opt["type"], opt["birthday"], opt["sex"]
        type_table = self._table(type_ref[3]) if type_ref else None
        sex_table = self._table(sex_ref[3]) if sex_ref else None

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            if type_ref is not None:
                tv = get_path(rec, type_ref[1])
                if type(tv) is not str:
                    return
                canon = type_table.canonical(tv) if type_table is not None else tv
                if canon != RESIDENT_ID_CARD:
                    return
            idv = get_path(rec, id_parts)
            if type(idv) is not str or is_empty(idv) or _touched(bad, id_path):
                return
            if not checks.is_idcard(idv):
                # GB 11643-1999: 18 位、出生日期有效、ISO 7064 MOD 11-2 校验码
                msg = f"{id_label} 不是有效的居民身份证号码（GB 11643 校验失败）：{show(idv)}"
                errs.append(Issue(id_path, code or "idcard", msg, "error"))
                return
            if bday_ref is not None and not _touched(bad, bday_ref[0]):
                bv = get_path(rec, bday_ref[1])
                born = checks.idcard_birthday(idv)
                if type(bv) is str and not is_empty(bv) and bv[:10] != born:
                    msg = f"{bday_ref[2]} 与 {id_label} 中的出生日期 {born} 不一致：{show(bv)}"
                    errs.append(Issue(bday_ref[0], code or "idcard_birthday", msg, "error"))
            if sex_ref is not None and not _touched(bad, sex_ref[0]):
                sv = get_path(rec, sex_ref[1])
                if type(sv) is str and sex_table is not None:
                    sv = sex_table.canonical(sv) or sv
                sex = checks.idcard_sex(idv)
                if sv in ("1", "2") and sv != sex:
                    msg = f"{sex_ref[2]} 与 {id_label} 的性别（{sex}）不一致：{show(sv)}"
                    errs.append(Issue(sex_ref[0], code or "idcard_sex", msg, "error"))

        return rule

    def _add(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        """``total`` = Σ separate fields (数据标准 V1.1 §记录内规则: 个人支付 + 医保统筹支付 +
        其他支付 = 总金额, ±0.01). Empty parts count as 0; nothing is checked when all are empty."""
        total, tparts, tlabel, _ = self.field(self.param(params, "total", where), where)
        parts = [self.field(p, where) for p in self.param(params, "fields", where)]
        issue_code = code or "sum_mismatch"
        names = " + ".join(p[2] for p in parts)

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            if _touched(bad, total) or any(_touched(bad, p[0]) for p in parts):
                return
            raw = get_path(rec, tparts)
            t = as_number(raw)
            values = [as_number(get_path(rec, p[1])) for p in parts]
            if t is None or all(v is None for v in values):
                return
            s = sum(v for v in values if v is not None)
            if abs(t - s) > _TOLERANCE:
                msg = f"{tlabel} 应等于 {names} = {s:.2f}（允许 ±0.01）：{show(raw)}"
                errs.append(Issue(total, issue_code, msg, "error"))

        return rule

    def _age(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        """Age in whole years (实足年龄, 周岁) agrees with the birth date — from ``birthday`` if the
        record has one, else from the resident ID number — on the record's business date (or any
        day up to ``updateTime``: a record may be sent later). Infants are 0 and the message
        gives their age in months and days."""
        age_path, age_parts, age_label, _ = self.field(self.param(params, "age", where), where)
        bday = self.field(params["birthday"], where) if params.get("birthday") else None
        idf = self.field(params["id"], where) if params.get("id") else None
        type_ref = self.field(params["type"], where) if params.get("type") else None
        type_table = self._table(type_ref[3]) if type_ref else None
        dates = [self.field(p, where) for p in self.param(params, "at", where)]
        issue_code = code or "age_mismatch"

        def born_of(rec: dict[str, Any], bad: set[str] | None) -> tuple[str, str] | None:
            """(birth date ``yyyy-MM-dd``, where it was read) or None."""
            if bday is not None and not _touched(bad, bday[0]):
                bv = get_path(rec, bday[1])
                if type(bv) is str and checks.is_date(bv[:10]):
                    return bv[:10], bday[2]
            if idf is None or _touched(bad, idf[0]):
                return None
            if type_ref is not None:
                tv = get_path(rec, type_ref[1])
                canon = type_table.canonical(tv) if type_table and type(tv) is str else tv
                if canon != RESIDENT_ID_CARD:
                    return None
            iv = get_path(rec, idf[1])
            if type(iv) is not str or not checks.is_idcard(iv):
                return None
            return checks.idcard_birthday(iv), source_id

        source_id = f"{idf[2]} 中的出生日期" if idf is not None else ""

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            age = get_path(rec, age_parts)
            if type(age) is not int or _touched(bad, age_path):
                return
            days: list[str] = []  # valid yyyy-MM-dd: they order as the dates do
            for path, parts, _, _ in dates:
                v = get_path(rec, parts)
                if type(v) is str and not _touched(bad, path) and checks.is_date(v[:10]):
                    days.append(v[:10])
            born = born_of(rec, bad)
            if born is None or not days:
                return
            birth_text, source = born
            lo_text, hi_text = min(days), max(days)
            if _full_years(birth_text, lo_text) <= age <= _full_years(birth_text, hi_text):
                return
            birth, lo, hi = (date.fromisoformat(d) for d in (birth_text, lo_text, hi_text))
            low, high = full_years(birth, lo), full_years(birth, hi)
            expected = (str(low) if low == high else f"{low}～{high}") + " 周岁"
            if high == 0:
                expected += f"（{infant_age(birth, lo)}）"
            msg = (
                f"{age_label} 与 {source}（{birth.isoformat()}）不符：按 {lo.isoformat()} 计"
                f"实足年龄应为 {expected}：{age}"
            )
            errs.append(Issue(age_path, issue_code, msg, "error"))

        return rule

    def _period(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        """A validity period in days agrees with its start and end dates, both days counted
        (《处方管理办法》第十八条: 有效期 3 天 = 开始日期起第 1～3 天)."""
        d_path, d_parts, d_label, _ = self.field(self.param(params, "days", where), where)
        s_path, s_parts, s_label, _ = self.field(self.param(params, "start", where), where)
        e_path, e_parts, e_label, _ = self.field(self.param(params, "end", where), where)
        issue_code = code or "period_mismatch"

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            if bad is not None and (d_path in bad or s_path in bad or e_path in bad):
                return
            n, sv, ev = get_path(rec, d_parts), get_path(rec, s_parts), get_path(rec, e_parts)
            if type(n) is not int or type(sv) is not str or type(ev) is not str:
                return
            if not (checks.is_date(sv[:10]) and checks.is_date(ev[:10])):
                return
            span = (date.fromisoformat(ev[:10]) - date.fromisoformat(sv[:10])).days + 1
            if span != n:
                msg = (
                    f"{d_label} 与 {s_label}、{e_label} 不符：{sv[:10]} 至 {ev[:10]} 共 {span} 天"
                    f"（含首尾两日）：{n}"
                )
                errs.append(Issue(d_path, issue_code, msg, "error"))

        return rule

    def _table(self, f: Field) -> CodeTable | None:
        return self.tables.get(f.table) if f.table else None

    def _pair(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        items = [self.field(p, where) for p in self.param(params, "fields", where)]
        issue_code = code or "pair_mismatch"

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            ref: tuple[int, str] | None = None
            for path, parts, label, _ in items:
                v = get_path(rec, parts)
                if type(v) is not str or is_empty(v) or _touched(bad, path):
                    continue
                n = v.count("|") + 1
                if ref is None:
                    ref = (n, label)
                elif n != ref[0]:
                    msg = f"{label} 有 {n} 项，与 {ref[1]} 的 {ref[0]} 项不对应：{show(v)}"
                    errs.append(Issue(path, issue_code, msg, "error"))

        return rule

    def _one_of(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        items = [self.field(p, where) for p in self.param(params, "fields", where)]
        path = "|".join(i[0] for i in items)
        msg = f"{'、'.join(i[2] for i in items)} 至少填写一项"
        issue = Issue(path, code or "one_of", msg, "error")

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            for _, parts, _, _ in items:
                if not is_empty(get_path(rec, parts)):
                    return
            errs.append(issue)

        return rule

    def _not_equal(self, params: Mapping[str, Any], code: str | None, where: str) -> RuleCheck:
        fields = self.param(params, "fields", where)
        if len(fields) != 2:
            raise StandardDataError(f"datasets/{self.ds.code} {where}: needs exactly two fields")
        (_, a_parts, a_label, _), (b_path, b_parts, b_label, _) = (
            self.field(fields[0], where),
            self.field(fields[1], where),
        )
        a_path = fields[0]
        issue_code = code or "not_equal"

        def rule(rec: dict[str, Any], bad: set[str] | None, errs: list[Issue]) -> None:
            a, b = get_path(rec, a_parts), get_path(rec, b_parts)
            if is_empty(a) or is_empty(b) or _touched(bad, a_path) or _touched(bad, b_path):
                return
            if a == b or str(a) == str(b):
                msg = f"{b_label} 不应与 {a_label} 相同：{show(b)}"
                errs.append(Issue(b_path, issue_code, msg, "error"))

        return rule


def full_years(birth: date, on: date) -> int:
    """实足年龄 (周岁): whole years from ``birth`` to ``on``; a 29 February birthday counts on
    1 March in common years."""
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return max(years, 0)


def _full_years(birth: str, on: str) -> int:
    """:func:`full_years` of two valid ``yyyy-MM-dd`` strings, without building dates
    (``MM-dd`` strings order as (month, day) does)."""
    years = int(on[:4]) - int(birth[:4])
    if on[5:] < birth[5:]:
        years -= 1
    return max(years, 0)


def infant_age(birth: date, on: date) -> str:
    """An infant's age in months and days (``3 个月 12 天``; ``12 天`` under one month)."""
    months = (on.year - birth.year) * 12 + on.month - birth.month
    if on.day < birth.day:
        months -= 1
    if months <= 0:
        return f"{max((on - birth).days, 0)} 天"
    y, m = divmod(birth.month - 1 + months, 12)
    anchor_day = min(birth.day, checks.DAYS_IN_MONTH[m + 1] + (m == 1 and _leap(birth.year + y)))
    days = (on - date(birth.year + y, m + 1, anchor_day)).days
    return f"{months} 个月 {days} 天" if days else f"{months} 个月"


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def compile_rules(ds: Dataset, tables: Mapping[str, CodeTable]) -> tuple[RuleCheck, ...]:
    """The dataset's rules as closures ``rule(record, error_paths, errors)``."""
    rc = _RuleCompiler(ds, tables)
    return tuple(rc.compile(r.kind, r.params, r.code) for r in ds.rules)


# --------------------------------------------------------------------------- generated happy path


def compile_happy_path(
    ds: Dataset, tables: Mapping[str, CodeTable], closures: tuple[RuleCheck, ...]
) -> HappyPath:
    """One function running every rule of ``ds`` on a record that has no error yet — what
    ``for rule in closures: rule(record, None, errors)`` does, faster.

    Generated from the definitions and ``compile()``d once: for each rule, in order, a test
    written inline that is true only if its closure (``closures``, from :func:`compile_rules`)
    would add no issue; when it is false — or the rule kind has no such test — the closure runs
    and decides. Sound, not complete: the tests read ``checks``' memos for a remembered ``True``
    only, and give up (closure) on anything unusual. So the issues are the closures' own, in the
    same order (``tests/standard/test_generated_validator.py`` compares them)."""
    gen = _HappyGen(_RuleCompiler(ds, tables))
    lines = [
        f"# generated from datasets/{ds.code} [[rules]]",
        "def happy(rec, errs):",
        "    get = rec.get",
    ]
    for k, (rule, closure) in enumerate(zip(ds.rules, closures, strict=True)):
        gen.ns[f"R{k}"] = closure
        body = gen.block(rule.kind, rule.params, k)
        call = f"R{k}(rec, None, errs)"
        if body is None:
            lines.append(f"    {call}")
        else:
            lines += [f"    {line}" for line in body]
            lines += ["    if not ok:", f"        {call}"]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<imsp.standard.rules {ds.code}>", "exec"), gen.ns)  # noqa: S102
    happy: HappyPath = gen.ns["happy"]
    return happy


#: A value of ``b`` in generated code: "the closure finds no birth date" / "ask the closure".
_NO_BIRTH: Final[Any] = object()
_UNSURE: Final[Any] = object()


class _HappyGen:
    """Writes each rule kind's happy-path test as lines that set ``ok`` (see
    :func:`compile_happy_path`); the names it binds live in :attr:`ns`. Only rules whose fields
    are all top-level nodes get a test (``get(code, M)``); the others always run their closure."""

    def __init__(self, rc: _RuleCompiler) -> None:
        self.rc = rc
        self.ns: dict[str, Any] = {
            "__builtins__": {
                "type": type,
                "len": len,
                "str": str,
                "int": int,
                "min": min,
                "max": max,
            },
            "M": MISSING,
            "N": _NO_BIRTH,
            "U": _UNSURE,
            "DATES": checks.memo_of(checks.is_date).get,
            "IDS": checks.memo_of(checks.is_idcard).get,
            "BORN": checks.idcard_birthday,
            "ISEX": checks.idcard_sex,
            "DAY": date.fromisoformat,
        }

    def block(self, kind: str, params: Mapping[str, Any], k: int) -> list[str] | None:
        where = f"rule {kind}"
        paths = [v for n, v in params.items() if n in _FIELD_PARAMS]
        flat = [p for v in paths for p in (v if isinstance(v, list) else [v]) if v]
        if any("." in p for p in flat):
            return None
        build = getattr(self, "_" + kind, None)
        out: list[str] | None = build(params, where, k) if build is not None else None
        return out

    def _get(self, path: str, where: str) -> str:
        self.rc.field(path, where)  # the same validation as the closure's
        return f"get({path!r}, M)"

    def _resident(self, type_path: str | None, where: str, k: int) -> str:
        """An expression true when the closure takes ``t`` (the certificate type read just
        before) as 居民身份证 — canonical code :data:`RESIDENT_ID_CARD`."""
        if type_path is None:
            return "True"
        table = self.rc._table(self.rc.field(type_path, where)[3])
        if table is None:
            self.ns[f"RES{k}"] = frozenset({RESIDENT_ID_CARD})
        else:
            known = table.codes | table.aliases.keys()
            self.ns[f"RES{k}"] = frozenset(
                c for c in known if table.canonical(c) == RESIDENT_ID_CARD
            )
        return f"type(t) is str and t in RES{k}"

    def _order(self, params: Mapping[str, Any], where: str, k: int) -> list[str] | None:
        fields = list(params.get("fields") or ())
        if len(fields) < 2:
            return None
        names = [f"v{i}" for i in range(len(fields))]
        lines = [f"{n} = {self._get(p, where)}" for n, p in zip(names, fields, strict=True)]

        def ordered(a: str, b: str) -> str:
            return f"({b} >= {a} if len({a}) == len({b}) else {b}[:10] >= {a}[:10])"

        if len(fields) == 2:
            # a value the closure skips (not a string, or "") leaves nothing to compare
            a, b = names
            test = f"type({a}) is not str or type({b}) is not str or not {a} or not {b} or "
            lines.append("ok = " + test + ordered(a, b))
            return lines
        # every value a non-blank string, so the closure compares neighbours only
        present = " and ".join(f"type({n}) is str and {n} and not {n}[0].isspace()" for n in names)
        pairs = " and ".join(ordered(a, b) for a, b in pairwise(names))
        lines.append(f"ok = {present} and {pairs}")
        return lines

    def _pair(self, params: Mapping[str, Any], where: str, k: int) -> list[str] | None:
        fields = list(params.get("fields") or ())
        if len(fields) != 2:
            return None
        return [
            f"a = {self._get(fields[0], where)}",
            f"b = {self._get(fields[1], where)}",
            'ok = type(a) is not str or type(b) is not str or a.count("|") == b.count("|")',
        ]

    def _idcard(self, params: Mapping[str, Any], where: str, k: int) -> list[str] | None:
        lines = []
        type_path = params.get("type") or None
        if type_path is not None:
            lines.append(f"t = {self._get(type_path, where)}")
        lines += [
            "ok = True",
            f"if {self._resident(type_path, where, k)}:",
            f"    i = {self._get(params['id'], where)}",
            "    if type(i) is str and i:",
            "        ok = IDS(i) is True",
        ]
        if params.get("birthday"):
            lines += [
                f"        if ok and type(b := {self._get(params['birthday'], where)}) is str:",
                "            ok = b[:10] == BORN(i)",
            ]
        if params.get("sex"):
            sex_table = self.rc._table(self.rc.field(params["sex"], where)[3])
            lines += [f"        s = {self._get(params['sex'], where)}"]
            if sex_table is not None:
                known = sex_table.codes | sex_table.aliases.keys()
                self.ns[f"SEX{k}"] = {c: sex_table.canonical(c) or c for c in known}
                lines += ["        if type(s) is str:", f"            s = SEX{k}.get(s, s)"]
            lines += ['        ok = ok and (s != "1" and s != "2" or s == ISEX(i))']
        return lines

    def _age(self, params: Mapping[str, Any], where: str, k: int) -> list[str] | None:
        at = list(params.get("at") or ())
        if not at:
            return None
        days = [f"d{i}" for i in range(len(at))]
        lines = [f"a = {self._get(params['age'], where)}", "ok = type(a) is not int", "if not ok:"]
        lines += [f"    {d} = {self._get(p, where)}" for d, p in zip(days, at, strict=True)]
        # the birth date as the closure's born_of finds it: a string, N (none) or U (unsure)
        birth = ["b = N"]
        if params.get("id"):
            type_path = params.get("type") or None
            birth = []
            if type_path is not None:
                birth.append(f"t = {self._get(type_path, where)}")
            birth += [
                f"if {self._resident(type_path, where, k)}:",
                f"    i = {self._get(params['id'], where)}",
                "    c = IDS(i) if type(i) is str else False",
                "    b = BORN(i) if c is True else N if c is False else U",
                "else:",
                "    b = N",
            ]
        if params.get("birthday"):
            lines += [
                f"    x = {self._get(params['birthday'], where)}",
                "    c = DATES(x[:10]) if type(x) is str else False",
                "    b = x[:10] if c is True else N if c is False else U",
                "    if b is N:",
                *(f"        {line}" for line in birth),
            ]
        else:
            lines += [f"    {line}" for line in birth]
        valid = " and ".join(f"type({d}) is str and DATES({d}[:10]) is True" for d in days)
        span = ", ".join(f"{d}[:10]" for d in days)
        bounds = (
            ["p = d0[:10]", "q = d1[:10]", "if q < p:", "    p, q = q, p"]
            if len(days) == 2
            else [f"p = min({span},)", f"q = max({span},)"]
        )
        # _full_years(b, p) <= a <= _full_years(b, q) for an age a >= 0, with the birthday's
        # anniversaries as strings: full years on a day ≤ a  ⇔  the day < the (a+1)th
        # anniversary, and ≥ a  ⇔  the day ≥ the a-th (a 29 February birthday falls on 1 March
        # in common years either way, as yyyy-MM-dd strings compare)
        lines += [
            "    if b is N:",
            "        ok = True",
            f"    elif b is not U and {valid} and a >= 0:",
            *(f"        {line}" for line in bounds),
            "        x = int(b[:4]) + a",
            '        ok = x < 9999 and p < f"{x + 1:04d}{b[4:]}" and q >= f"{x:04d}{b[4:]}"',
        ]
        return lines

    def _period(self, params: Mapping[str, Any], where: str, k: int) -> list[str] | None:
        return [
            f"n = {self._get(params['days'], where)}",
            f"s = {self._get(params['start'], where)}",
            f"e = {self._get(params['end'], where)}",
            "ok = type(n) is not int or type(s) is not str or type(e) is not str or ("
            "DATES(s[:10]) is True and DATES(e[:10]) is True "
            "and (DAY(e[:10]) - DAY(s[:10])).days + 1 == n)",
        ]


#: The parameters of a rule that name fields (the others: ``list``'s sub-field names, flags).
_FIELD_PARAMS: Final = frozenset(
    {"fields", "id", "type", "birthday", "sex", "age", "at", "days", "start", "end", "total"}
)
