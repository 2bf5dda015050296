"""The registration forms mapped onto the Data Standard, and checked by its one validator.

Nothing here restates a length, a code table or a format: the institution form is the
organization dataset's ``relyOrgan`` block (the chapter-5 items, 数据接入工作说明 第五章 第 4 步,
which the standard already defines for the entity hospital), used once for the entity hospital
and once for the internet hospital; departments and doctors are records of the ``department`` and
``doctor`` datasets without the common header. All are validated with
``imsp.standard.validate.validator_for`` so the portal and the exchange service agree on every rule.

Only what the standard cannot say about a *form* lives here: the chapter's Chinese labels, which
name fields are filled from a code table, and the few cross-field checks of the registration
(the entity hospital is the account's institution; the internet hospital's code follows the
setting type; founding dates are not in the future).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from typing import Any, Final

from imsp.qualification.models import Department, Doctor
from imsp.standard.mask import mask
from imsp.standard.model import Dataset, Field, Standard, load_standard
from imsp.standard.validate import Issue, validator_for

SECTIONS: Final[dict[str, str]] = {"entity": "实体医院", "internet": "互联网医院"}
TYPE_FIELD: Final = "internetHospitalType"

#: 第五章 第 4 步, in the chapter's order and wording → field codes of ``relyOrgan``.
INSTITUTION_ITEMS: Final[tuple[tuple[str, str], ...]] = (
    ("organID", "组织机构代码"),
    ("organName", "组织机构名称"),
    ("licenseName", "执业许可证名称"),
    ("licenseNo", "执业许可证登记号"),
    ("areaCode", "行政区域划分"),
    ("categoryId", "卫生机构类别"),
    ("levelId", "医院级别"),
    ("grade", "医院等级"),
    ("foundDate", "成立时间"),
    ("address", "详细地址"),
    ("legalRepresentative", "机构法人代表"),
    ("legalPhone", "机构法人电话"),
    ("contactName", "联系人姓名"),
    ("contactPhone", "联系人电话"),
)
_HINTS: Final[dict[str, str]] = {
    "organID": "18 位统一社会信用代码（三证合一后即组织机构代码），校验 GB 32100 校验码",
    "areaCode": "GB/T 2260 六位行政区划代码，填写到县（市、区）级",
    "legalPhone": "11 位手机号或带区号的固定电话，如 0311-85988888",
    "contactPhone": "11 位手机号或带区号的固定电话",
}


@cache
def standard() -> Standard:
    return load_standard()


@cache
def header_codes() -> frozenset[str]:
    """The common header block (organID, organName, updateTime, …): the fields every dataset has."""
    sets = [frozenset(f.code for f in ds.fields) for ds in standard().datasets.values()]
    return frozenset.intersection(*sets)


@cache
def institution_fields() -> tuple[Field, ...]:
    rely = {f.code: f for f in standard().dataset("organization").field("relyOrgan").fields}
    return tuple(
        replace(rely[code], name=label, desc=_HINTS.get(code, rely[code].desc))
        for code, label in INSTITUTION_ITEMS
    )


@cache
def type_field() -> Field:
    return standard().dataset("organization").field(TYPE_FIELD)


@cache
def _registration() -> Dataset:
    org = standard().dataset("organization")
    fields = institution_fields()
    return replace(
        org,
        code="registration",
        name="机构注册",
        key=(),
        references=(),
        columns={},
        rules=(),
        fields=(
            type_field(),
            Field(
                code="entity", name=SECTIONS["entity"], type="object", required="Y", fields=fields
            ),
            Field(
                code="internet",
                name=SECTIONS["internet"],
                type="object",
                required="Y",
                fields=fields,
            ),
        ),
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def message(issue: Issue) -> str:
    """The validator's Chinese message without its ``名称(path) `` prefix (shown beside the field)."""
    text = issue.msg
    close = text.find(") ")
    if close != -1 and text[: close + 1].endswith(f"({issue.field})"):
        return text[close + 2 :]
    return text


def _collect(
    issues: list[Issue],
    errors: dict[str, str],
    skip: frozenset[str] = frozenset(),
    word: Callable[[Issue], str] = message,
) -> None:
    """Every problem of a field, joined (a value can be both too long and malformed)."""
    for issue in issues:
        if issue.field in skip:
            continue
        text = word(issue)
        if issue.field not in errors:
            errors[issue.field] = text
        elif text not in errors[issue.field]:
            errors[issue.field] += "；" + text


def validate_profile(
    raw: Mapping[str, Any], *, org_code: str, today: date
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check a 机构注册 form. Returns the normalised profile and ``{"entity.areaCode": problem}``."""
    profile: dict[str, Any] = {TYPE_FIELD: _text(raw.get(TYPE_FIELD))}
    for section in SECTIONS:
        given = raw.get(section)
        values = given if isinstance(given, Mapping) else {}
        profile[section] = {f.code: _text(values.get(f.code)) for f in institution_fields()}
    profile["entity"]["organID"] = org_code  # the account's institution, fixed by the operator
    errors: dict[str, str] = {}
    _collect(validator_for(_registration(), standard()).check(profile).errors, errors)
    entity, internet = profile["entity"], profile["internet"]
    kind = profile[TYPE_FIELD]
    if "internet.organID" not in errors and internet["organID"]:
        # 数据标准 organization: 设置类型 1 时上报机构就是实体医院（同一张执业许可证），
        # 类型 2 时互联网医院是另一机构。
        if kind == "1" and internet["organID"] != entity["organID"]:
            errors["internet.organID"] = (
                "设置类型为“作为实体医疗机构第二名称”时，互联网医院与实体医院使用同一统一社会信用代码"
            )
        elif kind == "2" and internet["organID"] == entity["organID"]:
            errors["internet.organID"] = (
                "设置类型为“依托实体医疗机构独立设置”时，互联网医院的统一社会信用代码应与实体医院不同"
            )
    for section in SECTIONS:
        path = f"{section}.foundDate"
        found = profile[section]["foundDate"]
        if path not in errors and found and found > today.isoformat():
            errors[path] = "成立时间不能晚于今天"
    return profile, errors


# --------------------------------------------------------------------------- departments, doctors


@dataclass(frozen=True, slots=True)
class Roster:
    """A list of records the applicant registers: 科室 (department) or 人员 (doctor)."""

    kind: str  # URL segment: departments | doctors
    dataset: str  # the standard's dataset code
    title: str
    key: str  # the business key field
    label_field: str  # what names a record in messages
    columns: tuple[str, ...]  # shown in lists
    personal: frozenset[str]  # ID numbers: masked in lists, their views audited
    derived: Mapping[str, str]  # name field ← code field, filled from the code table when blank
    model: type[Department] | type[Doctor]  # the table its records live in
    key_column: str  # the model's column holding the business key
    sort_column: str  # lists are ordered by this column of the model
    #: (code field, name field) naming one of the application's departments — the name is filled
    #: from the department when blank — or None
    department_ref: tuple[str, str] | None = None
    #: (category field, subject field): the subject must lie under the category (科室类别 03 内科
    #: takes subjects 03, 03.xx), or None
    subject_under: tuple[str, str] | None = None
    #: the field naming another record of the same roster (上级科室编码), or None
    parent: str | None = None

    def required(self, f: Field) -> str:
        """Y | N | C as the form and the Excel template show it: a name filled from a code (or
        from the department) is optional there although the standard requires it."""
        ref = self.department_ref
        if f.code in self.derived or (ref is not None and f.code == ref[1]):
            return "N"
        return f.required

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(
            f for f in standard().dataset(self.dataset).fields if f.code not in header_codes()
        )

    def field(self, code: str) -> Field:
        return standard().dataset(self.dataset).field(code)

    def shown_key(self, key: Any) -> str:
        """A record's business key as shown in messages and the audit log (masked if personal)."""
        return mask(key) if self.key in self.personal else str(key)


DEPARTMENTS: Final = Roster(
    kind="departments",
    dataset="department",
    title="科室",
    key="deptID",
    label_field="deptName",
    columns=("deptID", "deptName", "deptType", "subjectCode", "internetFlag", "validFlag"),
    personal=frozenset({"principalCertID"}),
    derived={"subjectName": "subjectCode"},
    model=Department,
    key_column="dept_code",
    sort_column="dept_code",
    subject_under=("deptType", "subjectCode"),
    parent="parentDeptID",
)
DOCTORS: Final = Roster(
    kind="doctors",
    dataset="doctor",
    title="人员",
    key="doctorCertID",
    label_field="doctorName",
    columns=("doctorName", "doctorCertID", "personType", "titleCode", "deptID", "practiceCertNo"),
    personal=frozenset({"doctorCertID"}),
    derived={"titleName": "titleCode", "subjectName": "subjectCode"},
    model=Doctor,
    key_column="cert_id",
    sort_column="id",
    department_ref=("deptID", "deptName"),
)
ROSTERS: Final[dict[str, Roster]] = {r.kind: r for r in (DEPARTMENTS, DOCTORS)}


def _coerce(f: Field, value: Any) -> Any:
    """Form and spreadsheet input → the JSON value the standard expects (blank → ``None``)."""
    if value is None:
        return None
    if isinstance(value, list):
        parts = [p.strip() for p in value if isinstance(p, str) and p.strip()]
        return "|".join(parts) if parts else None
    text = str(value).strip()
    if not text:
        return None
    if f.type == "int" and text.lstrip("-").isdigit():
        return int(text)
    return text


def validate_record(
    roster: Roster,
    raw: Mapping[str, Any],
    *,
    org_code: str,
    org_name: str,
    updated: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check one department or doctor. Returns the record (standard field codes, header left out)
    and ``{field code: problem}``. Name fields derived from a code are filled when left blank."""
    record = {f.code: _coerce(f, raw.get(f.code)) for f in roster.fields}
    tables = standard().tables
    for name_field, code_field in roster.derived.items():
        table = roster.field(code_field).table
        code = record.get(code_field)
        if record.get(name_field) is None and isinstance(code, str) and table:
            record[name_field] = tables[table].names.get(code)
    header = {
        "organID": org_code,
        "organName": org_name[:50],
        "hosCode": None,
        "hosName": None,
        "operType": "1",
        "updateTime": updated,
    }
    verdict = validator_for(roster.dataset, standard()).check({**header, **record})
    errors: dict[str, str] = {}
    # Name fields filled from a code are optional on the form: a blank one is the code's problem.
    filled = set(roster.derived) | ({roster.department_ref[1]} if roster.department_ref else set())
    issues = [i for i in verdict.errors if not (i.code == "required" and i.field in filled)]
    _collect(issues, errors, skip=header_codes(), word=lambda i: _plain(roster, i))
    if verdict.record is not None:
        record = {k: v for k, v in verdict.record.items() if k not in header_codes()}
    if roster.subject_under is not None:
        _check_subject(roster, record, errors)
    return record, errors


#: Category "其他业务科室" takes any subject.
_ANY_SUBJECT: Final = "69"
_SEX_CLASH: Final = re.compile(r"的性别（(\d)）不一致：(\S+)$")


def _plain(roster: Roster, issue: Issue) -> str:
    """A validator message as a user reads it: Chinese labels only, codes with their names."""
    text = message(issue)
    for f in roster.fields:
        text = text.replace(f"({f.code})", "")
    clash = _SEX_CLASH.search(text)
    if clash is not None:
        names = standard().tables["sex"].names
        said, given = clash.group(1), clash.group(2)
        text = (
            text[: clash.start()]
            + f"的性别（{names.get(said, said)}）不一致：{names.get(given, given)}"
        )
    return text


def _check_subject(roster: Roster, record: Mapping[str, Any], errors: dict[str, str]) -> None:
    assert roster.subject_under is not None
    category_code, subject_code = roster.subject_under
    if category_code in errors or subject_code in errors:
        return
    category, subject = record.get(category_code), record.get(subject_code)
    if not isinstance(category, str) or not isinstance(subject, str):
        return
    category = category.removeprefix("A")
    if category == _ANY_SUBJECT or subject.split(".", 1)[0] == category:
        return
    shown_category = show_value(roster.field(category_code), category)
    shown_subject = show_value(roster.field(subject_code), subject)
    errors[subject_code] = (
        f"诊疗科目“{shown_subject}”不属于科室类别“{shown_category}”，"
        f"请选择 {category} 开头的诊疗科目或更正科室类别"
    )


# --------------------------------------------------------------------------- display


def show_value(f: Field, value: Any) -> str:
    """A stored value as people read it: codes with their names (``3 三级``), blanks as ``""``."""
    if value is None or value == "":
        return ""
    if f.table and isinstance(value, str):
        names = standard().tables[f.table].names
        if f.multi:
            return "、".join(f"{p} {names.get(p, '')}".strip() for p in value.split("|"))
        name = names.get(value)
        return f"{value} {name}" if name else value
    return str(value)
