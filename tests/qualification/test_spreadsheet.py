"""Excel templates come from the standard; imports are checked row by row and all-or-nothing."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import BadRequest
from imsp.portal.widgets import record_inputs
from imsp.qualification import fields as F
from imsp.qualification import roster as records
from imsp.qualification.spreadsheet import SheetError, read_rows, template
from imsp.standard.validate import validator_for
from tests.qualification import builders as b


def filled(roster: F.Roster, records: list[dict[str, Any]], *, keep_sample: bool = False) -> bytes:
    """The template with ``records`` written from row 3 (or after the sample row)."""
    wb = load_workbook(io.BytesIO(template(roster)))
    ws = wb.worksheets[0]
    codes = [c.value for c in ws[2]]
    start = 4 if keep_sample else 3
    for r, record in enumerate(records, start=start):
        for c, code in enumerate(codes, start=1):
            value = record.get(str(code))
            # (``ws.cell(..., value=None)`` would keep the sample row's value)
            ws.cell(row=r, column=c).value = None if value is None else str(value)
    if not keep_sample and not records:
        ws.delete_rows(3)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.mark.parametrize("roster", [F.DEPARTMENTS, F.DOCTORS])
def test_template_has_chinese_headers_codes_and_a_valid_sample_row(roster: F.Roster) -> None:
    ws = load_workbook(io.BytesIO(template(roster))).worksheets[0]
    names = [c.value for c in ws[1]]
    codes = [c.value for c in ws[2]]
    sample = [c.value for c in ws[3]]
    assert codes == [f.code for f in roster.fields]
    form = {i.name: i.required for i in record_inputs(roster, {}, {})}
    assert names == [f.name + (" *" if form[f.code] == "Y" else "") for f in roster.fields]
    assert roster.field("subjectName").name in names  # filled from its code: no star
    record = {
        "organID": b.ORG,
        "organName": "x",
        "hosCode": None,
        "hosName": None,
        "operType": "1",
        "updateTime": "2026-01-05 09:00:00",
    }
    for f, value in zip(roster.fields, sample, strict=True):
        record[f.code] = int(value) if f.type == "int" and value else (value or None)
    assert validator_for(roster.dataset).check(record).ok


def test_the_unchanged_sample_row_is_ignored() -> None:
    sheet = read_rows(F.DOCTORS, template(F.DOCTORS))
    assert sheet.rows == []


def test_columns_are_found_by_code_in_any_order() -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    fields = list(reversed(F.DEPARTMENTS.fields))
    ws.append([f.name for f in fields])
    ws.append([f.code for f in fields])
    dept = b.department(deptID="0401", deptName="普通外科")
    ws.append([None if dept[f.code] is None else str(dept[f.code]) for f in fields])
    out = io.BytesIO()
    wb.save(out)
    sheet = read_rows(F.DEPARTMENTS, out.getvalue())
    assert [r.values["deptID"] for r in sheet.rows] == ["0401"]
    assert sheet.rows[0].row == 3
    assert sheet.letters["deptID"] == "L"  # the file's own column, not the template's


def test_numbers_and_dates_typed_into_cells_are_read_as_the_user_meant() -> None:
    wb = load_workbook(io.BytesIO(template(F.DOCTORS)))
    ws = wb.worksheets[0]
    codes = [c.value for c in ws[2]]
    ws.cell(row=3, column=codes.index("doctorName") + 1, value="刘建")
    ws.cell(row=3, column=codes.index("birthday") + 1, value=datetime(1978, 4, 15))
    ws.cell(row=3, column=codes.index("doctorYears") + 1, value=21.0)
    ws.cell(row=3, column=codes.index("mobile") + 1, value=13803110231)
    out = io.BytesIO()
    wb.save(out)
    values = read_rows(F.DOCTORS, out.getvalue()).rows[0].values
    assert (values["birthday"], values["doctorYears"], values["mobile"]) == (
        "1978-04-15",
        "21",
        "13803110231",
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"name,code\n1,2\n", "不是 Excel"),
        (b"PK\x03\x04 broken zip", "无法读取"),
    ],
)
def test_files_that_are_not_the_template_are_refused(content: bytes, words: str) -> None:
    with pytest.raises(SheetError, match=words):
        read_rows(F.DEPARTMENTS, content)


def test_a_workbook_without_the_standard_columns_is_refused() -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["科室编码", "名称"])
    ws.append(["0304", "心内科"])
    out = io.BytesIO()
    wb.save(out)
    with pytest.raises(SheetError, match="缺少列"):
        read_rows(F.DEPARTMENTS, out.getvalue())


def _import(
    settings: Settings, who: b.Applicant, roster: F.Roster, content: bytes, clock: FrozenClock
) -> records.Imported:
    async def work(session: AsyncSession) -> records.Imported:
        app, inst = await b.load(session, who.application_id)
        return await records.import_records(
            session, app=app, institution=inst, roster=roster, content=content, now=clock.now()
        )

    return b.run(settings, work)


def _count(settings: Settings, who: b.Applicant, roster: F.Roster) -> int:
    async def work(session: AsyncSession) -> int:
        app, _ = await b.load(session, who.application_id)
        return await records.count_records(session, app=app, roster=roster)

    return b.run(settings, work)


def test_import_adds_rows_and_updates_by_business_key(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    depts = [
        b.department(),
        b.department(
            deptID="0401",
            deptName="普通外科",
            deptType="04",
            subjectCode="04.01",
            subjectName=None,
            principalCertID=None,
        ),
    ]
    assert _import(
        settings, who, F.DEPARTMENTS, filled(F.DEPARTMENTS, depts), clock
    ) == records.Imported(2, 0)
    docs = [b.doctor(), b.second_doctor()]
    assert _import(settings, who, F.DOCTORS, filled(F.DOCTORS, docs), clock) == records.Imported(
        2, 0
    )
    again = [b.doctor(mobile="13803119999")]
    assert _import(settings, who, F.DOCTORS, filled(F.DOCTORS, again), clock) == records.Imported(
        0, 1
    )
    assert _count(settings, who, F.DOCTORS) == 2


def test_import_with_any_error_changes_nothing_and_lists_row_and_column(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    _import(settings, who, F.DEPARTMENTS, filled(F.DEPARTMENTS, [b.department()]), clock)
    bad = [
        b.doctor(),
        b.second_doctor() | {"titleCode": "299", "doctorCertID": "130102198512122340"},
        b.doctor(doctorId="D3"),  # same ID number as row 3
    ]
    with pytest.raises(BadRequest, match="未导入任何数据") as caught:
        _import(settings, who, F.DOCTORS, filled(F.DOCTORS, bad), clock)
    problems = {(p.row, p.column, p.field) for p in caught.value.data["problems"]}
    letter = {f.code: chr(ord("A") + i) for i, f in enumerate(F.DOCTORS.fields) if i < 26}
    assert (4, letter["titleCode"], "专业技术职务代码") in problems
    assert (4, letter["doctorCertID"], "身份证号") in problems
    assert any(p.row == 5 and "与第 3 行重复" in p.msg for p in caught.value.data["problems"])
    assert _count(settings, who, F.DOCTORS) == 0


def test_doctors_must_belong_to_a_registered_department(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    with pytest.raises(BadRequest) as caught:
        _import(settings, who, F.DOCTORS, filled(F.DOCTORS, [b.doctor()]), clock)
    assert "未在本机构科室信息中登记" in caught.value.data["problems"][0].msg


def test_an_import_of_only_the_sample_row_imports_nothing(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    with pytest.raises(BadRequest, match="没有可导入的数据行"):
        _import(settings, who, F.DEPARTMENTS, template(F.DEPARTMENTS), clock)


def test_a_department_needs_a_registered_parent_or_one_in_the_same_file(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    orphan = [b.department(deptID="0304", parentDeptID="NOPE")]
    with pytest.raises(BadRequest) as caught:
        _import(settings, who, F.DEPARTMENTS, filled(F.DEPARTMENTS, orphan), clock)
    assert "上级科室编码 NOPE 未在本机构科室信息中登记" in caught.value.data["problems"][0].msg
    family = [
        b.department(deptID="0304", parentDeptID="03"),
        b.department(deptID="03", deptName="内科", subjectCode="03", principalCertID=None),
    ]
    assert _import(
        settings, who, F.DEPARTMENTS, filled(F.DEPARTMENTS, family), clock
    ) == records.Imported(2, 0)


def test_an_import_without_a_file_says_so(settings: Settings, clock: FrozenClock) -> None:
    who = b.make_applicant(settings, clock.now())
    with pytest.raises(BadRequest, match="请选择要导入的 Excel 文件"):
        _import(settings, who, F.DEPARTMENTS, b"", clock)
