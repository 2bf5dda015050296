"""A resubmission is shown to the reviewer as field-level changes against the rejected version."""

from __future__ import annotations

from imsp.qualification.diff import compare
from tests.qualification import builders as b


def _snap(**parts: object) -> dict[str, object]:
    base: dict[str, object] = {
        "profile": b.profile(),
        "departments": [b.department()],
        "doctors": [b.doctor()],
        "attachments": [
            {
                "id": 1,
                "kind": "license",
                "sha256": "a" * 64,
                "name": "许可证.png",
                "size": 1,
                "mime": "image/png",
                "version": 1,
            },
        ],
    }
    base.update(parts)
    return base


def test_identical_versions_have_no_changes() -> None:
    assert compare(_snap(), _snap(), old_version=1, new_version=2).empty


def test_changed_institution_fields_show_old_and_new_values_with_code_names() -> None:
    new = _snap(
        profile=b.profile(**{"entity.levelId": "2", "internet.contactPhone": "13831100009"})
    )
    d = compare(_snap(), new, old_version=1, new_version=2)
    assert [(c.code, c.label, c.old, c.new) for c in d.profile] == [
        ("entity.levelId", "实体医院 · 医院级别", "3 三级", "2 二级"),
        ("internet.contactPhone", "互联网医院 · 联系人电话", "13831100001", "13831100009"),
    ]


def test_departments_and_doctors_are_matched_by_key_and_id_numbers_stay_masked() -> None:
    new = _snap(
        departments=[
            b.department(deptName="心内科"),
            b.department(deptID="0401", deptName="普通外科"),
        ],
        doctors=[b.second_doctor()],
    )
    d = compare(_snap(), new, old_version=1, new_version=2)
    assert [(r.change, r.label) for r in d.departments] == [
        ("changed", "0304 心内科"),
        ("added", "0401 普通外科"),
    ]
    assert d.departments[0].fields[0].old == "心血管内科"
    assert [(r.change, r.label) for r in d.doctors] == [
        ("added", "130102********2348 王丽"),
        ("removed", "130102********2317 刘建华"),
    ]


def test_replaced_attachments_are_listed_and_a_reupload_of_the_same_file_is_no_change() -> None:
    same = {
        "id": 7,
        "kind": "license",
        "sha256": "a" * 64,
        "name": "again.png",
        "size": 1,
        "mime": "image/png",
        "version": 2,
    }
    other = {
        "id": 8,
        "kind": "approval",
        "sha256": "b" * 64,
        "name": "批文.pdf",
        "size": 1,
        "mime": "application/pdf",
        "version": 2,
    }
    d = compare(_snap(), _snap(attachments=[same, other]), old_version=1, new_version=2)
    assert [(a.change, a.kind, a.name) for a in d.attachments] == [
        ("added", "线下审批文件", "批文.pdf")
    ]
