"""In Debian's headless Chromium: the regulator opens a stored prescription in the record viewer,
clicks 调阅视频, plays the consultation's video through the platform (the <video> element reaches
readyState >= 2 and its time advances), and the audit page then shows the viewing.

Debian's Chromium plays H.264/AAC MP4 (checked: canPlayType says "probably"), so the browser gets
the protocol's own format. Screenshots: ``test-artifacts/video/test_browser/<test>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_exchange_app, create_portal_app
from imsp.client import videoservice as vs
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange.models import Record
from tests.exchange.builders import get_token, make_credential, record
from tests.qualification.builders import run
from tests.support.browser import artifacts_dir, chromium
from tests.support.live import live_server
from tests.video import builders as b

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    return artifacts_dir(request, "video")


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium("--autoplay-policy=no-user-gesture-required") as launched:
        yield launched


def stored_prescription(settings: Settings, clock: FrozenClock) -> tuple[int, str]:
    """A prescription uploaded through the exchange service: (record id, its visit number)."""
    cred = make_credential(settings, clock, b.ORG, b.ORG_NAME)
    rx = record("prescription", b.ORG, n=0)
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        token = get_token(exchange, cred)
        r = exchange.post("/uploadPrescriptionInfo", json=[rx], headers={"accessToken": token})
        assert r.status_code == 200 and r.json()["data"]["success"] == 1, r.text

    async def record_id(session: AsyncSession) -> int:
        rid = await session.scalar(select(Record.id).where(Record.dataset == "prescription"))
        assert rid is not None
        return rid

    return run(settings, record_id), str(rx["bussID"])


@pytest.fixture
def prescription(settings: Settings, clock: FrozenClock) -> tuple[int, str]:
    # Before ``browser``: the upload runs its own event loop, Playwright's then takes the thread.
    return stored_prescription(settings, clock)


def test_regulator_plays_a_prescriptions_video_and_the_audit_shows_it(
    settings: Settings,
    clock: FrozenClock,
    prescription: tuple[int, str],
    browser: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    record_id, visit = prescription
    where = tmp_path / "videos"
    where.mkdir()
    b.make_mp4(where / "consult.mp4", 4)
    (where / "index.json").write_text(
        json.dumps([{"file": "consult.mp4", "videoId": "VID-RX", "visitNo": visit,
                     "patientName": b.PATIENT, "idCardNo": b.ID_CARD, "doctorName": "李医生",
                     "startTime": "2026-01-05 09:00:00", "endTime": "2026-01-05 09:04:00"}],
                   ensure_ascii=False), "utf-8",
    )  # fmt: skip
    recordings = vs.load_recordings(where, where / "index.json")
    pki = b.make_pki(tmp_path / "pki")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    context.set_default_timeout(20_000)
    page = context.new_page()
    with b.serving(recordings, pki) as hospital:
        b.seed(settings, clock, base_url=hospital.url, ca_pem=pki.ca_pem)
        with live_server(create_portal_app(settings, clock=clock)) as base:
            page.goto(base + "/login")
            page.fill("#username", "regulator1")
            page.fill("#password", b.PASSWORD)
            page.locator("form button[type=submit]").click()
            page.wait_for_url(re.compile(r".*/supervision$"))

            page.goto(f"{base}/supervision/records/{record_id}")
            link = page.locator("#video-link")
            assert link.inner_text() == "调阅视频"
            page.screenshot(path=str(artifacts / "01-prescription.png"), full_page=True)
            link.click()
            page.wait_for_url(re.compile(r".*/video/search\?org=.*visitNo=.*"))
            assert page.locator("#video-results tbody tr").count() == 1
            assert b.ID_CARD not in page.locator("#video-results").inner_text()
            page.screenshot(path=str(artifacts / "02-search.png"), full_page=True)

            page.get_by_role("link", name="播放").click()
            page.wait_for_url(re.compile(r".*/video/watch/.*"))
            player = page.locator("video#player")
            assert hospital.url not in page.content()  # the hospital's address stays server-side
            page.wait_for_function(
                "() => document.getElementById('player').readyState >= 2", timeout=20_000
            )
            page.evaluate("() => document.getElementById('player').play()")
            page.wait_for_function(
                "() => document.getElementById('player').currentTime > 1.0", timeout=20_000
            )
            state = player.evaluate(
                "v => ({ready: v.readyState, error: v.error && v.error.code, w: v.videoWidth})"
            )
            assert state["ready"] >= 2 and state["error"] is None and state["w"] == 160
            page.screenshot(path=str(artifacts / "03-playing.png"), full_page=True)

            page.goto(base + "/video/audit")
            rows = page.locator("#video-audit tbody tr")
            texts = [rows.nth(i).inner_text() for i in range(rows.count())]
            played = [t for t in texts if "播放" in t and "VID-RX" in t]
            assert played, texts
            assert "regulator1" in played[0] and "127.0.0.1" in played[0]
            assert re.search(r"\d+(\.\d)? (B|KB|MB)", played[0]), played[0]
            assert any("检索" in t and "就诊流水号" in t for t in texts)
            page.screenshot(path=str(artifacts / "04-audit.png"), full_page=True)
    context.close()
