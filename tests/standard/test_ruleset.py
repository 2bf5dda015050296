"""The supervision rule catalogue (监管规则目录) loads, is complete and rejects bad data."""

from __future__ import annotations

import re

import pytest

from imsp.standard.model import StandardDataError, load_standard
from imsp.standard.ruleset import SEVERITY_LABELS, load_rules, parse_rules

#: domain.md §D: R01–R47 minus the two not checkable on uploaded data (R32 retention, R39 disputes).
EXPECTED_IDS = [f"R{n:02d}" for n in range(1, 48) if n not in (32, 39)]

_GOOD = """
version = "1.0"
[[rules]]
id = "R01"
name = "测试规则"
citation = "《处方管理办法》第十八条"
citation_approx = false
severity = "violation"
datasets = ["prescription"]
version = 1
text = "处方有效期不超过 3 天。"
"""


def test_catalogue_lists_every_checkable_rule_of_domain_section_d() -> None:
    assert list(load_rules().ids) == EXPECTED_IDS


def test_every_rule_is_complete_and_names_real_datasets() -> None:
    datasets = set(load_standard().datasets)
    for rule in load_rules():
        assert rule.name and rule.text and rule.citation
        assert rule.severity in SEVERITY_LABELS
        assert set(rule.datasets) <= datasets
        assert rule.version >= 1
        # Chinese text, as published to regulators
        assert re.search(r"[\u4e00-\u9fff]", rule.name + rule.text)


def test_approximate_citations_are_marked_not_asserted() -> None:
    rules = load_rules()
    assert rules["R25"].citation_display == "《处方管理办法》第十八条"
    assert not rules["R25"].citation_approx
    assert rules["R20"].citation_approx
    assert rules["R20"].citation_display.endswith("（条款号待核实）")


def test_lookup_by_id() -> None:
    rules = load_rules()
    assert "R19" in rules and "R32" not in rules
    assert rules["R19"].datasets[0] == "prescription"
    assert rules["R19"].severity_label == "违规"
    with pytest.raises(KeyError):
        rules["R39"]


def test_parse_accepts_a_well_formed_file() -> None:
    cat = parse_rules(_GOOD, datasets=frozenset({"prescription"}))
    assert cat.ids == ("R01",) and len(cat) == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('severity = "violation"', 'severity = "fatal"', "severity"),
        ('datasets = ["prescription"]', 'datasets = ["recipe"]', "unknown datasets"),
        ('id = "R01"', 'id = "rule1"', "id must look like"),
        ("version = 1\n", "version = 0\n", "version"),
        ('text = "处方有效期不超过 3 天。"', 'text = ""', "text"),
        ("citation_approx = false", 'citation_approx = "no"', "citation_approx"),
        ('name = "测试规则"', 'name = "测试规则"\nextra = 1', "unknown keys"),
    ],
)
def test_parse_rejects_inconsistent_data(old: str, new: str, message: str) -> None:
    bad = _GOOD.replace(old, new, 1)
    assert bad != _GOOD
    with pytest.raises(StandardDataError, match=message):
        parse_rules(bad, datasets=frozenset({"prescription"}))


def test_parse_rejects_duplicate_and_unordered_ids() -> None:
    second = _GOOD.split("[[rules]]")[1]
    with pytest.raises(StandardDataError, match="duplicate"):
        parse_rules(_GOOD + "[[rules]]" + second, datasets=frozenset({"prescription"}))
    with pytest.raises(StandardDataError, match="id order"):
        parse_rules(
            _GOOD.replace('"R01"', '"R02"') + "[[rules]]" + second,
            datasets=frozenset({"prescription"}),
        )
