"""Benchmark: the Data Standard validator against plain JSON parsing (not a test).

Builds N valid records of a dataset (default: the prescription dataset, 处方) from the
definitions — field examples where given, otherwise synthetic values, with business times and
keys varied per record — JSON-encodes them, then measures in the same run and on one core:

* ``orjson.loads`` of each record's JSON,
* ``json.loads`` of each record's JSON,
* ``Validator.check`` of each parsed record,

each repeated R times; the median is reported as records/s together with the ratio of validation
time to parsing time. ``--write`` puts the figures into ``docs/performance.md`` (its section
"数据标准校验器 / Validator" only).

    .venv/bin/python bench/bench_validator.py [--n 20000] [--repeat 7] [--dataset prescription]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from imsp.standard import checks
from imsp.standard.model import Dataset, Field, Standard, load_standard
from imsp.standard.rules import full_years
from imsp.standard.validate import Validator, validator_for

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
SECTION = "## 数据标准校验器 / Validator"
FALLBACK = {
    "idcard": "11010519491231002X",
    "uscc": "91110000802100433B",
    "mobile": "13800138000",
    "phone": "0311-87654321",
    "postcode": "050000",
    "url": "https://hospital.example.org/recipe",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "workdate": "2025-06-01 08:00-12:00",
}


def synthetic(f: Field, std: Standard) -> Any:
    """A plausible valid value without looking at the example."""
    if f.type == "string":
        if f.table is not None:
            return std.tables[f.table].entries[0].code
        if f.format is not None:
            return FALLBACK[f.format]
        return ("互联网医院监管数据" * 8)[: min(f.length or 8, 12)]
    if f.type in ("int", "decimal"):
        lo = f.min if f.min is not None else 1
        hi = f.max if f.max is not None else 1
        n = min(max(1, lo), hi)
        return int(n) if f.type == "int" else round(float(n), f.scale or 0)
    if f.type == "date":
        return "2025-06-01"
    if f.type == "datetime":
        return "2025-06-01 10:00:00"
    node = {s.code: example_or_synthetic(s, std) for s in f.fields}
    return [node, dict(node)] if f.type == "list" else node


def example_or_synthetic(f: Field, std: Standard) -> Any:
    return f.example if f.example is not None else synthetic(f, std)


def base_record(ds: Dataset, std: Standard) -> dict[str, Any]:
    """Examples first; any field the validator (or a rule) objects to falls back to synthetic."""
    validator = validator_for(ds, std)
    rec = {f.code: example_or_synthetic(f, std) for f in ds.fields}
    for _ in range(3):
        verdict = validator.check(rec)
        if verdict.ok:
            return rec
        for issue in verdict.errors:
            for part in issue.field.split("|"):
                top = part.split(".")[0].split("[")[0]
                if top in rec:
                    rec[top] = synthetic(ds.field(top), std)
        for r in ds.rules:  # make ID-card rules hold with the fallback number
            if r.kind == "idcard" and rec.get(r.params["id"]) == FALLBACK["idcard"]:
                if r.params.get("sex"):
                    rec[r.params["sex"]] = checks.idcard_sex(FALLBACK["idcard"])
                if r.params.get("birthday"):
                    rec[r.params["birthday"]] = checks.idcard_birthday(FALLBACK["idcard"])
    verdict = validator.check(rec)
    raise SystemExit(f"could not build a valid {ds.code} record: {verdict.errors}")


def records(ds: Dataset, std: Standard, n: int) -> list[dict[str, Any]]:
    """``n`` valid records: distinct keys, business times spread over a year."""
    base = base_record(ds, std)
    rng = random.Random(20250601)
    times = [f.code for f in ds.fields if f.type == "datetime"]
    strings = [f.code for f in ds.fields if f.code in ds.key and f.type == "string"]
    start = dt.datetime(2025, 1, 1, 8)
    out = []
    for i in range(n):
        rec = dict(base)
        moment = (start + dt.timedelta(seconds=rng.randrange(365 * 86400))).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        for code in times:
            if rec[code]:
                rec[code] = moment
        for code in strings:
            rec[code] = f"{str(base[code])[:40]}{i:08d}"
        fix_age(rec, ds, moment)
        out.append(rec)
    assert all(validator_for(ds, std).check(r).ok for r in out[:100])
    return out


def fix_age(rec: dict[str, Any], ds: Dataset, moment: str) -> None:
    """Make an ``age`` rule hold once every business time is ``moment``: the age in whole years
    on that day, from the birth date the rule reads (birthday field, else the ID number)."""
    for r in ds.rules:
        if r.kind != "age" or type(rec.get(r.params["age"])) is not int:
            continue
        born = rec.get(r.params.get("birthday") or "")
        if not (type(born) is str and checks.is_date(born[:10])):
            born = checks.idcard_birthday(rec[r.params["id"]])
        day = dt.date.fromisoformat(moment[:10])
        rec[r.params["age"]] = full_years(dt.date.fromisoformat(born[:10]), day)


def median_rate(fn: Callable[[], object], n: int, repeat: int) -> tuple[float, float]:
    """(records/s, seconds) of the median of ``repeat`` runs of ``fn`` over ``n`` records."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    med = statistics.median(times)
    return n / med, med


def bench(ds: Dataset, std: Standard, n: int, repeat: int) -> tuple[Any, ...]:
    """(dataset, fields, mean JSON bytes, orjson/s, json/s, interpreted validator/s, validator/s,
    validator time ÷ orjson time, validator time ÷ json time, validator/s on records with three
    errors). "validator" is the generated one (the default); "interpreted" the field-by-field
    reference it is tested against (``Validator(..., generated=False)``)."""
    check = validator_for(ds, std).check
    interpreted = Validator(ds, std.tables, generated=False).check
    blobs = [orjson.dumps(r) for r in records(ds, std, n)]
    texts = [b.decode() for b in blobs]
    parsed = [orjson.loads(b) for b in blobs]
    o_rate, o_t = median_rate(lambda: [orjson.loads(b) for b in blobs], n, repeat)
    j_rate, j_t = median_rate(lambda: [json.loads(t) for t in texts], n, repeat)
    i_rate, _ = median_rate(lambda: [interpreted(r) for r in parsed], n, repeat)
    v_rate, v_t = median_rate(lambda: [check(r) for r in parsed], n, repeat)
    broken = [break_three(r, ds) for r in parsed]
    assert all(len(check(r).errors) >= 3 for r in broken[:100])
    e_rate, _ = median_rate(lambda: [check(r) for r in broken], n, repeat)
    n_fields = sum(1 for _ in ds.walk())
    size = statistics.mean(len(b) for b in blobs)
    return (ds, n_fields, size, o_rate, j_rate, i_rate, v_rate, v_t / o_t, v_t / j_t, e_rate)


def break_three(rec: dict[str, Any], ds: Dataset) -> dict[str, Any]:
    """A copy with three field errors: a number for a string, a bad datetime, a missing node."""
    out = dict(rec)
    s = next(f.code for f in ds.fields if f.type == "string" and f.table is None)
    d = next(f.code for f in ds.fields if f.type == "datetime")
    out[s] = 12345
    out[d] = "2025-06-31 10:00:00"
    del out[ds.fields[-1].code]
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dataset", action="append", help="dataset code (repeatable)")
    ap.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = ap.parse_args()
    std = load_standard()
    codes = args.dataset or ["prescription", "prescription_item"]
    machine = (
        f"{cpu_model()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}; "
        f"1-minute load average at start {os.getloadavg()[0]:.1f} (other work shares the CPUs, "
        "so the figures are a lower bound)"
    )
    print(machine)
    rows = []
    for code in codes:
        ds = std.dataset(code)
        row = bench(ds, std, args.n, args.repeat)
        rows.append(row)
        _, n_fields, size, o_rate, j_rate, i_rate, v_rate, v_o, v_j, e_rate = row
        print(
            f"{ds.code} ({ds.name}, {n_fields} fields, {size:.0f} B JSON): "
            f"orjson.loads {o_rate:,.0f}/s · json.loads {j_rate:,.0f}/s · "
            f"interpreted {i_rate:,.0f}/s · generated validator {v_rate:,.0f}/s — validation takes {v_o:.1f}× orjson.loads, "
            f"{v_j:.1f}× json.loads; with 3 errors/record {e_rate:,.0f}/s"
        )
    if args.write:
        write_doc(rows, machine, args.n, args.repeat)
        print(f"wrote {DOC.relative_to(ROOT)}")


def write_doc(rows: list[tuple[Any, ...]], machine: str, n: int, repeat: int) -> None:
    table = [
        "| dataset | fields | JSON size | orjson.loads | json.loads | interpreted (valid) | "
        "generated (valid) | generated time ÷ orjson.loads time | ÷ json.loads time | "
        "generated (3 errors) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds, n_fields, size, o, j, i, v, ro, rj, e in rows:
        table.append(
            f"| {ds.code}（{ds.name}） | {n_fields} | {size:.0f} B | {o:,.0f}/s | {j:,.0f}/s | "
            f"{i:,.0f}/s | **{v:,.0f}/s** | {ro:.1f}× | {rj:.1f}× | {e:,.0f}/s |"
        )
    body = "\n".join(
        [
            SECTION,
            "",
            f"Measured {dt.date.today().isoformat()} with `bench/bench_validator.py --write`.",
            "",
            "**Method.** The benchmark builds N valid records of each dataset from the definitions "
            "(field examples, otherwise synthetic values; distinct business keys and business "
            "times spread over a year), encodes each record as JSON, then on one core and in the "
            "same run times `orjson.loads` of every record, `json.loads` of every record and "
            "`Validator.check` of every parsed record — valid ones with the field-by-field "
            "interpreter (`generated=False`) and with the generated validator (the default), "
            "and copies with three field errors each (a number for a string, an impossible "
            "datetime, a missing node). "
            f"N = {n:,}, {repeat} repetitions each, "
            "median reported (CPU time of the process, `time.process_time`, so other jobs on the machine inflate the figures less). Records/s are single records, not batches.",
            "",
            f"**Machine.** {machine}.",
            "",
            *table,
            "",
            "**Requirement.** ≥ 30,000 prescription-sized records/s on one core. The validator is "
            "compiled once per dataset: every field gets a full checker closure (which words "
            "the issue), and each JSON object level gets one Python function *generated from "
            "the definitions* at load (`standard.validate._generate`, `compile()`d once — never "
            "written per dataset): the fields in message order, each with its happy-path test "
            "inline (string length and blankness, code-table membership in a frozenset, dates "
            "and datetimes by slicing and lookups in the bounded memos of `checks`, integer and "
            "decimal bounds, empty values of optional fields, conditions of conditional ones), "
            "and a call to the full checker only for a field that fails it — so the issues "
            "(code, record index, path, Chinese message, order) are exactly those of the "
            "interpreter, which `tests/standard/test_generated_validator.py` checks on every "
            "dataset (sample records, every bad value of every field, random combinations).",
            "",
        ]
    )
    text = DOC.read_text("utf-8") if DOC.exists() else "# Performance\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + ("\n" + text[end + 1 :] if end >= 0 else "")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text.rstrip("\n") + "\n", "utf-8")


if __name__ == "__main__":
    main()
