"""The generated validator (one function per object level, generated from the definitions) gives
exactly what the field-by-field interpreter gives: same errors and warnings (code, path, Chinese
message, order), same business key, same stored record — on valid sample records of every
dataset and on randomly mutated ones."""

from __future__ import annotations

import copy
from datetime import date
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from imsp.standard import checks, sample
from imsp.standard.model import Dataset, Field, load_standard
from imsp.standard.rules import _full_years, full_years
from imsp.standard.validate import Validator, Verdict

from . import toy

STD = load_standard()
DATASETS = sorted(STD.datasets)


@cache
def pair(code: str) -> tuple[Validator, Validator]:
    ds = STD.datasets[code]
    return Validator(ds, STD.tables), Validator(ds, STD.tables, generated=False)


@cache
def samples(code: str) -> tuple[dict[str, Any], ...]:
    return tuple(sample.generate(code, 12, seed=7))


def same(code: str, rec: object, index: int = 0) -> Verdict:
    generated, interpreted = pair(code)
    a = generated.check(copy.deepcopy(rec), index)
    b = interpreted.check(copy.deepcopy(rec), index)
    assert a == b, (a, b)
    return a


def test_every_dataset_generates_its_validator() -> None:
    for code in DATASETS:
        generated, interpreted = pair(code)
        assert generated._root.run != generated._root.interpret
        assert interpreted._root.run == interpreted._root.interpret


def test_valid_sample_records_give_identical_verdicts() -> None:
    for code in DATASETS:
        for i, rec in enumerate(samples(code)):
            verdict = same(code, rec, i)
            assert verdict.errors == [], (code, verdict.errors)


def test_toy_dataset_agrees_on_its_hand_written_cases() -> None:
    generated = Validator(toy.TOY, toy.TABLES)
    interpreted = Validator(toy.TOY, toy.TABLES, generated=False)
    cases: list[dict[str, Any]] = [
        toy.record(),
        toy.record(recipeID=""),
        toy.record(birthday=None, homepage="", checkDate="  ", address=None),
    ]
    for rec in cases:
        assert generated.check(copy.deepcopy(rec)) == interpreted.check(copy.deepcopy(rec))


# --------------------------------------------------------------------------- random mutations

DELETE = object()


def _bad_values(f: Field) -> list[Any]:
    """Values that break (or test the edges of) a field of this type."""
    common: list[Any] = [None, "", "   ", DELETE, 12345, 1.5, True, [], {}, "\u3000", "x" * 300]
    if f.type == "string":
        common += ["§", "01|02", "01||02", "|", " 01", "2025-06-01"]
        if f.table is not None:
            codes = sorted(STD.tables[f.table].codes)
            common += [codes[0], codes[-1] + "|" + codes[0], codes[0].lower() + "z"]
        if f.format is not None:
            common += ["110105194912310021", "11010519491231002X", "91110000802100433A"]
            common += ["13800138000", "0311-87654321", "https://a.example", "12345"]
    if f.type in ("date", "datetime"):
        common += ["2025-02-30", "2024-02-29", "1899-12-31", "2025-6-1", "2025-06-01T10:00:00"]
        common += ["2025-06-01 25:00:00", "2025-06-01 10:60:00", "2025-06-01 10:00:60"]
        common += ["2025-06-01 10:00:5٣", "２０２５-06-01", "1899-12-31 10:00:00", 20250601]
    if f.type in ("int", "decimal"):
        common += [0, -1, 10**12, 3.0, "12", "12.30", "-0.5", 1e20, 1e-7, float("nan")]
        common += [12.345, 99999999.99, -99999999.99, 0.1 + 0.2, "1e3", " 1"]
        if f.max is not None:
            common += [f.max, f.max + 1, int(f.max) + 1]
        if f.min is not None:
            common += [f.min, f.min - 1]
    if f.type == "list":
        common += [[{}], ["x"], [None]]
    return common


def _paths(ds: Dataset) -> list[tuple[str, Field]]:
    return list(ds.walk())


def _apply(rec: dict[str, Any], ds: Dataset, dotted: str, value: Any) -> None:
    node: Any = rec
    fields = ds.fields
    parts = dotted.split(".")
    for part in parts[:-1]:
        f = next(x for x in fields if x.code == part)
        node = node.get(part) if type(node) is dict else None
        if f.type == "list":
            node = node[0] if type(node) is list and node else None
        fields = f.fields
    if type(node) is not dict:
        return
    if value is DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def test_every_field_of_every_dataset_agrees_on_every_bad_value() -> None:
    """One field broken at a time, exhaustively (the random test below breaks several at once)."""
    for code in DATASETS:
        ds = STD.datasets[code]
        base = samples(code)[0]
        for dotted, f in _paths(ds):
            for value in _bad_values(f):
                rec = copy.deepcopy(base)
                _apply(rec, ds, dotted, value)
                same(code, rec)


@st.composite
def mutated_records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    code = draw(st.sampled_from(DATASETS))
    ds = STD.datasets[code]
    rec = copy.deepcopy(draw(st.sampled_from(samples(code))))
    paths = _paths(ds)
    for _ in range(draw(st.integers(1, 6))):
        dotted, f = draw(st.sampled_from(paths))
        _apply(rec, ds, dotted, draw(st.sampled_from(_bad_values(f))))
    if draw(st.booleans()):
        rec[draw(st.sampled_from(["unknownNode", "remark2", "x"]))] = "?"
    return code, rec


@settings(max_examples=600)
@given(mutated_records())
def test_mutated_records_give_identical_verdicts(case: tuple[str, dict[str, Any]]) -> None:
    code, rec = case
    same(code, rec)


@settings(max_examples=150)
@given(st.sampled_from(DATASETS), st.data())
def test_verdicts_agree_whatever_the_memos_hold(code: str, data: st.DataObject) -> None:
    """The generated code trusts only a remembered ``True`` of ``checks``' memos; a cleared memo
    (as when it fills up) changes nothing."""
    if data.draw(st.booleans()):
        for memo in (checks.is_date, checks.is_time, checks.is_idcard, checks.is_uscc):
            dict.clear(checks.memo_of(memo))  # type: ignore[arg-type]
    rec = data.draw(st.sampled_from(samples(code)))
    same(code, rec)


def test_records_that_are_not_objects_agree() -> None:
    for value in ("x", 1, None, [], {}, [{"a": 1}]):
        same("prescription", value)


@given(st.dates(), st.dates())
def test_age_rule_years_from_date_strings_equal_years_from_dates(born: date, on: date) -> None:
    assert _full_years(born.isoformat(), on.isoformat()) == full_years(born, on)
