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


# --------------------------------------------------------------------------- in-record rules

#: Issue codes the rules give (their own or a dataset's ``code``), to see the rules fire.
RULE_CODES = frozenset(
    {"time_order", "age_mismatch", "idcard", "idcard_birthday", "idcard_sex", "pair_mismatch",
     "period_mismatch", "sum_mismatch", "product_mismatch", "one_of", "not_equal"}
)  # fmt: skip


def _resident_id(born: str, seq: str) -> str:
    body = "110105" + born.replace("-", "") + seq
    return body + checks.check_digit_gb11643(body)


def _rule_fields(ds: Dataset) -> list[tuple[str, Field]]:
    """The top-level fields the dataset's rules read."""
    named: set[str] = set()
    for rule in ds.rules:
        for value in rule.params.values():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str):
                    named.add(v)
    return [(p, f) for p, f in _paths(ds) if p in named and "." not in p]


@cache
def _rule_values(code: str, dotted: str) -> tuple[Any, ...]:
    """Values of a rule's field that pass the field's own checks but may break the rule: the
    field's values in the other sample records, and edge cases of its type."""
    ds = STD.datasets[code]
    f = dict(_paths(ds))[dotted]
    values: list[Any] = [s.get(dotted) for s in samples(code)] + ["", None]
    if f.type == "date":
        values += ["2020-01-01", "2025-06-17", "2025-06-19", "2031-03-01", "2024-02-29"]
    elif f.type == "datetime":
        values += ["2020-01-01 00:00:00", "2025-06-17 00:00:00", "2025-06-17 23:59:59"]
        values += ["2031-03-01 08:00:00", "2024-02-29 12:00:00"]
    elif f.type == "int":
        values += [0, 1, 3, 45, 46, 75, 120]
    elif f.format == "idcard" or dotted.endswith("CertID"):
        for born in ("2025-06-01", "1979-12-07", "1980-06-17", "2000-02-29", "1949-12-31"):
            values += [_resident_id(born, "001"), _resident_id(born, "002")]
        values += ["110105194912310020", "E12345678"]
    elif f.table is not None:
        table = STD.tables[f.table]
        values += sorted(table.codes)[:4] + sorted(table.aliases)[:2]
    for v in list(values):
        if type(v) is str and v and f.type == "string" and f.table is None:
            values.append(v + "|" + v)
    return tuple(values)


def _rule_datasets() -> list[str]:
    return [c for c in DATASETS if STD.datasets[c].rules and _rule_fields(STD.datasets[c])]


def test_every_value_of_every_rule_field_agrees_and_the_rules_fire() -> None:
    """One field a rule reads changed at a time, to values its own checks accept — so the
    record reaches the rules without errors and the generated happy path has to decide."""
    fired: set[str] = set()
    clean_fired = 0
    for code in _rule_datasets():
        ds = STD.datasets[code]
        for base in samples(code)[:3]:
            for dotted, _ in _rule_fields(ds):
                for value in _rule_values(code, dotted):
                    rec = copy.deepcopy(base)
                    rec[dotted] = value
                    verdict = same(code, rec)
                    codes = {e.code for e in verdict.errors}
                    fired |= codes & RULE_CODES
                    clean_fired += codes <= RULE_CODES and bool(codes)
    assert {"time_order", "age_mismatch", "idcard", "idcard_sex", "pair_mismatch"} <= fired
    assert "period_mismatch" in fired
    assert clean_fired > 100  # records whose only errors are the rules'


@st.composite
def rule_mutations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    code = draw(st.sampled_from(_rule_datasets()))
    ds = STD.datasets[code]
    rec = copy.deepcopy(draw(st.sampled_from(samples(code))))
    fields = _rule_fields(ds)
    for _ in range(draw(st.integers(1, 4))):
        dotted, _ = draw(st.sampled_from(fields))
        rec[dotted] = draw(st.sampled_from(_rule_values(code, dotted)))
    return code, rec


@settings(max_examples=600)
@given(rule_mutations())
def test_records_breaking_several_rules_give_identical_verdicts(
    case: tuple[str, dict[str, Any]],
) -> None:
    code, rec = case
    same(code, rec)


def test_rules_run_through_the_generated_happy_path() -> None:
    for code in _rule_datasets():
        generated, interpreted = pair(code)
        assert generated._happy is not None and interpreted._happy is None
