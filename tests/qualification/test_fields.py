"""Registration forms are checked with the Data Standard's code tables and checks."""

from __future__ import annotations

from datetime import date

import pytest

from imsp.qualification import fields as F
from tests.qualification import builders as b

TODAY = date(2026, 1, 5)
META = {"org_code": b.ORG, "org_name": b.ORG_NAME, "updated": "2026-01-05 09:00:00"}


def test_a_complete_registration_form_is_valid() -> None:
    profile, errors = F.validate_profile(b.profile(), org_code=b.ORG, today=TODAY)
    assert errors == {}
    assert profile["entity"]["organID"] == b.ORG


def test_the_form_has_the_fourteen_items_of_chapter_five_for_both_hospitals() -> None:
    labels = [f.name for f in F.institution_fields()]
    assert labels == [
        "组织机构代码", "组织机构名称", "执业许可证名称", "执业许可证登记号", "行政区域划分",
        "卫生机构类别", "医院级别", "医院等级", "成立时间", "详细地址", "机构法人代表",
        "机构法人电话", "联系人姓名", "联系人电话",
    ]  # fmt: skip
    assert set(F.SECTIONS) == {"entity", "internet"}


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"entity.areaCode": "999999"}, "entity.areaCode", "行政区划代码"),
        ({"internet.categoryId": "Z999"}, "internet.categoryId", "卫生机构类别"),
        ({"entity.levelId": "9"}, "entity.levelId", "值域"),
        ({"internet.grade": "0"}, "internet.grade", "值域"),
        ({"entity.legalPhone": "12345"}, "entity.legalPhone", "电话"),
        ({"internet.contactPhone": "1380311"}, "internet.contactPhone", "电话"),
        ({"entity.foundDate": "1950-02-30"}, "entity.foundDate", "日期"),
        ({"internet.organID": "12130000MB1A2B3C4X"}, "internet.organID", "GB 32100"),
        ({"entity.licenseNo": ""}, "entity.licenseNo", "必填"),
        ({F.TYPE_FIELD: "7"}, F.TYPE_FIELD, "值域"),
    ],
)
def test_invalid_items_are_reported_beside_their_field(
    change: dict[str, str], path: str, words: str
) -> None:
    _, errors = F.validate_profile(b.profile(**change), org_code=b.ORG, today=TODAY)
    assert list(errors) == [path]
    assert words in errors[path]


def test_the_entity_hospital_is_always_the_accounts_institution() -> None:
    profile, errors = F.validate_profile(
        b.profile(**{"entity.organID": b.ORG2}), org_code=b.ORG, today=TODAY
    )
    assert errors == {} and profile["entity"]["organID"] == b.ORG


def test_internet_hospital_code_must_follow_the_setting_type() -> None:
    _, errors = F.validate_profile(
        b.profile(**{"internet.organID": b.ORG2}), org_code=b.ORG, today=TODAY
    )
    assert "同一统一社会信用代码" in errors["internet.organID"]
    _, errors = F.validate_profile(b.profile(internetHospitalType="2"), org_code=b.ORG, today=TODAY)
    assert "不同" in errors["internet.organID"]
    _, errors = F.validate_profile(
        b.profile(internetHospitalType="2", **{"internet.organID": b.ORG2}),
        org_code=b.ORG,
        today=TODAY,
    )
    assert errors == {}


def test_founding_date_cannot_be_in_the_future() -> None:
    _, errors = F.validate_profile(
        b.profile(**{"internet.foundDate": "2026-01-06"}), org_code=b.ORG, today=TODAY
    )
    assert errors == {"internet.foundDate": "成立时间不能晚于今天"}


def test_department_and_doctor_examples_are_valid_and_names_are_derived() -> None:
    record, errors = F.validate_record(F.DEPARTMENTS, b.department(subjectName=""), **META)
    assert errors == {}
    assert record["subjectName"] == "心血管内科专业"
    record, errors = F.validate_record(F.DOCTORS, b.doctor(titleName=None), **META)
    assert errors == {}
    assert record["titleName"] == "副主任医师"
    assert "organID" not in record  # the common header is not part of the record


@pytest.mark.parametrize(
    ("roster", "change", "field", "words"),
    [
        (F.DEPARTMENTS, {"deptType": "X1"}, "deptType", "科室类别"),
        (F.DEPARTMENTS, {"subjectCode": "99.99"}, "subjectCode", "诊疗科目"),
        (F.DEPARTMENTS, {"principalCertID": "130104197309203410"}, "principalCertID", "GB 11643"),
        (F.DOCTORS, {"doctorCertID": "130102197804152318"}, "doctorCertID", "GB 11643"),
        (F.DOCTORS, {"titleCode": "299"}, "titleCode", "专业技术职务"),
        (F.DOCTORS, {"practiceType": "9"}, "practiceType", "执业类别"),
        (F.DOCTORS, {"practiceScope": "11|98"}, "practiceScope", "执业范围"),
        (F.DOCTORS, {"practiceCertNo": ""}, "practiceCertNo", "条件必填"),
        (F.DOCTORS, {"personType": "99"}, "personType", "人员类别"),
        (F.DOCTORS, {"mobile": "0311-1234567"}, "mobile", "手机"),
    ],
)
def test_invalid_department_and_doctor_values_are_reported(
    roster: F.Roster, change: dict[str, str], field: str, words: str
) -> None:
    _, errors = F.validate_record(roster, b.example(roster, **change), **META)
    assert field in errors
    assert words in errors[field]


def test_a_nurse_needs_no_prescription_right_or_practice_type() -> None:
    nurse = b.doctor(
        personType="21", titleCode="254", titleName="护师", practiceType=None,
        practiceScope=None, prescribeRight=None, qualificationCertNo=None,
    )  # fmt: skip
    _, errors = F.validate_record(F.DOCTORS, nurse, **META)
    assert errors == {}


@pytest.mark.parametrize(
    ("category", "subject", "ok"),
    [
        ("03", "10", False),  # 内科 with 眼科
        ("03", "04.01", False),
        ("A03", "03.04", True),  # the A-prefixed spelling of the category
        ("03", "03", True),
        ("10", "10", True),
        ("69", "10", True),  # 其他业务科室 takes any subject
    ],
)
def test_the_subject_must_lie_under_the_department_category(
    category: str, subject: str, ok: bool
) -> None:
    raw = b.department(deptType=category, subjectCode=subject, subjectName=None)
    _, errors = F.validate_record(F.DEPARTMENTS, raw, **META)
    if ok:
        assert errors == {}
    else:
        assert set(errors) == {"subjectCode"}
        assert "不属于科室类别“03 内科”" in errors["subjectCode"]


def test_messages_name_fields_in_chinese_and_sexes_as_words() -> None:
    raw = b.doctor(sex="2", birthday="1980-01-01")  # the example ID number is a man born 1978
    _, errors = F.validate_record(F.DOCTORS, raw, **META)
    assert errors["sex"] == "与 身份证号 的性别（男）不一致：女"
    assert "(" not in errors["birthday"] and "身份证号" in errors["birthday"]


def test_a_name_filled_from_a_code_is_never_called_required() -> None:
    _, errors = F.validate_record(
        F.DEPARTMENTS, b.department(subjectCode="99.99", subjectName=None), **META
    )
    assert set(errors) == {"subjectCode"}
    _, errors = F.validate_record(F.DOCTORS, b.doctor(deptName=None), **META)
    assert "deptName" not in errors
