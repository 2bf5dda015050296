"""The operator's connection monitor (接入监控) and the acceptance board in Debian's headless
Chromium against real servers on loopback: a hospital's failed uploads appear with the error and
the masked example record; the archived request opens masked. Screenshots go to
``test-artifacts/acceptance/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from imsp.acceptance import service
from imsp.app import create_exchange_app, create_portal_app
from imsp.auth.models import AuditEvent
from imsp.auth.service import IssuedCredential
from imsp.client import Client
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.acceptance.builders import (
    NAME,
    ORG,
    PASSWORD,
    make_test_credential,
    records,
    run,
    seed_users,
)
from tests.support.browser import chromium
from tests.support.live import live_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "acceptance"
BAD_ID = "130102199001011230"  # wrong GB 11643 check digit


@pytest.fixture
def page() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.set_default_timeout(15_000)
        pg = context.new_page()
        try:
            yield pg
        finally:
            context.close()


def audited_views(settings: Settings) -> list[str]:
    """Read synchronously: Playwright's sync API holds this thread's event loop."""
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            stmt = select(AuditEvent.action).where(AuditEvent.action == "exchange.view")
            return list(conn.scalars(stmt.order_by(AuditEvent.id)))
    finally:
        engine.dispose()


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def cred(settings: Settings, clock: FrozenClock) -> IssuedCredential:
    """Seeded before the browser starts (Playwright's sync API holds the thread's event loop)."""
    issued = make_test_credential(settings, clock)
    inst_id = run(settings, lambda s: service.institution_by_code(s, ORG)).id
    seed_users(settings, clock, inst_id)
    return issued


def test_operator_monitor_shows_failed_uploads_with_error_and_masked_example(
    settings: Settings, clock: FrozenClock, cred: IssuedCredential, page: Any
) -> None:
    with (
        live_server(create_exchange_app(settings, clock=clock)) as exchange,
        live_server(create_portal_app(settings, clock=clock)) as portal,
    ):
        with Client(exchange, cred.app_id, cred.app_secret) as sdk:
            sdk.upload("doctor", records("doctor", 12))
            patients = records("patient", 8)
            for r in patients[:3]:
                r["patientCertID"] = BAD_ID
            receipt = sdk.upload("patient", patients)
            assert receipt.fail == 3

        sign_in(page, portal, "operator1")
        page.goto(portal + "/monitor")
        row = page.locator(f"tr[data-org='{ORG}']")
        assert NAME in row.inner_text() and "联调测试中" in row.inner_text()
        assert "20 / 3" in row.inner_text()  # records / failed
        page.screenshot(path=str(ARTIFACTS / "monitor.png"), full_page=True)

        row.get_by_role("link", name="详情").click()
        errors = page.locator("#frequent-errors tr.error-row")
        assert errors.count() >= 1
        first = errors.first
        text = first.inner_text()
        assert "患者基本信息" in text and "patientCertID" in text and "3" in text
        first.locator("summary").click()
        example = first.locator("pre.example").inner_text()
        assert BAD_ID not in example and "130102********1230" in example
        page.screenshot(path=str(ARTIFACTS / "monitor-detail.png"), full_page=True)
        assert BAD_ID not in page.content()

        first.get_by_role("link").click()
        page.wait_for_load_state()
        assert "归档报文（已脱敏）" in page.content() and BAD_ID not in page.content()
        assert "130102********1230" in page.content()

        viewed = audited_views(settings)
        assert viewed == ["exchange.view", "exchange.view"]  # the detail page and the request
        page.goto(portal + f"/acceptance/{ORG}")
        doctor = page.locator("tr[data-item='records:doctor']")
        assert "12 条" in doctor.inner_text() and "达标" in doctor.inner_text()
        patient = page.locator("tr[data-item='records:patient']")
        assert "还差 45 条" in patient.inner_text()
        assert "未达标" in page.locator("#board-verdict").inner_text()
        page.screenshot(path=str(ARTIFACTS / "board-operator.png"), full_page=True)
