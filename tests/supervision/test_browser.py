"""The regulator's pages in Debian's headless Chromium against a real server on loopback.

Screenshots at 1366×768 go to ``test-artifacts/supervision/test_browser/<test>/``; every page is
also checked at 390 px (a phone) for horizontal overflow.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from imsp.app import create_exchange_app, create_portal_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.exchange.builders import ORG_B
from tests.qualification import builders as qb
from tests.supervision.portal_builders import HOSPITAL_A, HOSPITAL_B, Reported, report
from tests.support.browser import artifacts_dir, chromium
from tests.support.live import live_server

pytestmark = pytest.mark.browser
PASSWORD = "Passw0rd-123"


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    return artifacts_dir(request, "supervision")


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def reported(settings: Settings, clock: FrozenClock) -> Reported:
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        return report(exchange, settings, clock)


def _fits_phone(browser: Any, url: str, cookies: list[Any]) -> None:
    """At 390 px wide the page scrolls vertically only (tables scroll inside their box)."""
    context = browser.new_context(viewport={"width": 390, "height": 800}, locale="zh-CN")
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(url)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
    context.close()
    assert width <= 390, f"{url} overflows a 390 px screen ({width} px): {wide}"


def _table_rows(page: Any, section: str) -> list[list[str]]:
    rows = page.locator(f"section:has(h2:text-is('{section}')) table.data tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def expect(locator: Any) -> Any:
    """Playwright's retrying assertion (waits for the page the last action led to)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.locator("form button[type=submit]").click()


def _shot(page: Any, where: Path, name: str) -> None:
    page.screenshot(path=str(where / f"{name}.png"), full_page=True)


def test_regulator_drills_down_confirms_and_the_hospital_rectifies_in_chromium(
    reported: Reported,
    browser: Any,
    artifacts: Path,
    settings: Settings,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    # ``reported`` first: its uploads run before Playwright's event loop starts in this thread.
    qb.make_user(settings, clock.now(), username="regulator1", role="regulator")
    own = qb.make_applicant(
        settings, clock.now(), org_code=ORG_B, username="hosp_b", name=HOSPITAL_B
    )
    evidence = tmp_path / "整改说明.pdf"
    evidence.write_bytes(qb.pdf("Rectification report"))
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True
    )
    context.set_default_timeout(30_000)  # a shared 2-core machine can be slow
    page = context.new_page()
    urls: list[str] = []
    with live_server(create_portal_app(settings, clock=clock)) as base:
        # 监管总览 for a chosen period.
        _login(page, base, "regulator1", PASSWORD)
        page.wait_for_url(re.compile(r".*/supervision$"))
        assert page.locator('input[name="start"]').count() == 1, page.inner_text("main")
        page.fill('input[name="start"]', "2026-01-01")
        page.fill('input[name="end"]', "2026-01-15")
        page.get_by_role("button", name="查询").click()
        page.wait_for_url(re.compile(r".*start=2026-01-01.*"))
        assert page.locator("svg.chart").count() == 4
        _shot(page, artifacts, "01-overview")
        urls.append(page.url)
        shown = _table_rows(page, "各医疗机构（按每千条记录发现数排序）")
        assert [r[0] for r in shown] == [HOSPITAL_B, HOSPITAL_A]  # most findings per 1,000 first
        with page.expect_download() as download:
            page.locator("a[href^='/supervision/export/hospitals.xlsx']").click()
        ws = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
        assert ws is not None
        exported = [[str(c) for c in row] for row in ws.iter_rows(min_row=2, values_only=True)]
        assert exported == shown

        # Drill into hospital B, then its R43 findings, then one finding.
        page.get_by_role("link", name=HOSPITAL_B).click()
        page.wait_for_url(re.compile(rf".*/supervision/hospitals/{reported.institution_b}\?.*"))
        assert page.get_by_text("必填项为空").count() == 1
        _shot(page, artifacts, "02-hospital")
        urls.append(page.url)
        page.locator(
            "section:has(h2:has-text('监管发现')) table.data a", has_text="R43"
        ).first.click()
        page.wait_for_url(re.compile(r".*/supervision/findings\?hospital=.*rule=R43.*"))
        listed = page.locator("table.findings tbody tr")
        assert listed.count() >= 1
        with page.expect_download() as download:
            page.get_by_role("link", name="导出 Excel").click()
        ws = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
        assert ws is not None
        page_ids = [
            t.strip()
            for t in page.locator("table.findings tbody tr td:nth-child(2)").all_inner_texts()
        ]
        assert [str(r[0]) for r in ws.iter_rows(min_row=2, values_only=True)] == page_ids
        page.locator("table.findings tbody tr td:nth-child(2) a").first.click()
        page.wait_for_url(re.compile(r".*/supervision/findings/\d+$"))
        finding_url = page.url
        expect(page.locator("#status")).to_have_text("待核实")
        assert page.get_by_text("依据").count() >= 1
        page.locator("form.act-confirm button").click()
        page.wait_for_url(re.compile(r".*ok=saved$"))
        expect(page.locator("#status")).to_have_text("已确认")
        page.fill("form.act-rectify input[name=due_at]", "2026-02-01")
        page.fill("form.act-rectify textarea[name=text]", "请补传医师备案信息")
        page.locator("form.act-rectify button").click()
        page.wait_for_url(re.compile(r".*ok=saved$"))
        expect(page.locator("#status")).to_have_text("整改中")
        _shot(page, artifacts, "03-finding")
        urls.append(finding_url)
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(re.compile(r".*/login\?ok=logout$"))

        # The hospital signs in (first time: changes its password), sees it, answers with a file.
        _login(page, base, own.username, own.password)
        page.wait_for_url(base + "/password")
        page.fill('[name="current"]', own.password)
        page.fill('[name="new"]', "Hospital-2026")
        page.fill('[name="confirm"]', "Hospital-2026")
        page.get_by_role("button", name="确认修改").click()
        page.wait_for_url(re.compile(r".*/my\?ok=password"))
        page.get_by_role("link", name="监管发现").click()
        finding_id = finding_url.rsplit("/", 1)[1]
        page.locator(f"a[href='/my/findings/{finding_id}']").click()
        expect(page.locator("#status")).to_have_text("整改中")
        page.fill("form.act-answer textarea[name=text]", "已补传医师信息并完成备案")
        page.set_input_files("form.act-answer input[name=file]", str(evidence))
        page.locator("form.act-answer button").click()
        page.wait_for_url(re.compile(r".*ok=saved$"))
        assert page.get_by_text("附件：整改说明.pdf").count() == 1
        _shot(page, artifacts, "04-hospital-answered")
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(re.compile(r".*/login\?ok=logout$"))

        # The regulator reads the answer and closes the finding.
        _login(page, base, "regulator1", PASSWORD)
        page.wait_for_url(re.compile(r".*/supervision$"))
        page.goto(finding_url)
        assert page.get_by_text("已补传医师信息并完成备案").count() == 1
        page.locator("form.act-close button").click()
        page.wait_for_url(re.compile(r".*ok=saved$"))
        expect(page.locator("#status")).to_have_text("已整改")
        _shot(page, artifacts, "05-finding-closed")

        page.goto(f"{base}/supervision/records/{reported.record_id}")
        assert page.get_by_text("第 2 版").count() >= 1
        _shot(page, artifacts, "06-record")
        urls.append(page.url)
        cookies = context.cookies()
        for url in (*urls, base + "/supervision/rules", base + "/supervision/findings"):
            _fits_phone(browser, url, cookies)
    context.close()
