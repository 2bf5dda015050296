"""Slow and idle clients cannot hold ``imsp serve``'s connections (issue 16 item 4).

Each test runs the real server code (``serve_forever``) with small limits from ``Settings`` and
talks raw TCP to it: a connection that sends nothing, half a request line, half a head or half a
body is closed by the server within its timeout; past the connection cap a new connection is
closed at once; the service keeps answering throughout. On ``main`` each of these connections
stayed open for as long as the client liked.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from imsp.clock import FrozenClock
from imsp.config import ServerSettings, Settings
from tests.exchange.builders import make_credential
from tests.exchange.conftest import Peek
from tests.support.live import imsp_serve

TIMEOUT = 0.5  # seconds: every limit under test
GRACE = 3.0  # how long past its timeout the test waits for the server to act


@pytest.fixture
def exchange(settings: Settings) -> Iterator[tuple[str, int]]:
    limits = ServerSettings(
        header_timeout_seconds=TIMEOUT,
        body_timeout_seconds=TIMEOUT,
        keep_alive_seconds=TIMEOUT,
        max_connections=4,
    )
    with imsp_serve(settings.model_copy(update={"server": limits})) as (url, _):
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        yield parts.hostname, parts.port


def _closed_by_server(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (EOF, or a reset); fails if it never does."""
    t0 = time.monotonic()
    sock.settimeout(TIMEOUT + GRACE)
    try:
        while sock.recv(65536):  # a response (if any) before the close is fine
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail("the server kept the connection open past its timeout")
    return time.monotonic() - t0


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"POST /uploadPatientFile HT",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
    ],
    ids=["idle", "partial-request-line", "partial-head"],
)
def test_an_unfinished_request_is_closed_within_its_timeout(
    exchange: tuple[str, int], sent: bytes
) -> None:
    with socket.create_connection(exchange) as sock:
        sock.sendall(sent)
        assert _closed_by_server(sock) < TIMEOUT + GRACE
    host, port = exchange
    assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200


def _upload_head(settings: Settings, exchange: tuple[str, int], length: int) -> bytes:
    """The head of an upload with a valid token, so the service really waits for the body."""
    cred = make_credential(settings, FrozenClock())
    host, port = exchange
    r = httpx.get(
        f"http://{host}:{port}/auth/accesstoken/create",
        params={"appId": cred.app_id, "appSecret": cred.app_secret},
    )
    token = r.json()["data"]["accessToken"]
    return (
        f"POST /uploadPatientFile HTTP/1.1\r\nHost: x\r\naccessToken: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_slow_body_is_closed_within_its_timeout(
    settings: Settings, exchange: tuple[str, int]
) -> None:
    head = _upload_head(settings, exchange, 1000)
    with socket.create_connection(exchange) as sock:
        sock.sendall(head + b'[{"a":')
        assert _closed_by_server(sock) < TIMEOUT + GRACE
    # The cut-off upload was logged as interrupted (49900 客户端中断, as its metric: 499); the
    # service goes on answering.
    peek = Peek(settings)
    sql = "SELECT code FROM exchange_log WHERE service = 'uploadPatientFile'"
    try:
        deadline = time.monotonic() + GRACE  # the handler logs after the close, concurrently
        while not (codes := peek.rows(sql)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        peek.engine.dispose()
    assert codes == [(49900,)]


def test_a_trickled_body_does_not_extend_its_deadline(
    settings: Settings, exchange: tuple[str, int]
) -> None:
    head = _upload_head(settings, exchange, 100)
    with socket.create_connection(exchange) as sock:
        sock.sendall(head)
        t0 = time.monotonic()
        sock.settimeout(TIMEOUT + GRACE)
        try:
            while time.monotonic() - t0 < TIMEOUT + GRACE:
                sock.sendall(b" ")
                time.sleep(TIMEOUT / 5)
        except (BrokenPipeError, ConnectionResetError):
            return
        assert sock.recv(65536) == b"", "still open after its body deadline"


def test_connections_past_the_cap_are_closed_at_once(exchange: tuple[str, int]) -> None:
    held = [socket.create_connection(exchange) for _ in range(4)]
    try:
        time.sleep(0.1)
        with socket.create_connection(exchange) as extra:
            assert _closed_by_server(extra) < TIMEOUT  # not its header timeout: at once
    finally:
        for s in held:
            s.close()
    host, port = exchange
    deadline = time.monotonic() + TIMEOUT + GRACE
    while True:  # the held ones are gone: the service answers again
        try:
            assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_event_loop_errors_are_logged_once_an_interval(caplog: pytest.LogCaptureFixture) -> None:
    """20,000 failing accepts must not write 20,000 tracebacks."""
    import asyncio

    from imsp.guard import Throttled, loop_error_handler

    now = [0.0]
    handler = loop_error_handler(Throttled(every=10.0, clock=lambda: now[0]))
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level("ERROR", logger="imsp.server"):
            for i in range(1000):
                now[0] = i * 0.01  # 1000 errors in 10 s
                handler(
                    loop,
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    },
                )
            now[0] = 10.5
            handler(loop, {"message": "socket.accept() out of system resource"})
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "repeated 999 times" in lines[1]
