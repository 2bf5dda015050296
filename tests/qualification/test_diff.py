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


def _file(id_: int, kind: str, sha: str, name: str) -> dict[str, object]:
    return {"id": id_, "kind": kind, "sha256": sha * 64, "name": name, "size": 1,
            "mime": "image/png", "version": 1}  # fmt: skip


def test_removing_one_of_two_identical_attachments_is_a_removal() -> None:
    twins = [_file(1, "license", "a", "许可证.png"), _file(2, "license", "a", "许可证(1).png")]
    d = compare(
        _snap(attachments=twins), _snap(attachments=twins[:1]), old_version=1, new_version=2
    )
    assert [(a.change, a.kind, a.name, a.attachment_id) for a in d.attachments] == [
        ("removed", "执业许可证", "许可证(1).png", 2)
    ]


def test_the_diff_lists_every_kind_of_change() -> None:
    heart = b.department()
    surgery = b.department(deptID="0401", deptName="普通外科", deptType="04", subjectCode="04.01")
    old = _snap(
        departments=[heart, surgery],
        doctors=[b.doctor(), b.second_doctor()],
        attachments=[_file(1, "license", "a", "许可证.png"), _file(2, "approval", "b", "批文.pdf")],
    )
    new = _snap(
        profile=b.profile(**{"entity.address": "河北省石家庄市长安区和平西路350号"}),
        departments=[
            b.department(deptName="心内科"),  # edited
            b.department(deptID="0501", deptName="妇科", deptType="05", subjectCode="05.01"),
        ],  # 0401 removed, 0501 added
        doctors=[
            b.doctor(mobile="13803119999"),  # edited
            b.doctor(
                doctorCertID="130104197309203415", doctorName="陈志刚", birthday="1973-09-20"
            ),  # added
        ],  # the second doctor removed
        attachments=[
            _file(1, "license", "a", "许可证.png"),
            _file(3, "approval", "c", "新批文.pdf"),
        ],
    )
    d = compare(old, new, old_version=1, new_version=2)
    assert [(c.label, c.old, c.new) for c in d.profile] == [
        (
            "实体医院 · 详细地址",
            "河北省石家庄市长安区和平西路348号",
            "河北省石家庄市长安区和平西路350号",
        )
    ]
    assert [(r.change, r.label) for r in d.departments] == [
        ("changed", "0304 心内科"),
        ("added", "0501 妇科"),
        ("removed", "0401 普通外科"),
    ]
    assert [(f.label, f.old, f.new) for f in d.departments[0].fields] == [
        ("科室名称", "心血管内科", "心内科")
    ]
    assert [(r.change, r.label) for r in d.doctors] == [
        ("changed", "130102********2317 刘建华"),
        ("added", "130104********3415 陈志刚"),
        ("removed", "130102********2348 王丽"),
    ]
    assert [(f.label, f.new) for f in d.doctors[0].fields] == [("手机号码", "13803119999")]
    assert [(a.change, a.kind, a.name) for a in d.attachments] == [
        ("added", "线下审批文件", "新批文.pdf"),
        ("removed", "线下审批文件", "批文.pdf"),
    ]
    assert d.counts == {"profile": 1, "departments": 3, "doctors": 3, "attachments": 2}
