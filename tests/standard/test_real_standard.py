"""The validator over the packaged Data Standard V1.0: every field of every dataset is broken in
every way its definition allows, and the validator must name that field with the right code."""

from __future__ import annotations

from typing import Any

import pytest

from imsp.standard.model import load_standard
from imsp.standard.validate import ISSUES, validator_for

from .minimal import minimal_record
from .mutations import issue_path, make_condition_hold, mutated, mutations

STD = load_standard()
FIELDS = [(ds.code, path) for ds in STD.ordered() for path, _ in ds.walk()]
RULE_CODES = {k.code for k in ISSUES.values() if k.msg_code == -94} | {
    "idcard_birthday",
    "idcard_sex",
}


def test_all_sixteen_datasets_are_defined() -> None:
    assert [ds.number for ds in STD.ordered()] == list(range(1, 17))


@pytest.mark.parametrize("code", sorted(STD.datasets))
def test_minimal_record_of_every_dataset_is_valid(code: str) -> None:
    ds = STD.datasets[code]
    verdict = validator_for(ds, STD).check(minimal_record(ds, STD))
    assert verdict.errors == [] and verdict.warnings == []
    assert verdict.key is not None


@pytest.mark.parametrize(("code", "path"), FIELDS, ids=[f"{c}:{p}" for c, p in FIELDS])
def test_every_mutation_of_every_field_is_found_at_that_field(code: str, path: str) -> None:
    ds = STD.datasets[code]
    field = dict(ds.walk())[path]
    base = minimal_record(ds, STD)
    where = issue_path(ds, path)
    validator = validator_for(ds, STD)
    missed = []
    for label, value, expected in mutations(field, STD):
        verdict = validator.check(mutated(base, ds, path, value))
        found = [i for i in verdict.errors if i.field == where and i.code == expected]
        if not found or field.name not in found[0].msg:
            missed.append((label, expected, [(i.field, i.code) for i in verdict.errors]))
    assert missed == []


CONDITIONAL = [
    (ds.code, path) for ds in STD.ordered() for path, f in ds.walk() if f.required == "C"
]


@pytest.mark.parametrize(("code", "path"), CONDITIONAL, ids=[f"{c}:{p}" for c, p in CONDITIONAL])
def test_conditional_field_is_required_when_its_condition_holds(code: str, path: str) -> None:
    ds = STD.datasets[code]
    field = dict(ds.walk())[path]
    base = make_condition_hold(minimal_record(ds, STD), field.when, STD, ds)
    assert base is not None, f"extend make_condition_hold for {field.when}"
    verdict = validator_for(ds, STD).check(mutated(base, ds, path, None))
    where = issue_path(ds, path)
    assert (where, "conditional_required") in {(i.field, i.code) for i in verdict.errors}


EXAMPLES = [
    (ds.code, path)
    for ds in STD.ordered()
    for path, f in ds.walk()
    if f.example is not None and f.type not in ("list", "object")
]


@pytest.mark.parametrize(("code", "path"), EXAMPLES, ids=[f"{c}:{p}" for c, p in EXAMPLES])
def test_published_examples_pass_their_own_field_checks(code: str, path: str) -> None:
    ds = STD.datasets[code]
    example: Any = dict(ds.walk())[path].example
    verdict = validator_for(ds, STD).check(mutated(minimal_record(ds, STD), ds, path, example))
    where = issue_path(ds, path)
    own = [i for i in verdict.errors if i.field == where and i.code not in RULE_CODES]
    assert own == []
