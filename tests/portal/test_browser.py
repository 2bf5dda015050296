"""The whole chapter-5 flow in Debian's headless Chromium against a real server on loopback.

operator allocates the account → applicant signs in, changes the initial password, fills in
机构注册, uploads both attachments, adds a department (form) and doctors (Excel import), submits →
reviewer rejects with a reason → applicant sees it, fixes, resubmits → reviewer sees the diff and
approves → applicant sees 审核通过 and can no longer edit. Every page of the flow is shot at
1366×768 and 390×844 into ``test-artifacts/<module>/<test>/``, and at 390 px the page must not be
wider than the screen (tables scroll inside their cards).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from imsp.app import create_portal_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.qualification import builders as b
from tests.support.browser import artifacts_dir, chromium
from tests.support.live import live_server

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
STAFF_PASSWORD = "Passw0rd-123"
NEW_PASSWORD = "Hospital-2026"


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    return artifacts_dir(request, "portal")


@pytest.fixture
def browser_page(artifacts: Path) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
        context.set_default_timeout(30_000)  # a loaded 2-core machine
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            yield page
        finally:
            context.close()
        # The pages' own CSP refuses inline styles and scripts: nothing of ours may need them.
        assert refused == []


class Shots:
    """A screenshot of the current page at desktop and phone width; at phone width it also
    records the page if it is wider than the screen (``too_wide``: name → scrollWidth)."""

    def __init__(self, page: Any, where: Path) -> None:
        self.page, self.where, self.n = page, where, 0
        self.too_wide: dict[str, int] = {}
        self.broken_links: dict[str, list[str]] = {}  # links wrapped over two lines

    def __call__(self, name: str) -> None:
        self.n += 1
        stem = self.where / f"{self.n:02d}-{name}"
        self.page.screenshot(path=f"{stem}-1366.png", full_page=True)
        self.page.set_viewport_size(PHONE)
        try:
            width = self.page.evaluate("document.documentElement.scrollWidth")
            if width != PHONE["width"]:
                self.too_wide[name] = width
            broken = self.page.evaluate(
                "[...document.querySelectorAll('header a, header button, nav a')]"
                ".filter(e => e.getClientRects().length > 1).map(e => e.textContent.trim())"
            )
            if broken:
                self.broken_links[name] = broken
            self.page.screenshot(path=f"{stem}-390.png", full_page=True)
        finally:
            self.page.set_viewport_size(DESKTOP)


def fill(page: Any, values: dict[str, Any]) -> None:
    """Type ``values`` into the form fields named like their keys, as a person would."""
    for name, value in values.items():
        field = page.locator(f'[name="{name}"]')
        if field.count() == 0 or value is None:
            continue
        first = field.first
        tag = first.evaluate("e => e.tagName.toLowerCase()")
        kind = first.get_attribute("type")
        if tag == "select":
            first.select_option(str(value))
        elif kind == "checkbox":
            for code in str(value).split("|"):
                page.locator(f'[name="{name}"][value="{code}"]').check()
        else:
            first.fill(str(value))


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("form button[type=submit]").click()


def logout(page: Any) -> None:
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(re.compile(r".*/login\?ok=logout$"))


def doctors_workbook(template: bytes) -> bytes:
    wb = load_workbook(io.BytesIO(template))
    ws = wb.worksheets[0]
    codes = [c.value for c in ws[2]]
    for row, record in enumerate((b.doctor(), b.second_doctor()), start=3):
        for col, code in enumerate(codes, start=1):
            value = record.get(str(code))
            ws.cell(row=row, column=col, value=None if value is None else str(value))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_whole_registration_and_review_flow_in_chromium(
    browser_page: Any,
    artifacts: Path,
    settings: Settings,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    page = browser_page
    shot = Shots(page, artifacts)
    b.make_user(settings, clock.now(), username="operator1", role="operator")
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    licence = tmp_path / "执业许可证.png"
    licence.write_bytes(b.png(120, 80))
    approval = tmp_path / "线下审批文件.pdf"
    approval.write_bytes(b.pdf("Approval No. 2025-15"))

    with live_server(create_portal_app(settings, clock=clock)) as base:
        # 第二步: the operator allocates an account to the applicant institution.
        page.goto(base + "/my")
        assert page.url.startswith(base + "/login?next=")
        shot("login")
        login(page, base, "operator1", STAFF_PASSWORD)
        page.wait_for_url(base + "/accounts")
        page.get_by_role("link", name="分配账号").first.click()
        fill(page, {"role": "applicant", "username": "sjzyy", "display_name": "示范医院信息科"})
        fill(page, {"org_code": b.ORG, "org_name": b.ORG_NAME})
        page.get_by_role("button", name="创建账号").click()
        initial = page.locator("#issued-password").inner_text().strip()
        assert len(initial) == 14
        shot("operator-account-issued")
        page.get_by_role("link", name="返回账号列表").click()
        shot("operator-accounts")
        logout(page)

        # The applicant signs in and must change the initial password first.
        clock.advance(minutes=30)
        login(page, base, "sjzyy", initial)
        page.wait_for_url(base + "/password")
        shot("applicant-forced-password-change")
        fill(page, {"current": initial, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        page.get_by_role("button", name="确认修改").click()
        page.wait_for_url(re.compile(r".*/my\?ok=password"))
        shot("applicant-overview-empty")

        # 机构注册: a wrong phone number is explained next to the field; the rest is kept.
        page.get_by_role("link", name="机构注册").first.click()
        fill(page, b.form_of(b.profile(**{"entity.legalPhone": "0311-123"})))
        page.get_by_role("button", name="保存，下一步：上传附件").click()
        error = page.locator(".field.has-error .error")
        assert error.count() == 1
        assert "电话" in error.inner_text()
        assert page.locator('[name="entity.address"]').input_value().startswith("河北省石家庄市")
        shot("institution-form-with-error")
        fill(page, {"entity.legalPhone": "0311-85988888"})
        page.get_by_role("button", name="保存，下一步：上传附件").click()
        page.wait_for_url(re.compile(r".*/my/attachments\?ok=saved"))

        # A file over the limit is stopped in the browser, before a byte is sent.
        big = tmp_path / "扫描件.pdf"
        big.write_bytes(b"%PDF-1.4\n" + b"0" * settings.portal.max_upload_bytes)
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.set_input_files("#file", str(big))
        page.get_by_role("button", name="上传").click()
        check = page.locator(".error[data-upload-check]")
        assert check.inner_text() == "文件超过上限 10 MB，未上传；请压缩或拆分后重新上传"
        assert posts == [] and page.url.endswith("ok=saved")
        assert "单个文件不超过 10 MB" in page.locator(".hint", has_text="单个文件").inner_text()
        shot("attachment-too-large")

        # Attachments: the practice licence and the offline approval document.
        for kind, path in (("license", licence), ("approval", approval)):
            page.select_option("#kind", kind)
            page.set_input_files("#file", str(path))
            page.get_by_role("button", name="上传").click()
            page.wait_for_url(re.compile(r".*ok=uploaded"))
        assert page.locator("text=执业许可证.png").count() == 1
        assert page.locator("text=线下审批文件.pdf").count() == 1
        shot("attachments")

        # 科室 by form, 人员 by Excel import from the offered template.
        page.get_by_role("link", name="科室信息").first.click()
        page.get_by_role("link", name="添加科室").click()
        fill(page, b.department(subjectName=None))
        shot("department-form")
        page.get_by_role("button", name="保存").click()
        page.wait_for_url(re.compile(r".*/my/departments\?ok=saved"))
        assert page.locator("td", has_text="心血管内科").count() >= 1
        shot("departments")
        # Deleting asks first; saying no keeps the department.
        questions: list[str] = []
        page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
        page.get_by_role("button", name="删除").first.click()
        assert questions == ["确定删除科室“0304 心血管内科”吗？"]
        assert page.locator("td", has_text="心血管内科").count() >= 1
        page.get_by_role("link", name="人员信息").first.click()
        with page.expect_download() as download:
            page.get_by_role("link", name="下载导入模板").click()
        template = Path(download.value.path()).read_bytes()
        workbook = tmp_path / "人员信息.xlsx"
        workbook.write_bytes(doctors_workbook(template))
        page.set_input_files('input[name="file"]', str(workbook))
        page.get_by_role("button", name="导入").click()
        page.wait_for_url(re.compile(r".*imported=2-0"))
        assert page.locator("text=130102********2317").count() == 1
        assert page.locator("text=130102197804152317").count() == 0
        shot("doctors-imported")

        # Submit (第 5 步).
        page.get_by_role("link", name="申请概览").click()
        shot("overview-complete")
        page.get_by_role("button", name="提交审核").click()
        page.wait_for_url(re.compile(r".*/my/progress\?ok=submitted"))
        shot("progress-submitted")
        logout(page)

        # The reviewer rejects, with a reason for one field.
        clock.advance(hours=3)
        login(page, base, "reviewer1", STAFF_PASSWORD)
        page.wait_for_url(base + "/review")
        shot("review-queue")
        page.get_by_role("link", name="审核", exact=True).click()
        page.fill("#reject-reason", "执业许可证登记号与许可证原件不一致，请核对后重新提交")
        page.locator('select[name="field"]').first.select_option("entity.licenseNo")
        page.locator('input[name="field_reason"]').first.fill("原件登记号为 40170028613010211A1002")
        shot("review-before-reject")
        page.get_by_role("button", name="审核驳回").click()
        page.wait_for_url(re.compile(r".*ok=rejected"))
        logout(page)

        # The applicant sees the reason (also beside the field), fixes it and resubmits.
        clock.advance(days=1)
        login(page, base, "sjzyy", NEW_PASSWORD)
        page.wait_for_url(base + "/my")
        assert page.locator("text=执业许可证登记号与许可证原件不一致").count() >= 1
        shot("applicant-sees-rejection")
        # 消息中心: the header counts the unread message; it carries the reasons.
        assert page.locator("#unread-count").inner_text() == "1"
        page.locator("#messages-link").click()
        message = page.locator("li.message.unread")
        assert "资质申请被驳回（第 1 版）" in message.inner_text()
        assert "原件登记号为 40170028613010211A1002" in message.inner_text()
        shot("applicant-messages")
        page.get_by_role("button", name="全部标为已读").click()
        page.wait_for_url(re.compile(r".*/messages\?ok=read"))
        assert page.locator("#unread-count").count() == 0
        assert page.locator("li.message.unread").count() == 0
        page.get_by_role("link", name="机构注册").first.click()
        assert "原件登记号为 40170028613010211A1002" in page.locator(".review-note").inner_text()
        shot("institution-with-review-note")
        page.fill('[name="entity.licenseNo"]', "40170028613010211A1002")
        page.get_by_role("button", name="保存，下一步：上传附件").click()
        page.wait_for_url(re.compile(r".*ok=saved"))
        page.get_by_role("link", name="申请概览").click()
        page.get_by_role("button", name="重新提交审核").click()
        page.wait_for_url(re.compile(r".*/my/progress\?ok=submitted"))
        logout(page)

        # The reviewer sees the field-level diff against the rejected version, and approves.
        clock.advance(hours=2)
        login(page, base, "reviewer1", STAFF_PASSWORD)
        page.wait_for_url(base + "/review")
        assert page.locator("#unread-count").inner_text() == "2"  # submitted, resubmitted
        page.locator("#messages-link").click()
        assert page.locator("li.message", has_text="资质申请已重新提交，待审核").count() == 1
        shot("reviewer-messages")
        page.locator("li.message.unread").first.get_by_role("button", name="标为已读").click()
        page.wait_for_url(re.compile(r".*/messages\?ok=read"))
        assert page.locator("#unread-count").inner_text() == "1"
        page.get_by_role("link", name="待审核").first.click()
        page.get_by_role("link", name="审核", exact=True).click()
        diff = page.locator("#diff")
        assert "与第 1 版（已驳回）相比的变更" in diff.inner_text()
        assert diff.locator("del", has_text="40170028613010211A1001").count() == 1
        assert diff.locator("ins", has_text="40170028613010211A1002").count() == 1
        shot("review-diff")
        page.get_by_role("button", name="审核通过").click()
        page.wait_for_url(re.compile(r".*ok=approved"))
        shot("review-approved")
        logout(page)

        # 审核通过: the applicant sees it, and nothing can be edited any more.
        login(page, base, "sjzyy", NEW_PASSWORD)
        page.get_by_role("link", name="审核进度查询").click()
        assert "审核通过" in page.locator("#current-status").inner_text()
        shot("progress-approved")
        page.get_by_role("link", name="机构注册").first.click()
        assert page.get_by_role("button", name="保存，下一步：上传附件").count() == 0
        assert page.locator('[name="entity.licenseNo"]').is_disabled()
        assert "资料已锁定" in page.content()
        shot("institution-locked")
        page.get_by_role("link", name="人员信息").first.click()
        assert page.get_by_role("button", name="导入").count() == 0
        assert page.get_by_role("link", name="添加人员").count() == 0
        shot("doctors-locked")
        # Printed, a page is its content only: no header, navigation, footer or buttons.
        page.get_by_role("link", name="审核进度查询").click()
        page.emulate_media(media="print")
        assert not page.locator("header.top").is_visible()
        assert not page.locator("nav.main").is_visible()
        assert page.locator("#current-status").is_visible()
        page.emulate_media(media="screen")
        # 备案登记表 of the approved application, as PDF.
        with page.expect_download(timeout=120_000) as download:
            page.locator("#filing-record").click()
        assert download.value.suggested_filename.endswith("第2版.pdf")
        filing = Path(download.value.path()).read_bytes()
        assert filing.startswith(b"%PDF-")
        (artifacts / "filing-record.pdf").write_bytes(filing)
        # Signing out says so on the sign-in page.
        logout(page)
        assert "已退出登录" in page.locator(".flash.ok").inner_text()
        shot("signed-out")

    # 390 px phones: no page wider than the screen, no link broken over two lines.
    assert shot.too_wide == {}
    assert shot.broken_links == {}


def test_native_widgets_speak_chinese(
    browser_page: Any, artifacts: Path, settings: Settings
) -> None:
    """The browser's own widgets follow --lang=zh-CN (Debian's chromium-l10n): the file chooser
    button reads 选择文件 and a required field's bubble is Chinese."""
    page = browser_page
    with live_server(create_portal_app(settings)) as base:
        page.goto(base + "/login")
        message = page.evaluate("document.querySelector('#username').validationMessage")
        assert message == "请填写此字段。"
        # An unlabelled file input, so its accessible name is the browser's own button text.
        page.set_content('<p>执业许可证</p><input type="file" id="file">')
        tree = page.context.new_cdp_session(page).send("Accessibility.getFullAXTree")
        buttons = [
            n.get("name", {}).get("value")
            for n in tree["nodes"]
            if n.get("role", {}).get("value") == "button"
        ]
        assert "选择文件" in buttons, buttons
        page.screenshot(path=str(artifacts / "file-chooser-1366.png"))
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(artifacts / "file-chooser-390.png"))
