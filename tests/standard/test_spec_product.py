"""The published spec as a product (issue 11): an integrator can code against it alone — no
references to the platform's internal files, every supervision rule ID it mentions defined in it,
an example value for every field, several complete examples, the business flow, release date,
compatibility policy and a dated change log with reasons."""

from __future__ import annotations

import re

import pytest

from imsp.standard import spec
from imsp.standard.model import load_standard
from imsp.standard.spec.guide import CHANGES
from imsp.standard.validate import validator_for

STD = load_standard()
MD = spec.render_markdown(STD)
HTML = spec.render_html(STD)
ALL = "\n".join(MD.values())

#: What an integrator cannot open: internal documents, repository paths, developer commands.
INTERNAL = (
    "domain.md",
    "领域文档",
    "src/",
    "tests/",
    "scripts/",
    ".py",
    "请勿手工修改",
    "imsp standard",
    "pyproject",
)
#: A supervision rule ID (R01…R99) — not an ICD-10 code such as R42.x00.
RULE_ID = re.compile(r"(?<![A-Za-z0-9.])R\d{2}(?![0-9.])")


@pytest.mark.parametrize("needle", INTERNAL)
def test_spec_has_no_reference_to_internal_files_or_commands(needle: str) -> None:
    hits = [name for name, text in MD.items() if needle in text]
    assert hits == [], f"{needle!r} in {hits}"
    assert needle not in HTML


def test_every_rule_id_the_spec_mentions_is_defined_in_it() -> None:
    used = set(RULE_ID.findall(ALL))
    defined = set(re.findall(r'id="rule-(R\d{2})"', HTML))
    assert used <= defined, sorted(used - defined)


def test_the_rules_chapter_publishes_every_catalogue_rule() -> None:
    from imsp.standard.ruleset import load_rules

    chapter = MD["7-rules.md"]
    for rule in load_rules():
        assert f'<a id="rule-{rule.id}"></a>' in chapter
        for text in (rule.name, rule.severity_label):
            assert text in chapter
    assert "条款号待核实" in chapter


def test_rule_id_pattern_finds_ids_but_not_diagnosis_codes() -> None:
    assert RULE_ID.findall("监管规则 R21；诊断 R42.x00；R05") == ["R21", "R05"]


def test_release_version_and_deprecation_policy_are_stated() -> None:
    readme, appendix = MD["README.md"], MD["A-appendix.md"]
    assert f"V{STD.release}" in readme and "2026-11-30" in readme
    assert "废弃" in appendix and "standardVersion" in appendix
    assert "不会按新版本重新校验" in appendix


def test_change_log_lists_every_change_with_date_and_reason() -> None:
    appendix = MD["A-appendix.md"]
    assert "变更记录" in appendix
    for _version, date, change, reason in CHANGES:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) and reason
        assert change.replace("_", "\\_") in appendix and reason.replace("_", "\\_") in appendix
    assert sum(1 for c in CHANGES if c[0] == "V1.1") >= 8


def test_every_field_table_has_an_example_column_filled_for_scalars() -> None:
    text = MD["3-06-uploadPrescriptionInfo.md"]
    header = next(line for line in text.splitlines() if line.startswith("| 代码 |"))
    assert "| 示例 |" in header
    row = next(line for line in text.splitlines() if line.startswith("| `recipeID` |"))
    assert row.split(" | ")[6].strip().startswith("`")


def test_business_flow_chapter_names_order_keys_and_late_references() -> None:
    flow = MD["8-flow.md"]
    assert "一次在线复诊产生哪些数据" in flow
    for key in ("bussID", "recipeID", "patientId", "applyId"):
        assert f"`{key}`" in flow
    assert "-95" in flow and "48 小时" in flow


def test_clients_chapter_has_java_and_csharp() -> None:
    clients = MD["9-clients.md"]
    assert "```java" in clients and "java.net.http" in clients
    assert "```csharp" in clients and "HttpClient" in clients
    assert "40102" in clients  # token error → refresh and resend


MULTI = [ds for ds in STD.ordered() if ds.code != "organization"]  # one record per institution


@pytest.mark.parametrize("ds", MULTI, ids=lambda d: d.code)
def test_more_examples_of_every_service_validate(ds: object) -> None:
    from imsp.standard.spec.services import case_examples

    cases = case_examples(ds)  # type: ignore[arg-type]
    assert cases, "every service shows at least one more complete example"
    v = validator_for(ds)  # type: ignore[arg-type]
    for title, records in cases:
        for rec in records:
            verdict = v.check(rec)
            assert verdict.errors == [], (title, verdict.errors)
