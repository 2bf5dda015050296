"""Data Standard V1.1 (issue 11): valid data V1.0 rejected is accepted, wrong data V1.0 accepted
is rejected. Every test here fails on V1.0."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from imsp.standard import checks
from imsp.standard.sample import generate
from imsp.standard.validate import Verdict, validator_for


def record(dataset: str, i: int = 0, **changes: Any) -> dict[str, Any]:
    rec = generate(dataset, i + 1, seed=11)[i]
    rec.update(changes)
    return rec


def check(dataset: str, rec: dict[str, Any]) -> Verdict:
    return validator_for(dataset).check(rec)


def codes(issues: list[Any]) -> set[tuple[str, str]]:
    return {(i.field, i.code) for i in issues}


# --------------------------------------------------------------------------- regions


def test_multi_site_doctor_from_beijing_is_accepted() -> None:
    rec = record("doctor", firstAreaCode="110101")
    assert check("doctor", rec).errors == []


def test_tianjin_county_code_is_accepted_for_an_institution() -> None:
    rec = record("organization", areaCode="120116")
    assert check("organization", rec).errors == []


def test_patient_area_code_outside_the_division_table_is_rejected() -> None:
    verdict = check("patient", record("patient", areaCode="999999"))
    assert ("areaCode", "value_set") in codes(verdict.errors)


def test_retired_region_code_is_accepted_with_a_warning_naming_its_successor() -> None:
    verdict = check("patient", record("patient", areaCode="130185"))
    assert verdict.errors == []
    [warning] = [w for w in verdict.warnings if w.code == "code_retired"]
    assert warning.field == "areaCode"
    assert "鹿泉市" in warning.msg and "130110" in warning.msg


# --------------------------------------------------------------------------- diagnosis codes


def test_who_icd10_categories_are_accepted_with_a_warning_naming_the_system() -> None:
    rec = record("prescription", icdCode="I10|J06.9", icdName="高血压|急性上呼吸道感染")
    verdict = check("prescription", rec)
    assert verdict.errors == []
    warned = [w for w in verdict.warnings if w.code == "diag_who_category"]
    assert [w.field for w in warned] == ["icdCode", "icdCode"]
    assert "WHO ICD-10" in warned[0].msg


def test_code_of_a_system_without_a_table_is_accepted_with_a_warning() -> None:
    rec = record("outpatient", diagCodeType="2", diagnosisCode="I10.x00x002-YB")
    verdict = check("outpatient", rec)
    assert ("diagnosisCode", "value_set") not in codes(verdict.errors)
    [warning] = [w for w in verdict.warnings if w.field == "diagnosisCode"]
    assert warning.code == "diag_unchecked" and "医保" in warning.msg


def test_national_clinical_codes_are_still_checked_exactly() -> None:
    verdict = check("prescription", record("prescription", icdCode="I10.x99x999"))
    assert ("icdCode", "value_set") in codes(verdict.errors)


def test_v10_record_without_the_code_system_node_is_still_accepted() -> None:
    rec = record("prescription")
    del rec["diagCodeType"]
    verdict = check("prescription", rec)
    assert verdict.errors == [] and verdict.warnings == []


def test_tcm_codes_keep_their_own_table() -> None:
    rec = record("outpatient", diagCodeType="2", tcmDiseaseCode="I10")
    assert ("tcmDiseaseCode", "value_set") in codes(check("outpatient", rec).errors)


# --------------------------------------------------------------------------- value sets


def test_every_tianjin_register_status_is_accepted() -> None:
    for status in ("1", "7", "8", "9", "10", "11", "14"):
        rec = record("register", registerStatus=status)
        assert check("register", rec).errors == [], status


def test_every_tianjin_telemedicine_refund_state_is_accepted() -> None:
    for status in [str(n) for n in range(10, 19)]:
        rec = record("telemedicine", status=status)
        assert ("status", "value_set") not in codes(check("telemedicine", rec).errors), status


def test_nationality_as_free_text_is_rejected() -> None:
    verdict = check("patient", record("patient", nationality="中国"))
    assert ("nationality", "value_set") in codes(verdict.errors)


def test_nationality_alpha2_is_normalised_to_alpha3_with_a_warning() -> None:
    verdict = check("patient", record("patient", nationality="CN"))
    assert verdict.errors == [] and verdict.record is not None
    assert verdict.record["nationality"] == "CHN"
    assert [w.code for w in verdict.warnings] == ["code_alias"]


# --------------------------------------------------------------------------- in-record checks


def test_age_ten_years_off_the_birthday_is_rejected_naming_both_fields() -> None:
    rec = record("patient")
    rec["age"] += 10
    [issue] = check("patient", rec).errors
    assert (issue.field, issue.code, issue.msg_code) == ("age", "age_mismatch", -94)
    assert "年龄（岁）(age)" in issue.msg and "出生日期(birthday)" in issue.msg


def test_adult_id_number_with_age_4_is_rejected() -> None:
    rec = record("prescription", age=4)  # the ID number's holder was born in 1949
    [issue] = [i for i in check("prescription", rec).errors if i.field == "age"]
    assert (issue.field, issue.code) == ("age", "age_mismatch")
    assert "患者证件号码(patientCertID)" in issue.msg


def test_age_is_checked_from_the_business_time_up_to_the_update_time() -> None:
    rec = record("prescription")
    day = date.fromisoformat(rec["datein"][:10])
    born = date(1950, day.month, day.day) + timedelta(days=10)  # birthday 10 days after datein
    body = f"130102{born:%Y%m%d}123"  # 3rd sequence digit odd: male
    rec.update(patientCertType="01", patientCertID=body + checks.check_digit_gb11643(body), sex="1")
    rec["updateTime"] = f"{day + timedelta(days=30)} 08:00:00"  # sent after the birthday
    before = day.year - 1950 - 1
    assert check("prescription", {**rec, "age": before}).errors == []
    assert check("prescription", {**rec, "age": before + 1}).errors == []
    late = check("prescription", {**rec, "age": before + 2}).errors
    assert [(i.field, i.code) for i in late] == [("age", "age_mismatch")]


def test_infant_age_is_zero_and_the_message_gives_months_and_days() -> None:
    rec = record(
        "patient",
        1,  # a child with guardian
        birthday="2023-04-10",
        patientCertType="99",
        patientCertID=None,
        createTime="2023-07-24 14:47:44",
        updateTime="2023-07-24 14:59:01",
        age=0,
    )
    assert not [i for i in check("patient", rec).errors if i.field == "age"]
    [issue] = [i for i in check("patient", {**rec, "age": 1}).errors if i.field == "age"]
    assert issue.code == "age_mismatch" and "3 个月 14 天" in issue.msg


def test_payment_parts_not_adding_up_to_the_total_are_rejected() -> None:
    rec = record("payment")
    rec.update(individualPay=float(rec["totalFee"]) - 10, fundPay=40.00, otherPay=0.00)
    [issue] = check("payment", rec).errors
    assert (issue.field, issue.code) == ("totalFee", "sum_mismatch")
    for label in ("总金额（元）", "个人支付（元）", "医保统筹支付（元）", "其他支付（元）"):
        assert label in issue.msg


def test_payment_parts_within_a_cent_of_the_total_are_accepted() -> None:
    rec = record("payment")
    total = float(rec["totalFee"])
    rec.update(individualPay=round(total - 50.01, 2), fundPay=50.00, otherPay=None)  # 0.01 short
    assert check("payment", rec).errors == []


def test_prescription_item_amount_other_than_price_times_quantity_is_rejected() -> None:
    rec = record("prescription_item")
    rec["totalPrice"] = round(float(rec["price"]) * float(rec["dosageTotal"]) + 1, 2)
    [issue] = check("prescription_item", rec).errors
    assert (issue.field, issue.code) == ("totalPrice", "product_mismatch")
    assert "单价（元）(price)" in issue.msg and "药品总量(dosageTotal)" in issue.msg


def test_effective_period_other_than_its_dates_is_rejected() -> None:
    rec = record("prescription")
    span = (date.fromisoformat(rec["endDate"]) - date.fromisoformat(rec["startDate"])).days + 1
    rec["effectivePeriod"] = span + 4
    [issue] = check("prescription", rec).errors
    assert (issue.field, issue.code) == ("effectivePeriod", "period_mismatch")
    assert "处方有效开始日期(startDate)" in issue.msg and f"共 {span} 天" in issue.msg
