"""Mutations generated from field definitions: each breaks one field and names the issue expected.

Used over the real standard (every field of every dataset) by the validator tests and the JSON
Schema agreement tests. A mutation is (label, value or DELETE, expected issue code).
"""

from __future__ import annotations

import copy
from typing import Any

from imsp.standard.model import Condition, Dataset, Field, Standard

DELETE: Any = object()

BAD_FORMAT = {
    "idcard": "110105194912310021",
    "uscc": "91110000802100433A",
    "mobile": "12345678901",
    "phone": "12345",
    "postcode": "12345",
    "url": "ftp://x",
    "sha256": "xyz",
    "workdate": "2025-06-01 12:00-08:00",
}
WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "date": 20250601,
    "datetime": 20250601,
    "int": "12",
    "decimal": "abc",
    "list": "x",
    "object": "x",
}
EMPTY: dict[str, Any] = {"string": "", "list": [], "object": {}}


def mutations(f: Field, std: Standard) -> list[tuple[str, Any, str]]:
    out: list[tuple[str, Any, str]] = [("wrong type", WRONG_TYPE[f.type], "type")]
    if not f.since:  # a node added in V1.1 may be absent (V1.0 senders)
        out.insert(0, ("missing node", DELETE, "node_missing"))
    if f.required == "Y":
        empty = "min_items" if f.type == "list" and f.min_items else "required"
        out.append(("empty", EMPTY.get(f.type), empty))
    if f.type == "string" and f.length is not None:
        out.append(("too long", "Z" * (f.length + 1), "length"))
    if f.table is not None:
        out.append(("code outside table", "§", "value_set"))
    if f.format is not None:
        out.append(("bad format", BAD_FORMAT[f.format], f.format))
    if f.type == "date":
        out.append(("impossible date", "2025-02-30", "date"))
    if f.type == "datetime":
        out.append(("impossible time", "2025-06-01 25:00:00", "datetime"))
    if f.type == "decimal":
        out.append(("too many decimals", "1." + "1" * ((f.scale or 0) + 1), "scale"))
        out.append(("too many digits", "9" * ((f.length or 0) + 1), "precision"))
    if f.type in ("int", "decimal") and f.max is not None:
        out.append(("above max", int(f.max) + 1, "range"))
    if f.type in ("int", "decimal") and f.min is not None:
        out.append(("below min", int(f.min) - 1, "range"))
    return out


def steps(ds: Dataset, dotted: str) -> list[tuple[str, Field]]:
    """The fields along a dotted path, outermost first."""
    fields = ds.fields
    out: list[tuple[str, Field]] = []
    for part in dotted.split("."):
        f = next(x for x in fields if x.code == part)
        out.append((part, f))
        fields = f.fields
    return out


def issue_path(ds: Dataset, dotted: str) -> str:
    """``items.amount`` → ``items[0].amount`` (the mutations touch the first list element)."""
    out = ""
    for part, f in steps(ds, dotted):
        out += part
        out += "[0]." if f.type == "list" else "."
    return out.rstrip(".").removesuffix("[0]")


def mutated(rec: dict[str, Any], ds: Dataset, dotted: str, value: Any) -> dict[str, Any]:
    new = copy.deepcopy(rec)
    node: Any = new
    path = steps(ds, dotted)
    for part, f in path[:-1]:
        node = node[part][0] if f.type == "list" else node[part]
    last = path[-1][0]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return new


def make_condition_hold(
    rec: dict[str, Any], conds: tuple[Condition, ...], std: Standard, ds: Dataset
) -> dict[str, Any] | None:
    """``rec`` changed so that every clause holds (clauses on top-level fields), or None."""
    new = copy.deepcopy(rec)
    for c in conds:
        if "." in c.field or c.field not in new:
            return None
        f = ds.field(c.field)
        value: Any
        if c.op == "in":
            value = c.value[0]
            value = int(value) if f.type == "int" else value
        elif c.op == "not_in":
            if f.table is None:
                return None
            value = next(e.code for e in std.tables[f.table].entries if e.code not in c.value)
        elif c.op == "present":
            if c.value:
                continue  # the minimal record fills everything
            value = None
        else:
            bound = c.value
            value = {"lt": bound - 1, "le": bound, "gt": bound + 1, "ge": bound}[c.op]
            value = int(value) if f.type == "int" else value
        new[c.field] = value
    return new
