"""The generic half of the generator: a record is built by walking the dataset's field definitions.

For every field (in message order, nested lists and objects included) the value comes from the
*facts* the realism layer supplied for that field code, else from a generic provider driven by the
definition alone — type, length, code table, format, bounds, example. Conditional fields (``C``)
are filled when their ``when`` holds; optional fields without facts are filled half of the time.
Rules the facts did not already satisfy are then met generically: ``sum`` and ``product`` results
are computed, ``order`` values of generic fields are moved after their predecessors, ``one_of``
gets one member. Finally ``updateTime`` (数据生成时间) defaults to just after the latest time in
the record.

So a field added to a dataset file is generated validly at once, and a fact for a field that no
longer exists is simply unused (``tests/standard/test_sample.py`` reports both).
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from imsp.standard import checks
from imsp.standard.model import Condition, Dataset, Field, Standard
from imsp.standard.sample.world import idcard, mobile, uscc

Facts = Mapping[str, Any]

#: Marks a fact that leaves a node empty (``null``) on purpose.
EMPTY: Final = None

_HEADER_TIME: Final = "updateTime"


def fmt(value: Any, f: Field) -> Any:
    """A fact converted to its wire form for ``f`` (dates as strings, decimals as numbers)."""
    if value is None:
        return None
    if f.type == "datetime" and isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if f.type == "date" and isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    if f.type == "decimal":
        d = Decimal(str(value)).quantize(Decimal(1).scaleb(-(f.scale or 0)), ROUND_HALF_UP)
        return float(d)
    if f.type == "int":
        return int(value)
    if f.type == "string" and not isinstance(value, str):
        return str(value)
    return value


class Filler:
    """Builds records of one dataset from facts plus generic values."""

    def __init__(self, ds: Dataset, std: Standard, anchor: datetime) -> None:
        self.ds = ds
        self.std = std
        self.anchor = anchor
        self.generic: set[str] = set()  # paths filled generically in the last record

    # ------------------------------------------------------------------ records

    def record(self, facts: Facts, rng: random.Random) -> dict[str, Any]:
        self.generic = set()
        rec = self.node(self.ds.fields, facts, rng, "", None)
        self.rules(rec, facts, rng)
        if _HEADER_TIME in rec and _HEADER_TIME not in facts:
            times = _times(rec)
            latest = datetime.fromisoformat(max(times)) if times else self.anchor
            rec[_HEADER_TIME] = fmt(latest + timedelta(minutes=rng.randrange(1, 90)), _datetime())
        return rec

    def node(
        self, fields: tuple[Field, ...], facts: Facts, rng: random.Random, prefix: str,
        root: dict[str, Any] | None,
    ) -> dict[str, Any]:  # fmt: skip
        out: dict[str, Any] = {}
        top = out if root is None else root
        pending: list[Field] = []
        for f in fields:
            path = prefix + f.code
            if f.code in facts:
                out[f.code] = self.from_fact(f, facts[f.code], rng, path, top)
            elif f.required == "C":
                out[f.code] = None
                pending.append(f)
            elif f.required == "Y" or rng.random() < 0.5:
                out[f.code] = self.generic_value(f, rng, path, top)
            else:
                out[f.code] = None
        for _ in range(2):  # a condition may name another conditional field
            for f in pending:
                if out[f.code] is None and all(_holds(c, out, top) for c in f.when):
                    out[f.code] = self.generic_value(f, rng, prefix + f.code, top)
        return out

    def from_fact(
        self, f: Field, value: Any, rng: random.Random, path: str, root: dict[str, Any]
    ) -> Any:
        if value is None:
            return None
        if f.type == "list":
            return [self.node(f.fields, el, rng, path + ".", root) for el in value]
        if f.type == "object":
            return self.node(f.fields, value, rng, path + ".", root)
        out = fmt(value, f)
        if f.type == "string" and f.length is not None and len(out) > f.length:
            out = out[: f.length]
        return out

    # ------------------------------------------------------------------ generic values

    def generic_value(self, f: Field, rng: random.Random, path: str, root: dict[str, Any]) -> Any:
        self.generic.add(path)
        if f.type == "list":
            return [self.node(f.fields, {}, rng, path + ".", root) for _ in range(f.min_items or 1)]
        if f.type == "object":
            return self.node(f.fields, {}, rng, path + ".", root)
        if f.type == "int":
            return int(_clamp(f, f.example if isinstance(f.example, int) else rng.randrange(1, 10)))
        if f.type == "decimal":
            ex = f.example if isinstance(f.example, int | float) else 1
            return fmt(_clamp(f, ex), f)
        if f.type == "date":
            return fmt(self.anchor.date(), f)
        if f.type == "datetime":
            return fmt(self.anchor, f)
        return self.generic_string(f, rng)

    def generic_string(self, f: Field, rng: random.Random) -> str:
        n = f.length or 50
        if f.table is not None:
            codes = [e.code for e in self.std.tables[f.table].entries if len(e.code) <= n]
            return rng.choice(codes)
        if f.format is not None:
            return self.formatted(f.format, rng)
        ex = f.example
        if isinstance(ex, str) and 0 < len(ex) <= n and not ex.isspace():
            return ex
        text = f.name + "".join(rng.choice(string.digits) for _ in range(6))
        return text[:n]

    def formatted(self, name: str, rng: random.Random) -> str:
        if name == "idcard":
            born = date(rng.randrange(1950, 2000), rng.randrange(1, 13), rng.randrange(1, 29))
            return idcard("130102", born, rng.randrange(900, 1000), rng.choice("12"))
        if name == "uscc":
            return uscc("130102", rng)
        if name in ("mobile", "phone"):
            return mobile(rng)
        if name == "postcode":
            return "050000"
        if name == "url":
            return f"https://ih.example.cn/doc/{rng.randrange(10**6):06d}"
        if name == "sha256":
            return "".join(rng.choice("0123456789abcdef") for _ in range(64))
        if name == "workdate":
            return f"{self.anchor:%Y-%m-%d} 08:00-12:00"
        raise AssertionError(name)

    # ------------------------------------------------------------------ rules

    def rules(self, rec: dict[str, Any], facts: Facts, rng: random.Random) -> None:
        ordered = sorted(self.ds.rules, key=lambda r: r.kind != "product")  # products before sums
        for r in ordered:
            p = r.params
            if r.kind == "product":
                for el in _elements(rec, p.get("list")):
                    f = _field(self.ds, p.get("list"), p["result"])
                    if all(_num(el.get(x)) is not None for x in p["factors"]):
                        product = Decimal(1)
                        for x in p["factors"]:
                            product *= Decimal(str(el[x]))
                        el[p["result"]] = fmt(product, f)
            elif r.kind == "sum" and p["total"] not in facts:
                f = self.ds.field(p["total"])
                total = sum(
                    (Decimal(str(el.get(p["field"]) or 0)) for el in _elements(rec, p["list"])),
                    Decimal(0),
                )
                rec[p["total"]] = fmt(total, f)
            elif r.kind == "order":
                prev: str | None = None
                for code in p["fields"]:
                    v = rec.get(code)
                    if not isinstance(v, str) or not v:
                        continue
                    if prev is not None and v[:10] < prev[:10] and code in self.generic:
                        v = rec[code] = prev[:10] if len(v) == 10 else prev[:10] + v[10:]
                    prev = v
            elif r.kind == "one_of" and all(_empty(rec.get(c)) for c in p["fields"]):
                first = p["fields"][0]
                rec[first] = self.generic_value(self.ds.field(first), rng, first, rec)


# --------------------------------------------------------------------------- helpers


def _datetime() -> Field:
    return Field(code=_HEADER_TIME, name="", type="datetime", required="Y")


def _clamp(f: Field, x: float) -> float:
    lo = f.min if f.min is not None else x
    hi = f.max if f.max is not None else x
    return min(max(x, lo), hi)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str) and checks.is_decimal_string(v):
        return float(v)
    return None


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == [] or v == {}


def _elements(rec: dict[str, Any], path: str | None) -> list[dict[str, Any]]:
    if path is None:
        return [rec]
    v = rec.get(path)
    return [el for el in v if isinstance(el, dict)] if isinstance(v, list) else []


def _field(ds: Dataset, list_path: str | None, code: str) -> Field:
    if list_path is None:
        return ds.field(code)
    return next(f for f in ds.field(list_path).fields if f.code == code)


def _get(node: Mapping[str, Any], path: str) -> Any:
    cur: Any = node
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _holds(c: Condition, node: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """A ``when`` clause (FORMAT.md): looked up among the siblings first, then from the root."""
    head = c.field.split(".")[0]
    v = _get(node if head in node else root, c.field)
    if c.op == "present":
        return (not _empty(v)) is bool(c.value)
    if _empty(v):
        return False
    if c.op in ("in", "not_in"):
        allowed = {str(x) for x in (c.value if isinstance(c.value, list) else [c.value])}
        return (str(v) in allowed) is (c.op == "in")
    x = _num(v)
    if x is None:
        return False
    bound = float(c.value)
    return {"lt": x < bound, "le": x <= bound, "gt": x > bound, "ge": x >= bound}[c.op]


def _times(rec: Mapping[str, Any]) -> list[str]:
    """Every datetime string of the record except ``updateTime`` (same format: they sort)."""
    out: list[str] = []
    for k, v in rec.items():
        if k == _HEADER_TIME:
            continue
        if isinstance(v, str) and len(v) == 19 and checks.is_datetime(v):
            out.append(v)
        elif isinstance(v, list):
            for el in v:
                if isinstance(el, Mapping):
                    out.extend(_times(el))
    return out
