"""The validator on a hand-built dataset (``toy``): every check, every issue code, every rule."""

from __future__ import annotations

from typing import Any

import pytest

from imsp.standard import protocol
from imsp.standard.model import Condition, Rule, StandardDataError
from imsp.standard.validate import ISSUES, Issue, Validator, Verdict, validator_for

from . import toy

STD = toy.standard()
V = Validator(toy.TOY, toy.TABLES)


def check(**changes: Any) -> Verdict:
    return V.check(toy.record(**changes))


def codes_at(verdict: Verdict, path: str) -> set[str]:
    return {i.code for i in verdict.errors if i.field == path}


def only_error(verdict: Verdict) -> Issue:
    assert len(verdict.errors) == 1, verdict.errors
    return verdict.errors[0]


# --------------------------------------------------------------------------- the happy path


def test_valid_record_has_no_issues_and_is_stored_as_given() -> None:
    rec = toy.record()
    verdict = V.check(rec, index=4)
    assert verdict.ok and verdict.errors == [] and verdict.warnings == []
    assert verdict.index == 4
    assert verdict.key == "RX0001"
    assert verdict.record is rec  # nothing to normalise: no copy


def test_optional_nodes_may_be_null_or_empty_string() -> None:
    for value in (None, "", "  "):
        verdict = check(birthday=value, homepage=value, checkDate=value, address=value)
        assert verdict.ok, verdict.errors


def test_check_many_numbers_records_by_position() -> None:
    verdicts = V.check_many([toy.record(), "x", toy.record(recipeID="")])
    assert [v.index for v in verdicts] == [0, 1, 2]
    assert [v.ok for v in verdicts] == [True, False, False]


# --------------------------------------------------------------------------- presence


def test_missing_node_is_reported_even_for_optional_fields() -> None:
    rec = toy.record()
    del rec["homepage"]
    del rec["recipeID"]
    verdict = V.check(rec)
    assert [(i.field, i.code) for i in verdict.errors] == [
        ("recipeID", "node_missing"),
        ("homepage", "node_missing"),
    ]
    assert verdict.key is None and verdict.record is None


@pytest.mark.parametrize("empty", [None, "", "   ", "\u3000", "\t\n"])
def test_required_field_rejects_null_empty_and_blank(empty: Any) -> None:
    issue = only_error(check(patientName=empty))
    assert (issue.field, issue.code) == ("patientName", "required")
    assert issue.msg.startswith("患者姓名(patientName) 为必填项")


def test_required_int_and_decimal_reject_empty_string() -> None:
    verdict = check(age="", totalFee="")
    assert codes_at(verdict, "age") == {"required"}
    assert codes_at(verdict, "totalFee") == {"required"}


def test_conditional_field_required_only_when_condition_holds() -> None:
    assert check(recipeType="1", packetsNum=None).ok
    rec = toy.record(recipeType="3", packetsNum=None)
    for item in rec["items"]:
        item["decoction"] = "先煎"
    issue = only_error(V.check(rec))
    assert (issue.field, issue.code) == ("packetsNum", "conditional_required")
    assert "中药饮片处方必填" in issue.msg


def test_numeric_condition_holds_for_numbers_only_when_not_empty() -> None:
    # age ≥ 6 ⇒ patientCertID required; age < 6 ⇒ guardianName required
    assert codes_at(check(patientCertID=""), "patientCertID") == {"conditional_required"}
    young = check(age=3, patientCertID="", guardianName=None)
    assert codes_at(young, "patientCertID") == set()
    assert codes_at(young, "guardianName") == {"conditional_required"}


def test_numeric_condition_accepts_numeric_string() -> None:
    verdict = check(age="3", guardianName="")
    assert codes_at(verdict, "age") == {"type"}  # the int field itself is still wrong
    assert codes_at(verdict, "guardianName") == {"conditional_required"}


def test_condition_on_code_compares_canonical_codes() -> None:
    ds = toy.dataset(
        fields=(
            *toy.FIELDS,
            toy.f(
                "passportNote",
                "string",
                "C",
                length=10,
                when=(Condition("patientCertType", "in", ["03"]),),
            ),
        ),
        rules=(),
    )
    v = Validator(ds, toy.TABLES)
    verdict = v.check(toy.record(patientCertType="2", passportNote=""))  # 2 = alias of 03
    assert codes_at(verdict, "passportNote") == {"conditional_required"}
    assert v.check(toy.record(patientCertType="01", passportNote="")).ok


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize("value", [12345, 1.5, True, ["x"], {"a": 1}])
def test_string_field_rejects_non_strings(value: Any) -> None:
    issue = only_error(check(patientName=value))
    assert (issue.field, issue.code) == ("patientName", "type")


def test_code_field_rejects_number_even_if_it_looks_like_a_code() -> None:
    assert codes_at(check(sex=1), "sex") == {"type"}


@pytest.mark.parametrize("value", [True, 75.0, 75.5, "75", [75]])
def test_int_field_accepts_json_integers_only(value: Any) -> None:
    assert codes_at(check(age=value), "age") == {"type"}


@pytest.mark.parametrize("value", [-1, 151])
def test_int_outside_bounds_is_range(value: int) -> None:
    issues = check(age=value, guardianName="监护人").errors
    assert [(i.code, i.msg) for i in issues] == [("range", f"年龄(age) 超出范围 [0, 150]：{value}")]


@pytest.mark.parametrize(
    ("total", "amount"), [(30.5, 5.5), ("30.5", 5.5), ("30.50", "5.50"), (30, 5), ("30", "5")]
)
def test_decimal_accepts_number_or_plain_numeric_string(total: Any, amount: Any) -> None:
    rec = toy.record(totalFee=total)
    rec["items"][1].update(amount=amount, price=amount)
    assert V.check(rec).ok


@pytest.mark.parametrize(
    "value", ["30,5", "3e1", " 30.5", "+30.5", "30.", ".5", "NaN", True, float("nan"), [1]]
)
def test_decimal_rejects_other_forms(value: Any) -> None:
    assert "type" in codes_at(check(totalFee=value), "totalFee")


def test_decimal_scale_error_names_field_and_value() -> None:
    issue = only_error(check(totalFee=12.345))  # the sum rule skips a field with errors
    assert issue.msg == "处方金额(totalFee) 小数位超过 2 位：12.345"


def test_decimal_scale_is_measured_on_the_string_as_sent() -> None:
    assert codes_at(check(totalFee="30.500"), "totalFee") == {"scale"}


def test_decimal_integer_digits_beyond_precision() -> None:
    verdict = check(totalFee=123456789.5)  # decimal(10,2) allows 8 integer digits
    assert "precision" in codes_at(verdict, "totalFee")
    big = check(totalFee=1e20)
    assert "precision" in codes_at(big, "totalFee")


def test_decimal_below_minimum_is_range() -> None:
    assert "range" in codes_at(check(totalFee="-1"), "totalFee")


def test_length_counts_characters_not_bytes() -> None:
    assert check(patientName="张" * 20).ok
    issue = only_error(check(patientName="张" * 21))
    assert issue.code == "length" and "长度超过 20 个字符（21）" in issue.msg


def test_long_values_are_truncated_in_messages() -> None:
    issue = only_error(check(patientName="x" * 500))
    assert len(issue.msg) < 120 and issue.msg.endswith("…")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("birthday", "1949-02-29", "date"),
        ("birthday", "1949/12/31", "date"),
        ("birthday", "1949-12-31 00:00:00", "date"),
        ("birthday", "１９４９-12-31", "date"),
        ("datein", "2025-06-01T10:00:00", "datetime"),
        ("datein", "2025-06-01 24:00:00", "datetime"),
        ("datein", "2025-06-01 10:00", "datetime"),
        ("datein", "2025-13-01 10:00:00", "datetime"),
        ("datein", 1748743200, "type"),
    ],
)
def test_dates_and_datetimes_need_exact_format_and_real_calendar(
    field: str, value: Any, code: str
) -> None:
    assert code in codes_at(check(**{field: value}), field)


def test_leap_day_is_a_valid_date() -> None:
    ok = check(birthday="2024-02-29", patientCertType="03", datein="2024-02-29 23:59:59")
    assert codes_at(ok, "birthday") == set() and codes_at(ok, "datein") == set()


# --------------------------------------------------------------------------- code tables


def test_code_outside_value_set_is_rejected_naming_the_table() -> None:
    issue = only_error(check(sex="3"))
    assert issue.code == "value_set"
    assert issue.msg == "性别(sex) 代码不在《sex 代码》值域内：3"


def test_code_alias_is_replaced_by_canonical_code_with_warning() -> None:
    rec = toy.record(patientCertType="1")
    verdict = V.check(rec)
    assert verdict.ok
    assert [(w.field, w.code) for w in verdict.warnings] == [("patientCertType", "code_alias")]
    assert verdict.record is not None and verdict.record["patientCertType"] == "01"
    assert rec["patientCertType"] == "1"  # the input is not modified


def test_multi_value_codes_are_checked_one_by_one() -> None:
    verdict = check(icdCode="J06.900|X99", icdName="a|b")
    issue = only_error(verdict)
    assert (issue.code, issue.msg) == (
        "value_set",
        "诊断编码(icdCode) 代码不在《icd 代码》值域内：X99",
    )


@pytest.mark.parametrize("value", ["J06.900||I10.x00", "J06.900|", "|J06.900"])
def test_multi_value_with_empty_part_is_multi_value(value: str) -> None:
    assert "multi_value" in codes_at(check(icdCode=value), "icdCode")


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("organID", "91110000802100433A", "uscc"),
        ("organID", "9111000080210043", "uscc"),
        ("doctorCertID", "440524188001010015", "idcard"),
        ("doctorCertID", "44052418800101001x", "idcard"),
        ("mobile", "1380013800", "phone"),
        ("mobile", "+8613800138000", "phone"),
        ("homepage", "ftp://example.org", "url"),
        ("homepage", "https://exa mple.org", "url"),
    ],
)
def test_format_errors(field: str, value: str, code: str) -> None:
    issue = only_error(check(**{field: value}))
    assert (issue.field, issue.code) == (field, code)
    assert value in issue.msg


def test_fixed_line_phone_is_accepted() -> None:
    assert check(mobile="0311-87654321").ok
    assert check(mobile="031187654321-801").ok


# --------------------------------------------------------------------------- nesting


def test_list_element_issues_carry_index_paths() -> None:
    rec = toy.record()
    rec["items"][1]["amount"] = "abc"
    rec["items"][1]["frequency"] = "tid"
    verdict = V.check(rec)
    assert {(i.field, i.code) for i in verdict.errors} == {
        ("items[1].amount", "type"),
        ("items[1].frequency", "value_set"),
    }
    assert verdict.errors[0].msg.startswith("金额(items[1].amount)")


def test_empty_required_list_needs_min_items() -> None:
    issue = only_error(V.check(toy.record(items=[], totalFee=0)))
    assert (issue.field, issue.code) == ("items", "min_items")
    assert issue.msg_code == -99


def test_list_element_must_be_object() -> None:
    rec = toy.record()
    rec["items"].append("x")
    assert codes_at(V.check(rec), "items[2]") == {"not_object"}


def test_list_must_be_array() -> None:
    assert codes_at(check(items={"itemName": "x"}), "items") == {"type"}


def test_sub_field_condition_refers_to_sibling_then_to_record_root() -> None:
    rec = toy.record(recipeType="3", packetsNum=7)
    rec["items"][0].update(frequency="99", freqNote="")
    rec["items"][1]["decoction"] = "先煎"
    verdict = V.check(rec)
    assert {(i.field, i.code) for i in verdict.errors} == {
        ("items[0].freqNote", "conditional_required"),
        ("items[0].decoction", "conditional_required"),
    }


def test_object_sub_fields_use_dotted_paths() -> None:
    verdict = check(address={"province": "", "postcode": "05000"})
    assert {(i.field, i.code) for i in verdict.errors} == {
        ("address.province", "required"),
        ("address.postcode", "postcode"),
    }
    assert codes_at(check(address={"province": "河北"}), "address.postcode") == {"node_missing"}


def test_unknown_nodes_are_dropped_with_warnings_at_every_level() -> None:
    rec = toy.record(extra=1)
    rec["items"][0]["colour"] = "red"
    verdict = V.check(rec)
    assert verdict.ok
    assert [(w.field, w.code) for w in verdict.warnings] == [
        ("items[0].colour", "unknown_field"),
        ("extra", "unknown_field"),
    ]
    assert verdict.record is not None
    assert "extra" not in verdict.record and "colour" not in verdict.record["items"][0]
    assert "colour" in rec["items"][0]  # input untouched


# --------------------------------------------------------------------------- whole records


@pytest.mark.parametrize("value", [None, [], "x", 1, [{"recipeID": "1"}]])
def test_record_that_is_not_an_object(value: Any) -> None:
    issue = only_error(V.check(value, index=3))
    assert (issue.field, issue.code, issue.msg_code) == ("", "not_object", -98)


def test_empty_object_is_empty() -> None:
    issue = only_error(V.check({}))
    assert (issue.code, issue.msg_code) == ("empty", -98)


def test_every_problem_is_collected_in_message_order() -> None:
    rec = toy.record(organID="x", recipeID=None, sex=5, age=151, datein="2025-06-31 10:00:00")
    del rec["homepage"]
    rec["items"][0]["price"] = "1.23456"
    verdict = V.check(rec)
    assert [(i.field, i.code) for i in verdict.errors] == [
        ("organID", "uscc"),
        ("recipeID", "required"),
        ("sex", "type"),
        ("age", "range"),
        ("datein", "datetime"),
        ("homepage", "node_missing"),
        ("items[0].price", "scale"),
    ]


def test_key_joins_key_fields_and_is_none_when_one_is_empty() -> None:
    v = Validator(toy.dataset(key=("recipeID", "age")), toy.TABLES)
    assert v.check(toy.record()).key == "RX0001|75"
    assert v.check(toy.record(recipeID=" ")).key is None


# --------------------------------------------------------------------------- rules


def test_idcard_rule_checks_resident_id_numbers_only() -> None:
    bad = "11010519491231002Y"
    assert codes_at(check(patientCertID=bad), "patientCertID") == {"idcard"}
    assert codes_at(check(patientCertID=bad, patientCertType="1"), "patientCertID") == {"idcard"}
    assert check(patientCertID="E12345678", patientCertType="03").ok


def test_idcard_rule_checks_birthday_and_sex_against_the_number() -> None:
    verdict = check(birthday="1950-01-01", sex="1")
    assert [(i.field, i.code) for i in verdict.errors] == [
        ("birthday", "idcard_birthday"),
        ("sex", "idcard_sex"),
    ]
    assert "1949-12-31" in verdict.errors[0].msg
    assert check(sex="0").ok  # 未知的性别 is not a contradiction


def test_order_rule_reports_the_earlier_later_field() -> None:
    issue = only_error(check(checkDate="2025-06-01 09:59:59"))
    assert (issue.field, issue.code, issue.msg_code) == ("checkDate", "time_order", -94)
    assert (
        issue.msg
        == "审方时间(checkDate) 早于 开方时间(datein)：2025-06-01 09:59:59 < 2025-06-01 10:00:00"
    )


def test_sum_rule_allows_one_cent() -> None:
    assert check(totalFee=30.51).ok
    assert check(totalFee="30.49").ok
    issue = only_error(check(totalFee=30.52))
    assert (issue.field, issue.code) == ("totalFee", "sum_mismatch")


def test_product_rule_checks_each_element() -> None:
    rec = toy.record(totalFee=26.5)
    rec["items"][0]["amount"] = 21
    issue = only_error(V.check(rec))
    assert (issue.field, issue.code) == ("items[0].amount", "product_mismatch")


def test_pair_rule_counts_multi_value_parts() -> None:
    issue = only_error(check(icdName="上呼吸道感染"))
    assert (issue.field, issue.code) == ("icdName", "pair_mismatch")


def test_one_of_rule_needs_one_non_empty_field() -> None:
    issue = only_error(check(contactEmail=" ", contactWechat=None))
    assert (issue.field, issue.code) == ("contactEmail|contactWechat", "one_of")
    assert check(contactEmail=None, contactWechat="wx").ok


def test_not_equal_rule() -> None:
    issue = only_error(check(auditCertID="440524188001010014"))
    assert (issue.field, issue.code) == ("auditCertID", "not_equal")


def test_rules_skip_fields_that_already_have_errors() -> None:
    verdict = check(checkDate="2025-06-01 9:00:00", totalFee="abc", patientCertID="123")
    assert {(i.field, i.code) for i in verdict.errors} == {
        ("checkDate", "datetime"),
        ("totalFee", "type"),
        ("patientCertID", "idcard"),
    }


def test_rule_code_override_is_used() -> None:
    ds = toy.dataset(rules=(Rule("pair", {"fields": ["icdCode", "icdName"]}, code="R_PAIR"),))
    issue = only_error(Validator(ds, toy.TABLES).check(toy.record(icdName="x")))
    assert (issue.code, issue.msg_code) == ("R_PAIR", -94)


# --------------------------------------------------------------------------- catalogue, factory


def test_issue_catalogue_maps_to_receipt_codes() -> None:
    for kind in ISSUES.values():
        assert kind.msg_code in protocol.RECORD, kind
        assert kind.title and (kind.severity == "warning") == (kind.msg_code == 200)
    expected = {
        -99: {"node_missing", "required", "conditional_required", "min_items"},
        -98: {"not_object", "empty"},
        -97: {"value_set"},
        -94: {"time_order", "sum_mismatch", "product_mismatch", "pair_mismatch", "one_of"},
    }
    for msg_code, codes in expected.items():
        assert codes <= {k.code for k in ISSUES.values() if k.msg_code == msg_code}


def test_validator_for_finds_dataset_by_code_service_or_path_and_caches() -> None:
    v = validator_for("toy", STD)
    assert validator_for("uploadToy", STD) is v
    assert validator_for("/uploadToy", STD) is v
    assert validator_for(toy.TOY, STD) is v
    with pytest.raises(KeyError):
        validator_for("nope", STD)


def test_definition_errors_fail_at_compile_time() -> None:
    bad_when = toy.f("x", "string", "C", length=1, when=(Condition("nope", "in", ["1"]),))
    with pytest.raises(StandardDataError, match="nope"):
        Validator(toy.dataset(fields=(*toy.FIELDS, bad_when)), toy.TABLES)
    with pytest.raises(StandardDataError, match="unknown field"):
        Validator(toy.dataset(rules=(Rule("order", {"fields": ["x1"]}),)), toy.TABLES)
    with pytest.raises(StandardDataError, match="string fields only"):
        Validator(toy.dataset(fields=(toy.f("n", "int", table="sex"),), rules=()), toy.TABLES)


def test_unknown_node_is_reported_even_when_a_defined_node_is_missing() -> None:
    rec = toy.record(extra=1)
    del rec["homepage"]
    verdict = V.check(rec)
    assert [(i.field, i.code) for i in verdict.errors] == [("homepage", "node_missing")]
    assert [(w.field, w.code) for w in verdict.warnings] == [("extra", "unknown_field")]
