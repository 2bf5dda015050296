"""End to end on the real exchange app and the real SDK: a new institution gets test credentials,
pushes generated data until the board turns green item by item, its video is checked, it applies,
the centre confirms, and the issued PDF shows the institution and every figure; ``verify``
accepts it and rejects a modified copy."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from imsp.acceptance import service
from imsp.acceptance.board import Board
from imsp.acceptance.service import Who
from imsp.app import create_exchange_app, create_portal_app
from imsp.auth.credentials import list_credentials
from imsp.auth.service import IssuedCredential
from imsp.cli.main import cli
from imsp.client import Client
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import BadRequest
from imsp.standard.model import load_standard
from imsp.storage.db import Database
from imsp.supervision.sweep import sweep
from tests.acceptance.builders import (
    CENTRE,
    NAME,
    ORG,
    PASSWORD,
    deps,
    make_test_credential,
    recordings_for,
    records,
    register_video,
    run,
    seed_users,
)
from tests.client.inprocess import InProcessTransport
from tests.portal.client import post_form, sign_in
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.live import live_server
from tests.video import builders as video_builders

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> video_builders.Pki:
    return video_builders.make_pki(tmp_path_factory.mktemp("pki"))


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "acceptance"


@pytest.fixture
def exchange(settings: Settings, clock: FrozenClock) -> Iterator[InProcessTransport]:
    with InProcessTransport(create_exchange_app(settings, clock=clock)) as transport:
        yield transport


@pytest.fixture
def cred(settings: Settings, clock: FrozenClock) -> IssuedCredential:
    return make_test_credential(settings, clock)


@pytest.fixture
def sdk(exchange: InProcessTransport, cred: IssuedCredential) -> Iterator[Client]:
    with Client(
        "http://exchange.test",
        cred.app_id,
        cred.app_secret,
        transport=exchange,
        sleep=lambda _: None,
    ) as c:
        yield c


def board(settings: Settings) -> Board:
    async def work(s):  # type: ignore[no-untyped-def]
        inst = await service.institution_by_code(s, ORG)
        return await service.board_of(s, institution_id=inst.id, deps=deps(settings))

    return run(settings, work)


async def supervise(settings: Settings, clock: FrozenClock) -> Any:
    db = Database(settings)
    try:
        return await sweep(db, now=clock.now(), grace=timedelta(hours=48))
    finally:
        await db.dispose()


def state(b: Board) -> dict[str, bool | None]:
    return {i.key: i.ok for p in b.parts for i in p.items}


def push_all(sdk: Client, count: int) -> None:
    std = load_standard()
    from imsp.standard.sample import dependency_order

    # Every dataset, the recommended ones too: payments and appraisals refer to inspection
    # applications and telemedicine records, which supervision checks (R43, R44).
    for ds in dependency_order(std):
        if ds.mandatory or count == 50:
            # One generated world (50 of each): earlier, smaller pushes are its first records.
            receipt = sdk.upload(ds.code, records(ds.code, 50)[:count])
            assert receipt.fail == 0, receipt.rejected[:1]


def test_institution_reaches_a_green_board_applies_and_is_confirmed(
    settings: Settings,
    clock: FrozenClock,
    sdk: Client,
    tmp_path: Path,
    pki: video_builders.Pki,
) -> None:
    before = board(settings)
    assert not before.green
    assert all(ok is False for k, ok in state(before).items() if k != "violations")

    # Too few records: the data part names each service still short.
    sdk.token()
    clock.advance(minutes=1)
    push_all(sdk, 5)
    b = board(settings)
    s = state(b)
    assert s["token"] and s["services"] and s["chunked"]
    assert not s["renewal"] and not s["corrected"]
    assert s["records:department"] is False and s["records:organization"] is True
    assert any("还差 45 条" in m for m in b.missing())

    # A rejected prescription, corrected and resent.
    clock.advance(minutes=1)
    bad = records("prescription", 50)[10]
    bad["datein"] = "not a date"
    assert sdk.upload("prescription", [bad]).fail == 1
    assert state(board(settings))["corrected"] is False
    clock.advance(minutes=1)
    good = records("prescription", 50)[10]  # corrected: the original, valid record
    assert sdk.upload("prescription", [good]).fail == 0
    assert state(board(settings))["corrected"] is True

    # The platform's token expires: the SDK renews it and resends.
    clock.advance(days=2)
    push_all(sdk, 50)
    # The supervision engine evaluates the test data: no open violation on it.
    swept = asyncio.run(supervise(settings, clock))
    assert swept.records > 0
    b = board(settings)
    s = state(b)
    violations = next(i for p in b.parts for i in p.items if i.key == "violations")
    assert violations.ok is True and violations.measured == "0 条", violations
    assert s["renewal"] is True
    assert all(v for k, v in s.items() if k.split(":")[0] in ("records", "validity")), b.missing()
    assert s["video"] is False
    assert b.missing() == ["问诊视频调阅：平台尚未调阅并播放任何测试就诊的视频"] or all(
        "视频" in m or "有效率" in m for m in b.missing()
    )

    # Applying before the video part is green is refused, naming what is missing.
    inst_id = run(settings, lambda s: service.institution_by_code(s, ORG)).id
    applicant = Who("hospital", "applicant", inst_id)
    with pytest.raises(BadRequest, match="问诊视频调阅"):
        run(
            settings,
            lambda s: service.apply(
                s,
                institution_id=inst_id,
                who=applicant,
                now=clock.now(),
                deps=deps(settings),
                internet_hospital=NAME + "互联网医院",
                vendor="测试软件有限公司",
            ),
        )

    # The platform retrieves and plays the video of one test visit at the reference service.
    visits = run(settings, lambda s: service.test_visits(s, institution_id=inst_id))
    assert visits
    seed_users(settings, clock, inst_id)
    operator = Who("operator1", "operator")
    with video_builders.serving(recordings_for(tmp_path / "videos", visits[0]), pki) as server:
        register_video(
            settings, clock, institution_id=inst_id, base_url=server.url, ca_pem=pki.ca_pem
        )
        with pytest.raises(BadRequest, match="不是该机构测试通道"):
            run(
                settings,
                lambda s: service.check_video(
                    s,
                    settings=settings,
                    institution_id=inst_id,
                    visit_no="NOT-A-TEST-VISIT",
                    who=operator,
                    now=clock.now(),
                ),
            )
        result = run(
            settings,
            lambda s: service.check_video(
                s,
                settings=settings,
                institution_id=inst_id,
                visit_no=visits[0],
                who=operator,
                now=clock.now(),
            ),
        )
    assert result.ok, result.message
    assert board(settings).green

    # In the portal: the institution applies, the centre confirms.
    with TestClient(create_portal_app(settings, clock=clock)) as hospital:
        sign_in(hospital, "applicant1", PASSWORD)
        page = hospital.get("/my/acceptance")
        assert "全部达标" in page.text and "申请接入确认" in page.text
        r = post_form(
            hospital,
            f"/acceptance/{ORG}/apply",
            {"internet_hospital": NAME + "互联网医院", "vendor": "测试软件有限公司"},
            page="/my/acceptance",
        )
        assert r.status_code == 200 and "已申请接入确认" in r.text, r.text
    clock.advance(hours=1)
    with TestClient(create_portal_app(settings, clock=clock)) as centre:
        sign_in(centre, "centre1", PASSWORD)
        queue = centre.get("/centre")
        assert NAME in queue.text and "审核" in queue.text
        r = post_form(
            centre, f"/acceptance/{ORG}/decide", {"action": "confirm"}, page=f"/acceptance/{ORG}"
        )
        assert r.status_code == 200 and "production-credential" in r.text, r.text
        reports = run(settings, lambda s: service.reports_of(s, institution_id=inst_id))
        assert len(reports) == 1
        issued = reports[0]
        shown = centre.get(f"/acceptance/reports/{issued.id}.pdf")
        assert shown.status_code == 200 and shown.content == issued.pdf
        as_json = centre.get(f"/acceptance/reports/{issued.id}.json").json()
        assert as_json["number"] == issued.number and as_json["sha256OfPdf"] == issued.sha256
        # The production secret was shown once, on that page only.
        assert "appSecret" not in centre.get(f"/acceptance/{ORG}").text
    creds = run(settings, lambda s: list_credentials(s, org_code=ORG))
    assert sorted(c.channel for c in creds) == ["production", "test"]
    # The qualification filing (资质管理) shows the confirmation.
    with TestClient(create_portal_app(settings, clock=clock)) as hospital:
        sign_in(hospital, "applicant1", PASSWORD)
        home = hospital.get("/my")
        assert "已确认" in home.text and issued.number in home.text
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(issued.pdf)
    text = subprocess.run(
        ["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    compact = re.sub(r"\s+", "", text)
    assert "《接口联调对接验收报告》" in compact and NAME in compact and ORG in compact
    assert issued.number in compact and "测试软件有限公司" in compact
    figures = [i for p in issued.content["parts"] for i in p["items"]]
    assert len(figures) > 40
    for item in figures:
        shown = (item["threshold"], item["measured"])
        if ":" not in item["key"]:  # data items are a service × figure matrix
            shown += (item["label"],)
        for text_ in shown:
            assert re.sub(r"\s+", "", text_) in compact, text_
    for service_ in issued.content["services"]:
        assert service_["name"] in compact
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    for n, png in enumerate(pages, 1):
        shutil.copy(png, ARTIFACTS / f"acceptance-report-page{n}.png")

    # verify accepts the issued bytes and rejects a modified copy.
    env = {
        "IMSP_DATABASE_URL": settings.database_url or "",
        "IMSP_DATA_DIR": str(settings.data_dir),
    }
    ok = CliRunner(env=env).invoke(cli, ["acceptance", "verify", str(pdf)], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "校验通过" in ok.output and issued.number in ok.output
    forged = tmp_path / "forged.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    forged.write_bytes(bytes(data))
    bad = CliRunner(env=env).invoke(cli, ["acceptance", "verify", str(forged)])
    assert bad.exit_code == 1 and "校验失败" in bad.output

    # The JSON content is the same report; the history holds every step.
    assert issued.content["number"] == issued.number
    assert issued.content["verdict"] == "通过"
    steps = run(settings, lambda s: service.timeline(s, institution_id=inst_id))
    assert [t.action for t in steps] == ["apply", "confirm"]

    # Revoking marks the report, never deletes it; the same bytes still verify, marked revoked.
    run(
        settings,
        lambda s: service.decide(
            s,
            institution_id=inst_id,
            action="revoke",
            who=CENTRE,
            now=clock.now(),
            deps=deps(settings),
            reason="复核发现测试数据与实际系统不一致",
        ),
    )
    again = CliRunner(env=env).invoke(cli, ["acceptance", "verify", str(pdf)])
    assert again.exit_code == 0 and "已于" in again.output and "撤销" in again.output

    # The centre's board in Chromium: every item green, the confirmation revoked, its report kept.
    if CHROMIUM.exists():
        from playwright.sync_api import sync_playwright

        with live_server(create_portal_app(settings, clock=clock)) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(base + "/login")
            page.fill("#username", "centre1")
            page.fill("#password", PASSWORD)
            page.locator("form button[type=submit]").click()
            page.wait_for_load_state()
            page.goto(base + f"/acceptance/{ORG}")
            assert "全部达标" in page.locator("#board-verdict").inner_text()
            assert page.locator("table.board tr.bad").count() == 0
            assert "确认已撤销" in page.content() and issued.number in page.content()
            page.screenshot(path=str(ARTIFACTS / "board-centre.png"), full_page=True)
            browser.close()
