"""The whole chapter-5 flow through the portal's pages (the browser test does it in Chromium)."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import PortalUser
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.portal.client import post_form, sign_in
from tests.qualification import builders as b

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _excel(template: bytes, records: list[dict[str, object]]) -> bytes:
    wb = load_workbook(io.BytesIO(template))
    ws = wb.worksheets[0]
    codes = [c.value for c in ws[2]]
    for row, record in enumerate(records, start=3):
        for col, code in enumerate(codes, start=1):
            value = record.get(str(code))
            ws.cell(row=row, column=col, value=None if value is None else str(value))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_register_submit_reject_resubmit_approve(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    c = portal_client
    b.make_user(settings, clock.now(), username="operator1", role="operator")
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")

    # 第二步: the operator allocates the applicant's account; the password is shown once.
    sign_in(c, "operator1", "Passw0rd-123")
    r = post_form(
        c,
        "/accounts/new",
        {"role": "applicant", "username": "sjzyy", "org_code": b.ORG, "org_name": b.ORG_NAME},
    )
    found = re.search(r'id="issued-password">([^<]+)<', r.text)
    assert found, r.text
    initial = found.group(1)
    assert "只显示这一次" in r.text
    assert initial not in c.get("/accounts").text
    post_form(c, "/logout", page="/accounts")

    # 第三至五步: the applicant fills everything in and submits.
    sign_in(c, "sjzyy", initial, "Hospital-2026")
    assert post_form(c, "/my/institution", b.form_of(b.profile())).url.path == "/my/attachments"
    for kind, name, content in (
        ("license", "许可证.png", b.png()),
        ("approval", "批文.pdf", b.pdf()),
    ):
        r = post_form(c, "/my/attachments", {"kind": kind}, files={"file": (name, content)})
        assert "附件已上传" in r.text
    r = post_form(c, "/my/departments/new", b.department())
    assert r.url.path == "/my/departments" and "0304" in r.text
    template = c.get("/my/doctors/template.xlsx")
    assert template.headers["content-type"] == XLSX
    r = post_form(
        c,
        "/my/doctors/import",
        files={
            "file": ("人员.xlsx", _excel(template.content, [b.doctor(), b.second_doctor()]), XLSX)
        },
        page="/my/doctors",
    )
    assert "导入成功：新增 2 条" in r.text
    assert "130102********2317" in r.text and "130102197804152317" not in r.text
    r = post_form(c, "/my/submit", page="/my")
    assert r.url.path == "/my/progress" and "待审核" in r.text
    assert post_form(c, "/my/institution", b.form_of(b.profile())).status_code == 403
    post_form(c, "/logout", page="/my")

    # 第六步: the reviewer rejects with a reason, one of them per field.
    sign_in(c, "reviewer1", "Passw0rd-123")
    queue = c.get("/review")
    assert b.ORG_NAME in queue.text
    app_url = re.search(r'href="(/applications/\d+)"', queue.text)
    assert app_url
    r = post_form(
        c,
        app_url.group(1) + "/reject",
        {
            "reason": "执业许可证登记号与许可证原件不一致",
            "field": ["entity.licenseNo", "", ""],
            "field_reason": ["应为 40170028613010211A1002", "", ""],
        },
        page=app_url.group(1),
    )
    assert "已驳回" in r.text and "审核驳回" in r.text
    post_form(c, "/logout", page="/review")

    # The applicant sees the reason next to the field, fixes it and resubmits.
    sign_in(c, "sjzyy", "Hospital-2026")
    home = c.get("/my")
    assert "执业许可证登记号与许可证原件不一致" in home.text
    form = c.get("/my/institution").text
    assert "审核意见：应为 40170028613010211A1002" in form
    fixed = b.profile(**{"entity.licenseNo": "40170028613010211A1002"})
    assert post_form(c, "/my/institution", b.form_of(fixed)).status_code == 200
    r = post_form(c, "/my/submit", page="/my")
    assert "第 2 版" in r.text
    post_form(c, "/logout", page="/my")

    # The reviewer sees exactly what changed, and approves.
    sign_in(c, "reviewer1", "Passw0rd-123")
    page = c.get(app_url.group(1)).text
    assert "与第 1 版（已驳回）相比的变更" in page
    assert (
        "<del>40170028613010211A1001</del>" in page and "<ins>40170028613010211A1002</ins>" in page
    )
    assert "上次驳回原因" in page
    r = post_form(c, app_url.group(1) + "/approve", page=app_url.group(1))
    assert "已审核通过" in r.text
    post_form(c, "/logout", page="/review")

    # 第七步: the applicant sees 审核通过 and can no longer edit anything.
    sign_in(c, "sjzyy", "Hospital-2026")
    progress = c.get("/my/progress").text
    assert "审核通过" in progress and "执业许可证登记号与许可证原件不一致" in progress
    institution = c.get("/my/institution").text
    assert "资料已锁定" in institution and "保存，下一步" not in institution
    assert post_form(c, "/my/institution", b.form_of(b.profile()), page="/my").status_code == 403
    assert (
        post_form(c, "/my/departments/new", b.department(deptID="9"), page="/my").status_code == 403
    )
    assert "添加人员" not in c.get("/my/doctors").text


def test_an_applicant_withdraws_a_submission_not_yet_reviewed(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, who, clock.now())
    sign_in(portal_client, who.username, who.password, "Hospital-2026")
    home = portal_client.get("/my")
    assert "撤回提交" in home.text and "第 1 版尚未审核" in home.text
    r = post_form(portal_client, "/my/withdraw", page="/my")
    assert r.status_code == 200 and r.url.path == "/my"
    assert "已撤回提交，可修改后重新提交" in r.text and "已撤回" in r.text
    assert "重新提交审核" in r.text  # editable again
    progress = portal_client.get("/my/progress")
    assert "撤回提交" in progress.text
    again = post_form(portal_client, "/my/withdraw", page="/my")
    assert again.status_code == 403  # nothing left to withdraw


def test_an_approval_comment_is_shown_as_approval_and_history_names_people_and_bodies(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_complete_applicant(settings, clock.now(), username="zhaomin")
    b.submit(settings, who, clock.now())
    b.make_user(settings, clock.now(), username="li.shen", role="reviewer")

    async def rename(session: AsyncSession) -> None:
        reviewer = await session.scalar(select(PortalUser).where(PortalUser.username == "li.shen"))
        assert reviewer is not None
        reviewer.display_name = "李审核"

    b.run(settings, rename)
    sign_in(portal_client, "li.shen", "Passw0rd-123")
    url = f"/applications/{who.application_id}"
    r = post_form(portal_client, f"{url}/approve", {"reason": "材料齐全"}, page=url)
    assert r.status_code == 200
    history = r.text.split("办理记录", 1)[1].split("</ol>", 1)[0]  # the timeline, not the audit log
    assert '<div class="reason ok"><b>审核意见：</b>材料齐全' in history
    assert "李审核（登记机关）" in history and "li.shen" not in history
    assert f"{b.ORG_NAME}" in history and "zhaomin" not in history

    portal_client.cookies.clear()
    sign_in(portal_client, "zhaomin", who.password, "Hospital-2026")
    progress = portal_client.get("/my/progress").text.split("办理记录", 1)[1].split("</ol>", 1)[0]
    assert '<div class="reason ok"><b>审核意见：</b>材料齐全' in progress
    assert "李审核（登记机关）" in progress and "li.shen" not in progress


def test_an_applicant_views_every_version_it_submitted(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, who, clock.now())
    sign_in(portal_client, who.username, who.password, "Hospital-2026")
    post_form(portal_client, "/my/withdraw", page="/my")
    form = b.form_of(b.profile(**{"entity.grade": "2", "internet.organID": b.ORG}))
    post_form(portal_client, "/my/institution", form)
    post_form(portal_client, "/my/submit", page="/my")
    progress = portal_client.get("/my/progress").text
    url = f"/applications/{who.application_id}"
    assert f'href="{url}?version=2">第 2 版' in progress
    assert f'href="{url}?version=1">第 1 版' in progress
    first = portal_client.get(f"{url}?version=1")
    assert first.status_code == 200 and "这是历史版本" in first.text
    latest = portal_client.get(url)
    assert "与第 1 版（已撤回）相比的变更" in latest.text  # the applicant sees what it changed
    assert "审核通过" not in latest.text.split("办理记录")[0]  # no decision buttons for it
    assert 'action="/applications/' not in latest.text
    assert portal_client.get(f"{url}/v1/doctors/0").status_code == 200
