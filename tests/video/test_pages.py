"""The video pages' rules: registration (validation, secret kept when left blank), scope (a
hospital reaches only its own institution, a lease only its own viewer), the token refreshed and
the request resent once, a stale playback URL refreshed, too many matches explained."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import service as auth
from imsp.client import videoservice as vs
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.standard import video as P
from imsp.video import sealing
from imsp.video.models import VideoEndpoint
from tests.portal.client import csrf_of, sign_in
from tests.qualification.builders import run
from tests.video import builders as b
from tests.video.test_retrieval import leases

pytestmark = pytest.mark.timeout(90)
OTHER_ORG = "91110000802100433B"


def other_institution(settings: Settings, clock: FrozenClock) -> None:
    async def work(session: AsyncSession) -> None:
        await auth.ensure_institution(
            session, org_code=OTHER_ORG, name="另一家医院", now=clock.now()
        )

    run(settings, work)


def stored_secret(settings: Settings) -> str:
    async def work(session: AsyncSession) -> str:
        row = await session.scalar(select(VideoEndpoint))
        assert row is not None
        return sealing.unseal(settings, row.secret_enc)

    return run(settings, work)


def test_registration_form_explains_bad_input_and_keeps_the_secret_when_left_blank(
    settings: Settings, clock: FrozenClock, portal_client: TestClient, pki: b.Pki
) -> None:
    b.seed(settings, clock, base_url="https://127.0.0.1:9443", ca_pem=pki.ca_pem)
    sign_in(portal_client, "operator1", b.PASSWORD)
    path = f"/video/endpoints/{b.ORG}"
    token = csrf_of(portal_client.get(path).text)
    bad = portal_client.post(path, data={"csrf_token": token, "base_url": "http://10.0.0.1",
                                         "app_id": "", "ca_bundle": "not a certificate"})  # fmt: skip
    assert bad.status_code == 400
    for msg in ("须为 https:// 开头", "请填写医院为平台分配的 appId", "不是合法的 PEM"):
        assert msg in bad.text
    assert stored_secret(settings) == b.APP_SECRET  # nothing changed

    ok = portal_client.post(path, data={"csrf_token": token, "base_url": "https://127.0.0.1:9444/",
                                        "app_id": "new-app", "app_secret": "",
                                        "ca_bundle": pki.ca_pem})  # fmt: skip
    assert ok.status_code == 200 and "已保存" in ok.text
    assert "https://127.0.0.1:9444" in ok.text and b.APP_SECRET not in ok.text
    assert stored_secret(settings) == b.APP_SECRET  # left blank: kept

    listing = portal_client.get("/video/endpoints")
    assert (
        listing.status_code == 200
        and b.ORG in listing.text
        and "https://127.0.0.1:9444" in listing.text
    )

    forged = portal_client.post(
        path, data={"csrf_token": "x", "base_url": "https://a", "app_id": "a"}
    )
    assert forged.status_code == 403


def test_a_hospital_reaches_only_its_own_institution_and_its_own_leases(
    settings: Settings,
    clock: FrozenClock,
    portal_client: TestClient,
    pki: b.Pki,
    recordings: list[vs.Recording],
) -> None:
    with b.serving(recordings, pki) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem,
               users=("regulator", "applicant"))  # fmt: skip
        other_institution(settings, clock)
        sign_in(portal_client, "regulator1", b.PASSWORD)
        regulators = leases(portal_client.get("/video/search", params={"org": b.ORG,
                                                                       "visitNo": b.VISIT}).text)  # fmt: skip
        portal_client.post(
            "/logout", data={"csrf_token": csrf_of(portal_client.get("/video/audit").text)}
        )

        sign_in(portal_client, "applicant1", b.PASSWORD)
        own = portal_client.get("/video/search", params={"org": b.ORG, "visitNo": b.VISIT})
        assert set(leases(own.text)) == {"VID-A"}
        assert portal_client.get(f"/video/endpoints/{OTHER_ORG}").status_code == 403
        elsewhere = portal_client.get(
            "/video/search", params={"org": OTHER_ORG, "visitNo": b.VISIT}
        )
        assert not leases(elsewhere.text)
        # Another viewer's lease is as if it did not exist (page and stream).
        assert portal_client.get(f"/video/watch/{regulators['VID-A']}").status_code == 404
        assert portal_client.get(f"/video/stream/{regulators['VID-A']}").status_code == 404
        audit = portal_client.get("/video/audit").text
        assert (
            "applicant1" in audit and "regulator1" not in audit
        )  # its own accounts' viewings only


class CountingTokens(vs.VideoHandler):
    issued = 0

    def token(self, params: dict[str, str]) -> None:
        type(self).issued += 1
        super().token(params)


def test_token_rejected_by_the_hospital_is_refreshed_and_the_query_resent_once(
    settings: Settings,
    clock: FrozenClock,
    portal_client: TestClient,
    pki: b.Pki,
    recordings: list[vs.Recording],
) -> None:
    CountingTokens.issued = 0
    with b.serving(recordings, pki, handler=CountingTokens) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem)
        sign_in(portal_client, "regulator1", b.PASSWORD)
        params = {"org": b.ORG, "visitNo": b.VISIT}
        assert leases(portal_client.get("/video/search", params=params).text)
        assert leases(portal_client.get("/video/search", params=params).text)
        assert CountingTokens.issued == 1  # cached between searches
        server.tokens.clear()  # the hospital forgets it (restart): 40102 on the next query
        assert leases(portal_client.get("/video/search", params=params).text)
        assert CountingTokens.issued == 2


def test_expired_playback_url_is_refreshed_by_a_new_query(
    settings: Settings,
    clock: FrozenClock,
    portal_client: TestClient,
    pki: b.Pki,
    recordings: list[vs.Recording],
) -> None:
    with b.serving(recordings, pki, url_ttl=1) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem)
        sign_in(portal_client, "regulator1", b.PASSWORD)
        lease = leases(portal_client.get("/video/search",
                                         params={"org": b.ORG, "visitNo": b.VISIT}).text)["VID-A"]  # fmt: skip
        time.sleep(2.2)
        r = portal_client.get(f"/video/stream/{lease}", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and r.content == recordings[0].path.read_bytes()[:100]


def test_too_many_matches_asks_for_narrower_criteria(
    settings: Settings,
    clock: FrozenClock,
    portal_client: TestClient,
    pki: b.Pki,
    recordings: list[vs.Recording],
) -> None:
    many = [
        dataclasses.replace(recordings[0], video_id=f"V{n}", visit_no=f"GH{n}")
        for n in range(P.MAX_RESULTS + 1)
    ]
    with b.serving(many, pki) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem)
        sign_in(portal_client, "regulator1", b.PASSWORD)
        r = portal_client.get("/video/search", params={"org": b.ORG, "patientName": b.PATIENT})
        assert "匹配结果过多" in r.text and "请增加检索条件" in r.text
        assert "（too_many）" in portal_client.get("/video/audit").text


def test_search_without_an_index_explains_what_is_needed(
    settings: Settings, clock: FrozenClock, portal_client: TestClient, pki: b.Pki
) -> None:
    b.seed(settings, clock, base_url="https://127.0.0.1:9", ca_pem=pki.ca_pem)
    sign_in(portal_client, "regulator1", b.PASSWORD)
    r = portal_client.get("/video/search", params={"org": b.ORG, "visitNo": "x" * 65})
    assert r.status_code == 200 and "就诊流水号过长" in r.text
    r = portal_client.get("/video/search", params={"org": b.ORG, "visitNo": "1",
                                                   "startDate": "2026-13-01"})  # fmt: skip
    assert "日期格式为 yyyy-MM-dd" in r.text
