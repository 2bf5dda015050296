"""Generated JSON Schemas: well-formed, and in agreement with the validator (valid ⇔ valid)
except for the documented rule kinds JSON Schema cannot express."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from imsp.standard.jsonschema import (
    CUSTOM_FORMATS,
    ENUM_LIMIT,
    NOT_EXPRESSIBLE,
    code_table_json,
    dataset_schema,
    format_checker,
)
from imsp.standard.model import Rule, load_standard
from imsp.standard.validate import Validator, validator_for

from . import toy
from .minimal import minimal_record
from .mutations import make_condition_hold, mutated, mutations

STD = load_standard()
FC = format_checker(STD)


@functools.cache
def schema_validator(code: str) -> Draft202012Validator:
    schema = dataset_schema(code, STD)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FC)


@pytest.mark.parametrize("code", sorted(STD.datasets))
def test_schema_is_valid_2020_12_and_accepts_a_record_or_a_batch(code: str) -> None:
    ds = STD.datasets[code]
    js = schema_validator(code)
    rec = minimal_record(ds, STD)
    assert list(js.iter_errors(rec)) == []
    assert js.is_valid([rec, rec])
    assert not js.is_valid([])
    assert not js.is_valid("x")
    schema = dataset_schema(ds, STD)
    assert set(schema["$defs"]["record"]["required"]) == {f.code for f in ds.fields if not f.since}
    assert json.loads(json.dumps(schema, ensure_ascii=False)) == schema  # publishable as is


def test_batch_size_limit_is_optional() -> None:
    ds = STD.datasets["prescription"]
    schema = dataset_schema(ds, STD, max_items=2)
    js = Draft202012Validator(schema, format_checker=FC)
    rec = minimal_record(ds, STD)
    assert js.is_valid([rec, rec]) and not js.is_valid([rec, rec, rec])


AGREEMENT = [(ds.code, path) for ds in STD.ordered() for path, _ in ds.walk()]


@pytest.mark.parametrize(("code", "path"), AGREEMENT, ids=[f"{c}:{p}" for c, p in AGREEMENT])
def test_schema_rejects_every_mutation_the_validator_rejects(code: str, path: str) -> None:
    ds = STD.datasets[code]
    field = dict(ds.walk())[path]
    js = schema_validator(code)
    base = minimal_record(ds, STD)
    cases = [
        (label, mutated(base, ds, path, value))
        for label, value, _ in mutations(field, STD)
        # the code system's table is chosen at run time (NOT_EXPRESSIBLE["code_system"])
        if not (field.system and label == "code outside table")
    ]
    if field.required == "C":
        holding = make_condition_hold(base, field.when, STD, ds)
        assert holding is not None
        cases.append(("conditional empty", mutated(holding, ds, path, None)))
    disagree = []
    for label, rec in cases:
        if validator_for(ds, STD).check(rec).ok or js.is_valid(rec):
            disagree.append(label)
    assert disagree == []


def test_big_code_tables_use_a_format_instead_of_an_enum() -> None:
    big = [t for t in STD.tables.values() if len(t.codes) > ENUM_LIMIT]
    assert big, "icd10 is expected to be larger than the enum limit"
    for ds in STD.ordered():
        record = dataset_schema(ds, STD)["$defs"]["record"]
        for path, f in ds.walk():
            if f.table in {t.name for t in big} and "." not in path and not f.system:
                strict = record["properties"][path]
                strict = strict["anyOf"][-1] if "anyOf" in strict else strict
                assert "enum" not in strict
                assert strict["format"] in (f"code:{f.table}", f"codes:{f.table}")


def test_every_format_the_schemas_use_is_documented_and_checked() -> None:
    used: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("format"), str):
                used.add(node["format"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    for ds in STD.ordered():
        collect(dataset_schema(ds, STD))
    templates = {n.split(":")[0] + ":" for n in CUSTOM_FORMATS if ":" in n}
    for name in used:
        generic = name.split(":")[0] + ":" if ":" in name else name
        if name.startswith("decimal("):
            generic = "decimal(p,s)"
        assert generic in CUSTOM_FORMATS or generic in templates, name
        assert name in FC.checkers, name


def test_code_table_json_lists_codes_with_aliases() -> None:
    doc = code_table_json(STD.tables["cert_type"])
    assert doc["name"] == "cert_type" and doc["title"]
    first = doc["codes"][0]
    assert set(first) == {"code", "name", "aliases", "note"}
    assert any(c["aliases"] for c in doc["codes"])


# --------------------------------------------------------------------------- the toy dataset

TOY_STD = toy.standard()
TOY_FC = format_checker(TOY_STD)
EXPRESSIBLE = toy.dataset(
    rules=(
        Rule("idcard", {"id": "patientCertID", "type": "patientCertType"}),
        Rule("one_of", {"fields": ["contactEmail", "contactWechat"]}),
    )
)
EXPRESSIBLE_STD = toy.standard(EXPRESSIBLE)
EXPRESSIBLE_JS = Draft202012Validator(
    dataset_schema(EXPRESSIBLE, EXPRESSIBLE_STD), format_checker=TOY_FC
)
EXPRESSIBLE_V = Validator(EXPRESSIBLE, toy.TABLES)


def test_not_expressible_rules_are_annotated_and_only_the_validator_enforces_them() -> None:
    schema = dataset_schema(toy.TOY, TOY_STD)
    kinds = {r["kind"]: r["expressed"] for r in schema["$defs"]["record"]["x-imsp-rules"]}
    assert kinds == {
        "idcard": False,  # birthday/sex agreement is not expressible
        "order": False,
        "sum": False,
        "product": False,
        "pair": False,
        "one_of": True,
        "not_equal": False,
    }
    assert {"order", "sum", "product", "pair", "not_equal"} <= set(NOT_EXPRESSIBLE)
    js = Draft202012Validator(schema, format_checker=TOY_FC)
    v = Validator(toy.TOY, toy.TABLES)
    for rec in (
        toy.record(checkDate="2025-06-01 09:00:00"),
        toy.record(totalFee=99),
        toy.record(icdName="x"),
        toy.record(auditCertID="440524188001010014"),
        toy.record(sex="1"),
    ):
        assert js.is_valid(rec) and not v.check(rec).ok


POOL: list[Any] = [
    None,
    "",
    " ",
    "\u3000",
    "abc",
    "张三",
    "Z" * 60,
    12345,
    1.5,
    0,
    5,
    151,
    -1,
    True,
    [],
    {},
    ["x"],
    {"a": 1},
    "1",
    "2",
    "3",
    "01",
    "03",
    "9",
    "bid",
    "99",
    "J06.900",
    "J06.900|I10.x00",
    "J06.900||I10.x00",
    "J06.900|X",
    "12.345",
    "30.5",
    "3e1",
    "2025-06-01",
    "2025-02-30",
    "2025-06-01 10:00:00",
    "2025-06-01 24:00:00",
    "91110000802100433B",
    "91110000802100433A",
    toy.PATIENT_ID,
    "110105194912310021",
    "13800138000",
    "0311-87654321",
    "050000",
    "https://a.cn/x",
    "ftp://a.cn",
]
PATHS = [f.code for f in toy.FIELDS] + [f"items.{f.code}" for f in toy.ITEM_FIELDS]


def _set(rec: dict[str, Any], path: str, value: Any) -> None:
    if path.startswith("items."):
        items = rec["items"]
        if isinstance(items, list) and items and isinstance(items[0], dict):
            items[0][path[6:]] = value
    else:
        rec[path] = value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(POOL)), max_size=4))
def test_validator_and_schema_agree_on_random_records(changes: list[tuple[str, Any]]) -> None:
    rec = toy.record()
    rec["items"] = rec["items"][:1]
    rec["totalFee"] = rec["items"][0]["amount"]
    for path, value in changes:
        _set(rec, path, copy.deepcopy(value))
    verdict = EXPRESSIBLE_V.check(rec)
    js = EXPRESSIBLE_JS
    assert verdict.ok == js.is_valid(rec), (
        verdict.errors,
        [e.message for e in js.iter_errors(rec)],
    )
