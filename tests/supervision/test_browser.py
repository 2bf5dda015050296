"""The regulator's pages in Debian's headless Chromium against a real server on loopback.

Screenshots at 1366×768 go to ``test-artifacts/supervision/test_browser/<test>/``; every page is
also checked at 390 px (a phone) for horizontal overflow.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from imsp.app import create_exchange_app, create_portal_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.portal.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.qualification import builders as qb
from tests.supervision.portal_builders import HOSPITAL_A, HOSPITAL_B, Reported, report
from tests.support.live import live_server

pytestmark = pytest.mark.browser
PASSWORD = "Passw0rd-123"


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    where = Path(str(request.config.rootpath)) / "test-artifacts" / "supervision" / "test_browser"
    where = where / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    return where


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install-system-deps.sh --dev)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, "--lang=zh-CN"]
        )
        try:
            yield browser
        finally:
            browser.close()


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
    context.close()
    assert width <= 390, f"{url} overflows a 390 px screen ({width} px)"


def _table_rows(page: Any, section: str) -> list[list[str]]:
    rows = page.locator(f"section:has(h2:text-is('{section}')) table.data tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_regulator_reads_overview_hospital_and_record_in_chromium(
    reported: Reported, chromium: Any, artifacts: Path, settings: Settings, clock: FrozenClock
) -> None:
    # ``reported`` first: its uploads run before Playwright's event loop starts in this thread.
    qb.make_user(settings, clock.now(), username="regulator1", role="regulator")
    context = chromium.new_context(
        viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    with live_server(create_portal_app(settings, clock=clock)) as base:
        page.goto(base + "/login")
        page.fill("#username", "regulator1")
        page.fill("#password", PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/supervision$"))
        page.fill('input[name="start"]', "2026-01-01")
        page.fill('input[name="end"]', "2026-01-10")
        page.get_by_role("button", name="查询").click()
        page.wait_for_url(re.compile(r".*start=2026-01-01.*"))
        assert page.locator("svg.chart").count() == 4
        page.screenshot(path=str(artifacts / "01-overview.png"), full_page=True)
        shown = _table_rows(page, "各医疗机构（按每千条记录发现数排序）")
        assert [r[0] for r in shown] == [HOSPITAL_A, HOSPITAL_B]
        with page.expect_download() as download:
            page.locator("a[href^='/supervision/export/hospitals.xlsx']").click()
        ws = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
        assert ws is not None
        exported = [[str(c) for c in row] for row in ws.iter_rows(min_row=2, values_only=True)]
        assert exported == shown
        overview_url = page.url

        page.get_by_role("link", name=HOSPITAL_B).click()
        page.wait_for_url(re.compile(rf".*/supervision/hospitals/{reported.institution_b}\?.*"))
        assert page.get_by_text("必填项为空").count() == 1
        page.screenshot(path=str(artifacts / "02-hospital.png"), full_page=True)
        hospital_url = page.url

        page.goto(f"{base}/supervision/records/{reported.record_id}")
        assert page.get_by_text("第 2 版").count() >= 1
        page.screenshot(path=str(artifacts / "03-record.png"), full_page=True)
        record_url = page.url

        cookies = context.cookies()
        for url in (overview_url, hospital_url, record_url, base + "/supervision/rules"):
            _fits_phone(chromium, url, cookies)
    context.close()
