"""Bad input gets a clear message next to the field and changes nothing: wrong file types (by
content), oversized files, invalid codes, bad spreadsheets, forged or missing CSRF tokens."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_portal_app
from imsp.clock import FrozenClock
from imsp.config import PortalSettings, Settings
from imsp.qualification.models import Application, Attachment, Department, Doctor
from tests.portal.client import csrf_of, post_form, sign_in
from tests.qualification import builders as b

NEW_PASSWORD = "Hospital-2026"


def _state(settings: Settings) -> tuple[object, ...]:
    async def work(session: AsyncSession) -> tuple[object, ...]:
        profiles = list(await session.scalars(select(Application.profile)))
        files = await session.scalar(select(func.count()).select_from(Attachment))
        docs = await session.scalar(select(func.count()).select_from(Doctor))
        deps = list(await session.scalars(select(Department.data)))
        return profiles, files, docs, deps

    return b.run(settings, work)


@pytest.fixture
def applicant(portal_client: TestClient, settings: Settings, clock: FrozenClock) -> TestClient:
    who = b.make_applicant(settings, clock.now())
    sign_in(portal_client, who.username, who.password, NEW_PASSWORD)
    return portal_client


def test_invalid_codes_are_explained_beside_each_field_and_typed_values_are_kept(
    applicant: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    form = b.form_of(
        b.profile(
            **{
                "entity.areaCode": "999999",
                "internet.categoryId": "ZZZ",
                "entity.legalPhone": "0311-12",
                "internet.organID": "12130000MB1A2B3C4X",
                "entity.foundDate": "2030-01-01",
                "entity.address": "石家庄市长安区和平西路 348 号（已填写）",
            }
        )
    )
    r = post_form(applicant, "/my/institution", form)
    assert r.status_code == 400
    html = r.text
    assert "共有 5 处需要修改" in html
    for words in (
        "代码不在《行政区划代码》值域内：999999",
        "代码不在《卫生机构类别代码》值域内：ZZZ",
        "不是有效的手机号码或带区号的固定电话",
        "GB 32100 校验失败",
        "成立时间不能晚于今天",
    ):
        assert words in html
    assert 'value="石家庄市长安区和平西路 348 号（已填写）"' in html  # what was typed stays
    assert 'value="0311-12"' in html
    assert _state(settings) == before


def test_a_valid_institution_form_is_saved(applicant: TestClient, settings: Settings) -> None:
    r = post_form(applicant, "/my/institution", b.form_of(b.profile()))
    assert r.status_code == 200 and r.url.path == "/my/attachments" and "已保存" in r.text
    profiles = _state(settings)[0]
    assert (
        isinstance(profiles, list)
        and profiles[0]["entity"]["licenseNo"] == "40170028613010211A1001"
    )


def test_a_file_that_is_not_pdf_jpg_or_png_is_refused_whatever_its_name(
    applicant: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    r = post_form(
        applicant,
        "/my/attachments",
        {"kind": "license"},
        files={
            "file": ("执业许可证.pdf", b"<html><script>alert(1)</script></html>", "application/pdf")
        },
    )
    assert r.status_code == 400
    assert "文件内容不是 PDF、JPG、PNG（按文件内容识别，与扩展名无关）" in r.text
    assert _state(settings) == before


def test_a_png_named_pdf_is_stored_as_png(applicant: TestClient, settings: Settings) -> None:
    r = post_form(
        applicant,
        "/my/attachments",
        {"kind": "license"},
        files={"file": ("licence.pdf", b.png(), "application/pdf")},
    )
    assert r.status_code == 200 and "附件已上传" in r.text

    async def mime(session: AsyncSession) -> str | None:
        return await session.scalar(select(Attachment.mime))

    assert b.run(settings, mime) == "image/png"
    shown = applicant.get("/attachments/1")
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def small_uploads(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    small = settings.model_copy(update={"portal": PortalSettings(max_upload_bytes=2048)})
    who = b.make_applicant(settings, clock.now())
    with TestClient(create_portal_app(small, clock=clock)) as client:
        sign_in(client, who.username, who.password, NEW_PASSWORD)
        yield client


def test_an_oversized_file_is_refused_with_the_limit_named(
    small_uploads: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    r = post_form(
        small_uploads,
        "/my/attachments",
        {"kind": "approval"},
        files={"file": ("批文.pdf", b"%PDF-1.4\n" + b"0" * 3000, "application/pdf")},
    )
    assert r.status_code == 400 and "超过上限 2 KB" in r.text
    assert "单个文件不超过 2 KB" in r.text  # the hint names the same limit
    assert _state(settings) == before


def test_a_request_body_far_over_the_limit_comes_back_to_its_form(
    small_uploads: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    token = csrf_of(small_uploads.get("/my/attachments").text)
    r = small_uploads.post(
        "/my/attachments",
        data={"kind": "approval", "csrf_token": token},
        files={"file": ("big.pdf", b"%PDF-" + b"0" * (2 * 1024 * 1024), "application/pdf")},
        headers={"referer": "http://testserver/my/attachments"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/my/attachments?problem=too_large"
    page = small_uploads.get(r.headers["location"])
    assert page.status_code == 200
    assert '<span class="error" role="alert">文件超过上限 2 KB，未上传' in page.text
    assert 'data-max-bytes="2048"' in page.text  # the browser checks the same limit
    assert _state(settings) == before


def test_an_oversized_import_goes_back_to_the_list_it_came_from(
    small_uploads: TestClient,
) -> None:
    token = csrf_of(small_uploads.get("/my/departments").text)
    r = small_uploads.post(
        "/my/departments/import",
        data={"csrf_token": token},
        files={"file": ("big.xlsx", b"PK\x03\x04" + b"0" * (2 * 1024 * 1024), "text/plain")},
        headers={"referer": "http://testserver/my/departments"},
    )
    assert r.status_code == 200 and r.url.path == "/my/departments"
    assert r.text.count(">文件超过上限 2 KB，未上传") == 1  # shown once (and in data-too-large)
    assert "请求不能超过" not in r.text


def test_a_foreign_referer_is_never_followed(small_uploads: TestClient) -> None:
    token = csrf_of(small_uploads.get("/my/attachments").text)
    r = small_uploads.post(
        "/my/attachments",
        data={"kind": "approval", "csrf_token": token},
        files={"file": ("big.pdf", b"%PDF-" + b"0" * (2 * 1024 * 1024), "application/pdf")},
        headers={"referer": "http://evil.example/phish"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/my/attachments?problem=too_large"


def test_a_forged_csrf_token_gets_a_clear_page_and_changes_nothing(
    applicant: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    form = b.form_of(b.profile())
    real = csrf_of(applicant.get("/my").text)
    tampered = real[:-1] + ("1" if real.endswith("0") else "0")  # always differs from the real one
    for token in ("forged", "", tampered):
        r = applicant.post("/my/institution", data={**form, "csrf_token": token})
        assert r.status_code == 403
        assert "CSRF 令牌无效" in r.text and "本次操作未生效" in r.text
    r = applicant.post("/my/institution", data=form)  # no token at all
    assert r.status_code == 403
    r = applicant.post(
        "/my/attachments",
        data={"kind": "license", "csrf_token": "forged"},
        files={"file": ("a.png", b.png(), "image/png")},
    )
    assert r.status_code == 403
    assert _state(settings) == before


def test_a_csrf_token_from_another_session_is_refused(
    applicant: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    other = b.make_applicant(settings, clock.now(), org_code=b.ORG2, username="other")
    with TestClient(applicant.app) as attacker:
        sign_in(attacker, other.username, other.password, NEW_PASSWORD)
        foreign = csrf_of(attacker.get("/my").text)
    before = _state(settings)
    r = applicant.post("/my/institution", data={**b.form_of(b.profile()), "csrf_token": foreign})
    assert r.status_code == 403
    assert _state(settings) == before


def test_invalid_department_form_keeps_values_and_names_the_problems(
    applicant: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    r = post_form(
        applicant,
        "/my/departments/new",
        b.department(deptType="XX", principalCertID="130104197309203410", deptName="心内一科"),
    )
    assert r.status_code == 400
    assert "代码不在《科室类别代码》值域内：XX" in r.text
    assert "GB 11643 校验失败" in r.text
    assert 'value="心内一科"' in r.text
    assert _state(settings) == before


def test_an_import_with_errors_lists_them_by_row_and_column_and_changes_nothing(
    applicant: TestClient, settings: Settings
) -> None:
    wb = load_workbook(io.BytesIO(applicant.get("/my/departments/template.xlsx").content))
    ws = wb.worksheets[0]
    codes = [c.value for c in ws[2]]
    good = b.department()
    bad = b.department(deptID="0401", deptType="XX", validFlag="7")
    for row, record in ((3, good), (4, bad)):
        for col, code in enumerate(codes, start=1):
            value = record[str(code)]
            ws.cell(row=row, column=col).value = None if value is None else str(value)
    out = io.BytesIO()
    wb.save(out)
    before = _state(settings)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    r = post_form(
        applicant,
        "/my/departments/import",
        files={"file": ("科室.xlsx", out.getvalue(), xlsx)},
        page="/my/departments",
    )
    assert r.status_code == 400
    assert "导入失败：2 处问题，未导入任何数据" in r.text
    assert "<td>4</td><td>D</td><td>科室类别</td>" in r.text
    assert "<td>4</td><td>K</td><td>有效标志</td>" in r.text
    assert _state(settings) == before
    r = post_form(
        applicant,
        "/my/departments/import",
        files={"file": ("科室.csv", b"deptID,deptName\n1,2\n", "text/csv")},
        page="/my/departments",
    )
    assert r.status_code == 400 and r.text.count("不是 Excel（.xlsx）格式") == 1


def test_an_import_without_a_file_says_so_once(applicant: TestClient) -> None:
    r = post_form(
        applicant,
        "/my/departments/import",
        files={"file": ("", b"", "application/octet-stream")},
        page="/my/departments",
    )
    assert r.status_code == 400
    assert r.text.count(">请选择要导入的 Excel 文件") == 1  # shown once (and in data-empty)
    assert "不是 Excel" not in r.text


def test_a_department_form_checks_the_parent_and_the_subject(
    applicant: TestClient, settings: Settings
) -> None:
    before = _state(settings)
    raw = b.department(parentDeptID="NOPE", deptType="03", subjectCode="10", subjectName=None)
    r = post_form(applicant, "/my/departments/new", raw)
    assert r.status_code == 400
    assert "上级科室编码 NOPE 未在本机构科室信息中登记" in r.text
    assert "诊疗科目“10 眼科”不属于科室类别“03 内科”" in r.text
    assert "为必填项" not in r.text  # 对应诊疗科目名称 is filled from the code
    assert _state(settings) == before
