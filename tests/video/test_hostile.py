"""Hostile or broken hospital video services: each gets a clear Chinese message in the portal and
an audit entry, and the platform never hangs, never follows a redirect off the registered host and
never fetches anything but the registered endpoint. Each test is bounded by its timeout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imsp.app import create_portal_app
from imsp.client import videoservice as vs
from imsp.clock import FrozenClock
from imsp.config import Settings, VideoSettings
from tests.portal.client import sign_in
from tests.video import builders as b
from tests.video.test_retrieval import leases

pytestmark = pytest.mark.timeout(60)

#: Tight limits so that every hostile behaviour is detected within seconds.
TIGHT = VideoSettings(connect_timeout=2, read_timeout=1, query_deadline=3, max_json_bytes=64 * 1024)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> b.Pki:
    return b.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> b.Pki:
    return b.make_pki(tmp_path_factory.mktemp("other"), "other")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[vs.Recording]:
    where, index = b.library(tmp_path_factory.mktemp("videos"))
    return vs.load_recordings(where, index)


class Witness:
    """A server that must never be contacted (a redirect target, an internal address)."""

    def __init__(self) -> None:
        self.hits = 0
        witness = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                witness.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def witness() -> Iterator[Witness]:
    w = Witness()
    yield w
    w.close()


@contextmanager
def portal(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    tight = settings.model_copy(update={"video": TIGHT})
    with TestClient(create_portal_app(tight, clock=clock)) as client:
        sign_in(client, "regulator1", b.PASSWORD)
        yield client


def search(client: TestClient) -> str:
    r = client.get("/video/search", params={"org": b.ORG, "visitNo": b.VISIT})
    assert r.status_code == 200
    return r.text


def problem(html: str) -> str:
    assert 'id="video-problem"' in html, html
    return html.split('id="video-problem">', 1)[1].split("</div>", 1)[0]


def audited(client: TestClient, kind: str) -> str:
    page = client.get("/video/audit").text
    assert f"（{kind}）" in page, page
    return page


def run_hostile(
    settings: Settings,
    clock: FrozenClock,
    recordings: list[vs.Recording],
    handler: type[vs.VideoHandler],
    pki: b.Pki,
    *,
    registered_ca: str | None = None,
) -> tuple[str, str]:
    """Search against a service using ``handler``; the portal's message and the audit page."""
    with b.serving(recordings, pki, handler=handler) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=registered_ca or pki.ca_pem)
        with portal(settings, clock) as client:
            html = search(client)
            return problem(html), client.get("/video/audit").text


def test_wrong_certificate_is_refused(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording],
    pki: b.Pki, other_pki: b.Pki,
) -> None:  # fmt: skip
    msg, audit = run_hostile(
        settings, clock, recordings, vs.VideoHandler, other_pki, registered_ca=pki.ca_pem
    )
    assert "证书未通过校验" in msg
    assert "（tls）" in audit


class Slow(vs.VideoHandler):
    """Answers, but one byte every 0.4 s: each read is within the read timeout, the whole is not."""

    def token(self, params: dict[str, str]) -> None:
        body = json.dumps({"code": 200, "msg": "成功", "data": {"accessToken": "t" * 20,
                                                               "expiresIn": 60}}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.4)


def test_slow_service_is_given_up_after_the_deadline(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki
) -> None:
    msg, audit = run_hostile(settings, clock, recordings, Slow, pki)
    assert "应答过慢" in msg and "（slow）" in audit


class Silent(vs.VideoHandler):
    """Accepts the connection and the request, then never answers."""

    def token(self, params: dict[str, str]) -> None:
        time.sleep(30)


def test_service_that_never_answers_times_out(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki
) -> None:
    msg, audit = run_hostile(settings, clock, recordings, Silent, pki)
    assert "没有应答" in msg and "（timeout）" in audit


class Huge(vs.VideoHandler):
    """A JSON answer without a length that never ends (up to 64 MB)."""

    def token(self, params: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b'{"pad": "' + b"x" * 65536
        for _ in range(1024):
            self.wfile.write(chunk)


def test_huge_answer_is_cut_at_the_size_limit(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki
) -> None:
    msg, audit = run_hostile(settings, clock, recordings, Huge, pki)
    assert "应答过大" in msg and "（too_large）" in audit


class WrongType(vs.VideoHandler):
    def token(self, params: dict[str, str]) -> None:
        body = "<html><body>登录页</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_wrong_content_type_is_refused(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki
) -> None:
    msg, audit = run_hostile(settings, clock, recordings, WrongType, pki)
    assert "应答类型错误" in msg and "text/html" in msg and "（content_type）" in audit


def test_redirect_to_another_host_is_not_followed(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki,
    witness: Witness,
) -> None:  # fmt: skip
    class Redirect(vs.VideoHandler):
        def token(self, params: dict[str, str]) -> None:
            self.send_response(302)
            self.send_header("Location", witness.url + "/auth/accesstoken/create")
            self.send_header("Content-Length", "0")
            self.end_headers()

    msg, audit = run_hostile(settings, clock, recordings, Redirect, pki)
    assert "重定向" in msg and "不跟随" in msg and "（redirect）" in audit
    assert witness.hits == 0


def test_playback_url_to_an_internal_address_is_refused(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki,
    witness: Witness,
) -> None:  # fmt: skip
    class Elsewhere(vs.VideoHandler):
        def send_json(self, code: int, data: Any = None, **kw: Any) -> None:
            if isinstance(data, dict) and data.get("videos"):
                for v in data["videos"]:
                    v["playUrl"] = witness.url.replace("http:", "https:") + "/internal/secret"
            super().send_json(code, data, **kw)

    msg, audit = run_hostile(settings, clock, recordings, Elsewhere, pki)
    assert "不在登记的主机上" in msg and "（off_host）" in audit
    assert witness.hits == 0


class Endless(vs.VideoHandler):
    """The playback URL answers an MP4 stream that never ends (no length, Range ignored)."""

    def send_file(self, rec: vs.Recording) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        data = rec.path.read_bytes()
        for _ in range(10_000):  # ~400 MB at most; the platform stops long before
            self.wfile.write(data)


def test_endless_stream_is_cut_at_the_video_size(
    settings: Settings, clock: FrozenClock, recordings: list[vs.Recording], pki: b.Pki
) -> None:
    with b.serving(recordings, pki, handler=Endless) as server:
        b.seed(settings, clock, base_url=server.url, ca_pem=pki.ca_pem)
        with portal(settings, clock) as client:
            lease = leases(search(client))["VID-A"]
            r = client.get(f"/video/stream/{lease}")
            assert r.status_code == 200
            assert len(r.content) == recordings[0].size
            assert r.content == recordings[0].path.read_bytes()
            page = audited(client, "overrun")
            assert "超过声明的长度" in page
