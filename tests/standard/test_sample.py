"""The test-data generator: valid, deterministic, realistic, built from the definitions."""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from imsp.standard import checks
from imsp.standard.demo import DEMO_ORG_CODE
from imsp.standard.jsonschema import dataset_schema, format_checker
from imsp.standard.model import load_standard
from imsp.standard.sample import (
    DEFAULT_START,
    SampleError,
    dependency_order,
    generate,
    generate_all,
    vocab,
)
from imsp.standard.sample.business import Business
from imsp.standard.sample.engine import Filler
from imsp.standard.sample.facts import BLOCK_KEYS, FACTS
from imsp.standard.sample.world import World, at
from imsp.standard.validate import validator_for

STD = load_standard()
CODES = sorted(STD.datasets)


@cache
def world(count: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    return generate_all(count, seed=seed)


@cache
def schema_validator(code: str) -> Draft202012Validator:
    return Draft202012Validator(dataset_schema(code), format_checker=format_checker())


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize(("count", "seed"), [(40, 0), (40, 1), (3, 5)])
def test_generated_records_pass_the_validator_and_the_json_schema(
    code: str, count: int, seed: int
) -> None:
    records = world(count, seed)[code]
    assert records
    v = validator_for(code)
    schema = schema_validator(code)
    for i, rec in enumerate(records):
        verdict = v.check(rec, i)
        assert verdict.errors == [], (code, i, verdict.errors)
        assert verdict.warnings == [], (code, i, verdict.warnings)
        problems = [e.message for e in schema.iter_errors(rec)]
        assert problems == [], (code, i, problems)
    batch = [e.message for e in schema.iter_errors(records)]
    assert batch == [], (code, batch)


@pytest.mark.parametrize("count", [1, 2])
def test_tiny_counts_still_give_valid_records(count: int) -> None:
    for code, records in generate_all(count, seed=3).items():
        assert len(records) >= (1 if code in ("organization", "prescription_item") else count)
        for i, rec in enumerate(records):
            assert validator_for(code).check(rec, i).errors == [], (code, i)


def test_every_field_comes_from_the_realism_layer() -> None:
    """No field of any dataset falls back to the generic filler: a new field needs realism in
    ``facts.py`` (it is still generated validly meanwhile), and a fact for a removed field is
    reported too."""
    w = World(STD, seed=0, org_code=DEMO_ORG_CODE, org_name=None, bound=30, start=DEFAULT_START)
    b = Business(w)
    generic: dict[str, set[str]] = {}
    stale: dict[str, set[str]] = {}
    for code, provider in FACTS.items():
        ds = STD.dataset(code)
        top = {f.code for f in ds.fields}
        for i in range(30):
            for facts in provider(b, i):
                filler = Filler(ds, STD, anchor=at(w.start, 9))
                filler.record(facts, w.rng("t", i))
                if filler.generic - {"updateTime"}:
                    generic.setdefault(code, set()).update(filler.generic)
                extra = set(facts) - top - BLOCK_KEYS
                if extra:
                    stale.setdefault(code, set()).update(extra)
    where = "src/imsp/standard/sample/basedata.py or care.py"
    assert set(FACTS) == set(STD.datasets), f"a dataset has no realism provider in {where}"
    assert generic == {}, f"fields generated only generically — give them realism in {where}"
    assert stale == {}, f"facts for fields the datasets no longer define — remove them from {where}"


# --------------------------------------------------------------------------- determinism and API


def test_same_seed_same_records_other_seed_other_records() -> None:
    a = generate("prescription", 15, seed=11)
    b = generate("uploadPrescriptionInfo", 15, seed=11)
    c = generate("prescription", 15, seed=12)
    assert json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)
    assert a != c


def test_records_are_deterministic_across_processes() -> None:
    import subprocess
    import sys

    code = (
        "import json; from imsp.standard.sample import generate;"
        "print(json.dumps(generate('lis', 5, seed=4), ensure_ascii=False, sort_keys=True))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == json.dumps(generate("lis", 5, seed=4), ensure_ascii=False, sort_keys=True)


def test_span_days_puts_the_business_events_on_that_many_days() -> None:
    spread = generate_all(60, seed=5)
    one_day = generate_all(60, seed=5, span_days=1)  # same arguments otherwise: not cached as one
    start = f"{DEFAULT_START:%Y-%m-%d}"
    assert {r["visitDate"][:10] for r in one_day["outpatient"]} == {start}
    assert {r["datein"][:10] for r in one_day["prescription"]} == {start}
    assert len({r["visitDate"][:10] for r in spread["outpatient"]}) > 10
    assert (
        max(r["visitDate"][:10] for r in spread["outpatient"]) <= f"{DEFAULT_START.replace(day=30)}"
    )
    assert len(one_day["outpatient"]) == len(spread["outpatient"])


def test_span_days_below_one_is_a_clear_error() -> None:
    with pytest.raises(SampleError, match="span_days"):
        generate("outpatient", 3, span_days=0)


def test_datasets_are_accepted_by_code_service_and_path() -> None:
    for name in ("payment", "uploadPayment", "/uploadPayment"):
        assert len(generate(name, 2)) == 2


def test_unknown_dataset_and_invalid_institution_are_clear_errors() -> None:
    with pytest.raises(SampleError, match="未知的数据集"):
        generate("nonsense", 1)
    with pytest.raises(SampleError, match="统一社会信用代码"):
        generate("patient", 1, org_code="12130000MB1A2B3C4X")


def test_another_institution_is_used_everywhere() -> None:
    org = "12130100401703058A"
    assert checks.is_uscc(org)
    data = generate_all(5, seed=2, org_code=org, org_name="石家庄市示范医院")
    for code, records in data.items():
        for rec in records:
            assert rec["organID"] == org, code
            assert rec["organName"] == "石家庄市示范医院", code


def test_organization_has_one_record_and_items_cover_whole_prescriptions() -> None:
    assert len(generate("organization", 5)) == 1
    items = generate("prescription_item", 4)
    rx = generate("prescription", 4)
    assert {i["recipeID"] for i in items} == {r["recipeID"] for r in rx}
    assert len(items) == sum(r["itemCount"] for r in rx)


def test_both_kinds_of_internet_hospital_are_generated() -> None:
    kinds = {generate("organization", 1, seed=s)[0]["internetHospitalType"] for s in (0, 1)}
    assert kinds == {"1", "2"}
    relying = generate("organization", 1, seed=1)[0]
    assert relying["relyOrgan"] and checks.is_uscc(relying["relyOrgan"]["organID"])


def test_dependency_order_puts_referenced_datasets_first() -> None:
    order = [d.code for d in dependency_order()]
    assert order[:3] == ["organization", "department", "doctor"]
    assert sorted(order) == CODES
    for ds in dependency_order():
        for ref in ds.references:
            if {ds.code, ref} != {"department", "doctor"}:
                assert order.index(ref) < order.index(ds.code), (ds.code, ref)


def test_every_prescription_item_carries_a_national_drug_code() -> None:
    """Supervision's R31 flags a drug without 国家药品编码: a compliant world has none, herbal
    (中药饮片) prescriptions included."""
    items = generate_all(200, seed=11)["prescription_item"]
    herbal = [i for i in items if i["drcode"] in {d.code for d in vocab.HERBS.values()}]
    assert herbal, "the sample holds herbal prescriptions"
    assert all(i["countrydrcode"] for i in items)
    by_drug = {(i["drcode"], i["countrydrcode"]) for i in items}
    assert len({c for c, _ in by_drug}) == len(by_drug)  # one code per drug


@pytest.mark.parametrize("count", [12, 2000])
def test_the_agreement_in_force_was_effective_before_the_first_business_day(count: int) -> None:
    """Supervision's R17 needs a consent form (知情同意书) in force on each visit day: the version
    in force of every agreement is effective before the world's start, however many versions a
    large world has (they used to be released 90 days apart, decades into the future)."""
    current = [a for a in generate("agreement", count) if a["status"] == "1"]
    assert {a["protocolType"] for a in current} == {"1", "2", "3", "4", "5"}
    for a in current:
        assert a["expireDate"] is None
        assert f"{a['effectiveDate']}" < f"{DEFAULT_START}", (a["version"], a["effectiveDate"])


def test_liability_insurance_covers_business_days_running_into_the_next_year() -> None:
    """R07: an insured doctor's policy is in force on every business day."""
    start = date(2026, 12, 20)
    data = generate_all(20, seed=3, start=start)
    last = max(f"{v['visitDate']}"[:10] for v in data["outpatient"])
    assert last.startswith("2027")
    insured = [d for d in data["doctor"] if d["policyNo"]]
    assert insured
    for d in insured:
        assert f"{d['policyStartDate']}" <= f"{start}" and f"{d['policyEndDate']}" >= last


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary_codes_exist_in_the_code_tables() -> None:
    t = STD.tables
    for p in vocab.PROFILES:
        assert set(p.icd) <= t["icd10"].codes, p.key
        assert all(c == "" or c in t["icd10_tcm"].codes for c in p.tcm), p.key
        assert set(p.subjects) <= t["subject"].codes, p.key
        assert set(p.drugs) <= set(vocab.DRUGS), p.key
        assert {h for h, _ in p.herbs} <= set(vocab.HERBS), p.key
        assert set(p.labs) <= set(vocab.PANELS) and set(p.exams) <= set(vocab.EXAMS), p.key
    drugs = (*vocab.DRUGS.values(), *vocab.HERBS.values())
    assert len({d.national_code for d in drugs}) == len(drugs)
    for d in drugs:
        assert d.form == "" or d.form in t["dosage_form"].codes, d.name
        assert d.freq in t["frequency"].codes and d.route in t["route"].codes, d.name
        if d.kind == "herb":  # 医保中药饮片代码: T, standard 00 (药典), efficacy class, name
            assert re.fullmatch(r"T00(0[1-9]|1\d|2[01])\d{5}", d.national_code), d.name
    for dept in vocab.DEPARTMENTS:
        assert dept.subject in t["subject"].codes and dept.dept_type in t["dept_type"].codes
        assert dept.practice == "" or dept.practice in t["practice_scope"].codes
    for e in vocab.EXAMS.values():
        assert e.exam_type in t["exam_type"].codes
    for h in vocab.PARTNERS:
        assert h.city in t["region"].codes and h.category in t["org_category"].codes
