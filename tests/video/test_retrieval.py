"""End to end: the reference video service on loopback over HTTPS with a test CA, registered on
the platform; the regulator searches by each index and plays a real MP4 through the platform with
Range requests; every search and playback is audited; acceptance's check_video stores evidence."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.client import videoservice as vs
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.portal.video import format_bytes
from imsp.video.acceptance import check_video
from imsp.video.models import VideoCheck, VideoEndpoint
from tests.portal.client import sign_in
from tests.qualification.builders import run
from tests.video import builders as b

pytestmark = pytest.mark.timeout(120)

_ROW = re.compile(
    r'<td class="small">(VID-\w+)</td>\s*<td><a class="button" href="/video/watch/([\w-]+)">'
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> b.Pki:
    return b.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[vs.Recording]:
    where, index = b.library(tmp_path_factory.mktemp("videos"))
    return vs.load_recordings(where, index)


def leases(html: str) -> dict[str, str]:
    return dict(_ROW.findall(html))


def test_regulator_finds_by_each_index_and_plays_through_the_platform_with_range(
    settings: Settings,
    clock: FrozenClock,
    portal_client: TestClient,
    pki: b.Pki,
    recordings: list[vs.Recording],
) -> None:
    data = recordings[0].path.read_bytes()
    with b.serving(recordings, pki) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem)
        sign_in(portal_client, "regulator1", b.PASSWORD)

        found = {}
        for index, value, expected in (
            ("visitNo", b.VISIT, {"VID-A"}),
            ("idCardNo", b.ID_CARD, {"VID-A"}),
            ("patientName", b.PATIENT, {"VID-A", "VID-B"}),
        ):
            r = portal_client.get("/video/search", params={"org": b.ORG, index: value})
            assert r.status_code == 200, r.text
            assert set(leases(r.text)) == expected, (index, r.text)
            results = r.text.split('id="video-results"', 1)[1]
            assert b.ID_CARD not in results  # the hospital's answer shows the ID number masked
            found = leases(r.text)
        assert "匹配到 2 位患者" in r.text  # a name alone: candidates to choose from

        lease = found["VID-A"]
        page = portal_client.get(f"/video/watch/{lease}")
        assert page.status_code == 200
        assert f'src="/video/stream/{lease}"' in page.text
        assert server.url not in page.text and "sig=" not in page.text  # the hospital's URL stays

        stream = f"/video/stream/{lease}"
        first = portal_client.get(stream, headers={"Range": "bytes=0-1023"})
        assert first.status_code == 206
        assert first.headers["content-range"] == f"bytes 0-1023/{len(data)}"
        assert first.headers["content-type"] == "video/mp4"
        assert first.content == data[:1024] and first.content[4:8] == b"ftyp"
        middle = portal_client.get(stream, headers={"Range": "bytes=1024-9999"})
        assert middle.status_code == 206 and middle.content == data[1024:10000]
        rest = portal_client.get(stream, headers={"Range": "bytes=10000-"})
        assert rest.status_code == 206 and rest.content == data[10000:]
        joined = first.content + middle.content + rest.content
        assert hashlib.sha256(joined).hexdigest() == recordings[0].sha256
        whole = portal_client.get(stream)
        assert whole.status_code == 200 and whole.content == data
        beyond = portal_client.get(stream, headers={"Range": f"bytes={len(data) + 10}-"})
        assert beyond.status_code == 416

        audit = portal_client.get("/video/audit")
        assert audit.status_code == 200
        text = audit.text
        assert text.count("<td>检索</td>") == 3 and text.count("<td>播放</td>") == 1
        assert "1301**********1234" in text and b.ID_CARD not in text
        assert "张*" in text and b.PATIENT not in text.replace("张*", "")
        served = 1024 + 8976 + (len(data) - 10000) + len(data)
        assert format_bytes(served) in text


def test_appsecret_is_encrypted_at_rest_and_never_shown_again(
    settings: Settings, clock: FrozenClock, portal_client: TestClient, pki: b.Pki
) -> None:
    b.seed(settings, clock, base_url="https://127.0.0.1:9", ca_pem=pki.ca_pem)

    async def stored(session: AsyncSession) -> str:
        row = await session.scalar(select(VideoEndpoint))
        assert row is not None
        return row.secret_enc

    assert b.APP_SECRET not in run(settings, stored)
    sign_in(portal_client, "operator1", b.PASSWORD)
    form = portal_client.get(f"/video/endpoints/{b.ORG}")
    assert form.status_code == 200 and b.APP_SECRET not in form.text and "不再显示" in form.text


def test_check_video_finds_plays_and_verifies_and_stores_the_evidence(
    settings: Settings, clock: FrozenClock, pki: b.Pki, recordings: list[vs.Recording]
) -> None:
    with b.serving(recordings, pki) as server:
        seeded = b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem)

        async def check(session: AsyncSession, visit: str) -> object:
            return await check_video(
                session, settings=settings, institution_id=seeded.institution_id,
                visit_no=visit, now=clock.now(), actor="operator1",
            )  # fmt: skip

        good = run(settings, lambda s: check(s, b.VISIT))
        missing = run(settings, lambda s: check(s, "GH-NO-SUCH"))

    assert good.ok and good.found and good.played and good.verified  # type: ignore[attr-defined]
    assert good.sha256 == recordings[0].sha256 and good.size == recordings[0].size  # type: ignore[attr-defined]
    assert set(good.timings) == {"found", "played", "verified"}  # type: ignore[attr-defined]
    assert not missing.ok and not missing.found  # type: ignore[attr-defined]
    assert "GH-NO-SUCH" in missing.message  # type: ignore[attr-defined]

    async def evidence(session: AsyncSession) -> list[tuple[str, bool]]:
        rows = await session.scalars(select(VideoCheck).order_by(VideoCheck.id))
        return [(r.visit_no, r.ok) for r in rows]

    assert run(settings, evidence) == [(b.VISIT, True), ("GH-NO-SUCH", False)]


def test_video_search_needs_a_signed_in_regulator(
    portal_client: TestClient, tmp_path: Path
) -> None:
    r = portal_client.get("/video/search", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert portal_client.get("/video/stream/anything").status_code == 401
