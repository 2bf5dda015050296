"""The portal's "test this rule" form: one rule run against a pasted record set, no database."""

from __future__ import annotations

from datetime import timedelta

from imsp.supervision.engine import try_rule
from tests.supervision.builders import NOW, world


def test_try_rule_on_pasted_records_finds_the_violation_and_passes_the_compliant_one() -> None:
    w = world()
    rx = w["prescription"][0]
    items = [i for i in w["prescription_item"] if i["recipeID"] == rx["recipeID"]]
    ok = try_rule("R19", {"prescription": [rx], "prescription_item": items}, now=NOW)
    assert [(o.rule_id, o.verdict.problems) for o in ok] == [("R19", [])]
    bad_items = [dict(items[0], specialDrugClass="1"), *items[1:]]
    (out,) = try_rule("R19", {"prescription": [rx], "prescription_item": bad_items}, now=NOW)
    assert out.verdict.severity == "violation"
    assert out.verdict.problems[0]["dataset"] == "prescription_item"
    assert out.verdict.problems[0]["field"] == "specialDrugClass"


def test_try_rule_reports_missing_references_as_pending_within_grace() -> None:
    rx = world()["prescription"][0]
    (out,) = try_rule("R20", {"prescription": [rx]}, now=NOW, grace=timedelta(hours=48))
    assert out.verdict.problems == []
    assert out.verdict.missing == [
        {"dataset": "outpatient", "field": "bussID", "key": rx["bussID"]}
    ]
