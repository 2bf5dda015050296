"""An upload that ends without a receipt is metered as what it is — cancelled (code 499), never
200 — and logged in ``exchange_log`` alike (49900 客户端中断, never 200 or 40001); its records are
counted by what the database holds: none when nothing was stored, every one when its write
committed although the request was cancelled while it ran.

Cancelled requests are real: the client closes the connection mid-body, or the server's graceful
shutdown runs out of time and cancels the requests still in flight (uvicorn)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import ClientDisconnected
from imsp.exchange.writer import Batch, LogEntry, Stored, Writer
from imsp.standard.model import load_standard
from imsp.standard.protocol import GATEWAY
from tests.exchange.builders import get_token, records
from tests.exchange.conftest import Peek
from tests.exchange.test_metrics import fresh, scrape, value
from tests.support.live import live_server

RX = load_standard().dataset("prescription")


def _stored_outcomes(app: FastAPI) -> float:
    registry = app.state.metrics.registry
    return sum(
        registry.get_sample_value("imsp_exchange_records_total", {"dataset": RX.code, "outcome": o})
        or 0
        for o in ("accepted", "warned", "dry_run", "not_stored", "rejected")
    )


def _requests(app: FastAPI, code: str) -> float:
    registry = app.state.metrics.registry
    got = registry.get_sample_value(
        "imsp_exchange_requests_total", {"service": RX.service, "code": code}
    )
    return got or 0.0


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_client_gone_mid_body_is_logged_and_metered_alike_as_interrupted_never_accepted(
    settings: Settings, clock: FrozenClock, cred: IssuedCredential, peek: Peek, chunked: bool
) -> None:
    app = create_exchange_app(fresh(settings), clock=clock)
    body = orjson.dumps(records(RX, 3))
    half = body[: len(body) // 2]
    if chunked:  # one chunk of half the body, then the connection closes: no last chunk
        framing = b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(half), half)
    else:
        framing = b"Content-Length: %d\r\n\r\n%s" % (len(body), half)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        token = http.get(
            "/auth/accesstoken/create", params={"appId": cred.app_id, "appSecret": cred.app_secret}
        ).json()["data"]["accessToken"]
        parts = urlsplit(base)
        with socket.create_connection((parts.hostname or "", parts.port or 0)) as raw:
            raw.sendall(
                b"POST %s HTTP/1.1\r\nHost: imsp\r\nContent-Type: application/json\r\n"
                b"accessToken: %s\r\n%s" % (RX.path.encode(), token.encode(), framing)
            )
            time.sleep(0.3)  # the head and part of the body are in
        deadline = time.monotonic() + 20
        query = "SELECT count(*) FROM exchange_log WHERE service = :s"
        while peek.scalar(query, s=RX.service) == 0:
            assert time.monotonic() < deadline, "the interrupted request was never logged"
            time.sleep(0.05)
        s = scrape(http)
    # the audit row: interrupted (客户端中断), nothing stored, no body kept, what arrived
    [(code, size, total, success, fail, kept)] = peek.rows(
        "SELECT code, size, total, success, fail, body IS NOT NULL FROM exchange_log"
        " WHERE service = :s",
        s=RX.service,
    )
    assert code == ClientDisconnected.code == 49900
    assert GATEWAY[code].msg == "客户端中断"
    assert (size, total, success, fail, bool(kept)) == (len(half), 0, 0, 0, False)
    # the metric says the same: one request, ended without a receipt — not 200, not 40001
    assert value(s, "imsp_exchange_requests_total", service=RX.service, code="499") == 1
    assert value(s, "imsp_exchange_requests_total", service=RX.service, code="200") == 0
    assert value(s, "imsp_exchange_requests_total", service=RX.service, code="40001") == 0
    assert value(s, "imsp_exchange_request_seconds_count", service=RX.service) == 1
    assert not [k for k in s if k[0] == "imsp_exchange_records_total" and s[k]]
    assert peek.count("record") == 0


class _Watched:
    """The app's own writer, telling the test when a write has begun."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.encode_time = inner.encode_time
        self.storing = asyncio.Event()

    async def store(self, batch: Batch, *, log: LogEntry, started: float) -> Stored:
        self.storing.set()
        return await self.inner.store(batch, log=log, started=started)

    async def log(self, entry: LogEntry, *, started: float) -> None:
        await self.inner.log(entry, started=started)

    async def recode(self, entry: LogEntry) -> None:
        await self.inner.recode(entry)

    async def close(self) -> None:
        await self.inner.close()


def _upload_scope(token: str, length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": RX.path,
        "raw_path": RX.path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"imsp"),
            (b"content-type", b"application/json"),
            (b"accesstoken", token.encode()),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8888),
    }


def _receiver(chunks: list[bytes], *, complete: bool = True) -> Callable[[], Awaitable[Message]]:
    """The body in ``chunks``; unless ``complete``, the client then says nothing more (a body
    that never ends)."""
    queue = list(chunks)

    async def receive() -> Message:
        if queue:
            chunk = queue.pop(0)
            more = bool(queue) or not complete
            return {"type": "http.request", "body": chunk, "more_body": more}
        await asyncio.Event().wait()  # never: the client went silent
        raise AssertionError("unreachable")

    return receive


async def _discard(message: Message) -> None:
    return None


class _Blocker:
    """Another connection holding the lock the upload's write needs, until released."""

    def __init__(self, settings: Settings) -> None:
        self.pg: psycopg.Connection[Any] | None = None
        self.lite: sqlite3.Connection | None = None
        if settings.is_sqlite:
            path = settings.sync_url.removeprefix("sqlite:///")
            self.lite = sqlite3.connect(path, isolation_level=None)
            self.lite.execute("BEGIN IMMEDIATE")  # the one writer SQLite allows
        else:
            url = settings.sync_url.replace("postgresql+psycopg://", "postgresql://")
            self.pg = psycopg.connect(url)
            self.pg.execute("LOCK TABLE exchange_log IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if self.lite is not None:
            self.lite.rollback()
            self.lite.close()
        if self.pg is not None:
            self.pg.rollback()
            self.pg.close()


def test_upload_cancelled_while_its_write_runs_counts_the_records_it_stored(
    settings: Settings, clock: FrozenClock, cred: IssuedCredential, peek: Peek
) -> None:
    with TestClient(create_exchange_app(settings, clock=clock)) as c:
        token = get_token(c, cred)
    app = create_exchange_app(fresh(settings), clock=clock)
    body = orjson.dumps(records(RX, 3))

    async def go() -> None:
        async with app.router.lifespan_context(app):
            watched = app.state.exchange_writer = _Watched(app.state.exchange_writer)
            blocker = _Blocker(settings)
            try:
                request = asyncio.create_task(
                    app(_upload_scope(token, len(body)), _receiver([body]), _discard)
                )
                async with asyncio.timeout(20):
                    await watched.storing.wait()
                await asyncio.sleep(0.3)  # the write waits for the lock
                request.cancel()  # e.g. the shutdown's grace period ran out
                with pytest.raises(asyncio.CancelledError):
                    await request
                assert _requests(app, "499") == 1 and _requests(app, "200") == 0
                assert _stored_outcomes(app) == 0  # not stored yet: not counted
                assert peek.count("record") == 0
            finally:
                blocker.release()
            # leaving the lifespan (a shutdown) waits for the cancelled upload's write

    asyncio.run(go())
    assert not app.state.exchange_settling
    # the write went on and committed: every record counted once, by what was stored
    assert peek.count("record") == 3
    # logged as its metric says (interrupted: no receipt reached the client), with what it stored
    assert peek.rows(
        "SELECT code, total, success, fail, body IS NOT NULL FROM exchange_log WHERE service = :s",
        s=RX.service,
    ) == [(49900, 3, 3, 0, True)]
    assert _stored_outcomes(app) == 3
    registry = app.state.metrics.registry
    assert not registry.get_sample_value(
        "imsp_exchange_records_total", {"dataset": RX.code, "outcome": "rejected"}
    )
    assert _requests(app, "499") == 1 and _requests(app, "200") == 0


def test_upload_cancelled_before_its_write_counts_nothing(
    settings: Settings, clock: FrozenClock, cred: IssuedCredential, peek: Peek
) -> None:
    with TestClient(create_exchange_app(settings, clock=clock)) as c:
        token = get_token(c, cred)
    app = create_exchange_app(fresh(settings), clock=clock)
    body = orjson.dumps(records(RX, 3))

    async def go() -> None:
        async with app.router.lifespan_context(app):
            request = asyncio.create_task(
                app(
                    _upload_scope(token, len(body)),
                    _receiver([body[:100]], complete=False),
                    _discard,
                )
            )
            await asyncio.sleep(0.3)  # the handler waits for the rest of the body
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            # no write had begun: only the log row of the interrupted request is pending
            assert len(app.state.exchange_settling) == 1

    asyncio.run(go())
    assert not app.state.exchange_settling
    assert _requests(app, "499") == 1 and _requests(app, "200") == 0
    assert _stored_outcomes(app) == 0
    assert peek.count("record") == 0
    # still in the audit, as interrupted with nothing stored (the shutdown waited to log it)
    assert peek.rows(
        "SELECT code, success, body IS NOT NULL FROM exchange_log WHERE service = :s",
        s=RX.service,
    ) == [(49900, 0, False)]
