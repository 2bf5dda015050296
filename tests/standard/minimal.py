"""A minimal valid-record builder for tests, derived from the field definitions.

Deliberately small and dumb (the realistic generator is ``imsp.standard.sample``): every node is
filled — also optional and conditional ones, so no condition can bite — with the first code of its
table, a fixed valid value for its format, or the field code itself cut to the allowed length
(distinct per field, so ``not_equal`` rules hold). Rules are then satisfied by construction:
all dates are the same day, all numbers are 1 (so sums over one element and products hold), and
ID-card rules get the birthday and sex of the fixed ID number.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from imsp.standard import checks
from imsp.standard.model import Dataset, Field, Standard
from imsp.standard.rules import full_years

IDCARD = "11010519491231002X"  # GB 11643-1999's own example (female, born 1949-12-31)
IDCARD_2 = "440524188001010014"  # the standard's other example (male)
USCC = "91110000802100433B"
FORMAT_VALUES = {
    "idcard": IDCARD,
    "uscc": USCC,
    "mobile": "13800138000",
    "phone": "0311-87654321",
    "postcode": "050000",
    "url": "https://example.org/a",
    "sha256": "a" * 64,
    "workdate": "2025-06-01 08:00-12:00",
}
DATE = "2025-06-01"
DATETIME = "2025-06-01 10:00:00"


def value_for(f: Field, std: Standard) -> Any:
    if f.type == "string":
        if f.table is not None:
            return std.tables[f.table].entries[0].code
        if f.format is not None:
            return FORMAT_VALUES[f.format]
        return f.code[: f.length]
    if f.type in ("int", "decimal"):
        lo = f.min if f.min is not None else 1
        hi = f.max if f.max is not None else 1
        n = min(max(1, lo), hi)
        return int(n) if f.type == "int" else float(n)
    if f.type == "date":
        return DATE
    if f.type == "datetime":
        return DATETIME
    node = {s.code: value_for(s, std) for s in f.fields}
    return [node] if f.type == "list" else node


def minimal_record(ds: Dataset, std: Standard) -> dict[str, Any]:
    rec = {f.code: value_for(f, std) for f in ds.fields}
    for r in ds.rules:
        if r.kind != "idcard":
            continue
        rec[r.params["id"]] = IDCARD
        if r.params.get("type"):
            rec[r.params["type"]] = "01"
        if r.params.get("birthday"):
            bf = ds.field(r.params["birthday"])
            born = checks.idcard_birthday(IDCARD)
            rec[r.params["birthday"]] = born if bf.type == "date" else born + " 00:00:00"
        if r.params.get("sex"):
            rec[r.params["sex"]] = checks.idcard_sex(IDCARD)
    for r in ds.rules:
        a, b = r.params.get("fields", ["", ""])[:2] if r.kind == "not_equal" else ("", "")
        if a and rec[a] == rec[b]:
            f = ds.field(b)
            rec[b] = IDCARD_2 if f.format == "idcard" else "Z" + str(rec[b])[1:]
        if r.kind == "age":  # the ID number's holder is 75 on DATE
            born = date.fromisoformat(checks.idcard_birthday(IDCARD))
            rec[r.params["age"]] = full_years(born, date.fromisoformat(DATE))
        if r.kind == "add":  # total 1 = 1 + 0 + 0
            first, *rest = r.params["fields"]
            rec[first] = rec[r.params["total"]]
            rec.update(dict.fromkeys(rest, 0.0))
    return rec
