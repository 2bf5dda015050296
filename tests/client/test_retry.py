"""Retry: backoff on 429/5xx and connection failures, honouring ``Retry-After``.

The platform's failure modes are played by a tiny local ASGI app (the one thing faked here: a
server that answers 429 or 503 on demand); the SDK, its transport and httpx are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imsp.client import Client, RateLimited, ServerError, TransportError
from tests.client.inprocess import InProcessTransport
from tests.support.live import refused_url


class Flaky:
    """Answers the upload with the scripted failures first, then a receipt accepting all."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.uploads = 0
        self.tokens = 0
        self.app = Starlette(
            routes=[
                Route("/auth/accesstoken/create", self.token, methods=["GET"]),
                Route("/uploadPatientFile", self.upload, methods=["POST"]),
            ]
        )

    async def token(self, request: Request) -> Response:
        self.tokens += 1
        data = {"accessToken": f"tok-{self.tokens}", "expiresIn": 86400, "expireTime": ""}
        return JSONResponse({"code": 200, "msg": "成功", "data": data})

    async def upload(self, request: Request) -> Response:
        self.uploads += 1
        records = json.loads(await request.body())
        status, headers = self.script.pop(0) if self.script else (200, {})
        if status != 200:
            code = {429: 42900, 503: 50300}.get(status, 50000)
            return JSONResponse({"code": code, "msg": "忙", "data": None}, status, headers)
        results = [
            {"index": i, "key": None, "msgCode": 200, "msg": "成功", "errors": [], "warnings": []}
            for i in range(len(records))
        ]
        data = {"total": len(records), "success": len(records), "fail": 0, "results": results}
        return JSONResponse({"code": 200, "msg": "成功", "data": data})


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _client(flaky: Flaky, transport: InProcessTransport, sleeps: list[float], **kw: Any) -> Client:
    return Client(
        "http://exchange.test", "app", "secret", transport=transport, sleep=sleeps.append, **kw
    )


@pytest.fixture
def flaky_429() -> Iterator[tuple[Flaky, InProcessTransport]]:
    flaky = Flaky([(429, {"Retry-After": "7"})])
    with InProcessTransport(flaky.app) as t:
        yield flaky, t


def test_retry_waits_at_least_retry_after_then_succeeds(
    flaky_429: tuple[Flaky, InProcessTransport], sleeps: list[float]
) -> None:
    flaky, transport = flaky_429
    with _client(flaky, transport, sleeps) as client:
        receipt = client.upload("patient", [{"a": 1}, {"a": 2}])
    assert receipt.ok and receipt.success == 2
    assert flaky.uploads == 2
    assert len(sleeps) == 1 and sleeps[0] >= 7


def test_retry_understands_retry_after_as_http_date(sleeps: list[float]) -> None:
    flaky = Flaky([(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})])  # in the past
    with InProcessTransport(flaky.app) as t, _client(flaky, t, sleeps) as client:
        assert client.upload("patient", [{"a": 1}]).ok
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_retry_backs_off_exponentially_with_jitter_on_5xx(sleeps: list[float]) -> None:
    flaky = Flaky([(503, {})] * 4)
    with InProcessTransport(flaky.app) as t, _client(flaky, t, sleeps, backoff=1.0) as client:
        assert client.upload("patient", [{"a": 1}]).ok
    assert flaky.uploads == 5
    assert len(sleeps) == 4
    for n, slept in enumerate(sleeps):
        assert 0 <= slept <= 2**n  # full jitter under the exponential ceiling


def test_server_error_is_raised_after_the_last_retry(sleeps: list[float]) -> None:
    flaky = Flaky([(503, {})] * 10)
    with (
        InProcessTransport(flaky.app) as t,
        _client(flaky, t, sleeps, retries=2) as client,
        pytest.raises(ServerError) as info,
    ):
        client.upload("patient", [{"a": 1}])
    assert info.value.code == 50300 and info.value.status == 503
    assert flaky.uploads == 3 and len(sleeps) == 2


def test_a_failure_mid_upload_reports_what_got_through(sleeps: list[float]) -> None:
    flaky = Flaky([(200, {}), (503, {}), (503, {}), (503, {})])
    with (
        InProcessTransport(flaky.app) as t,
        _client(flaky, t, sleeps, retries=2, batch_size=2) as client,
        pytest.raises(ServerError) as info,
    ):
        client.upload("patient", [{"patientId": str(i)} for i in range(6)])
    partial = info.value.partial
    assert partial is not None and partial.total == 2 and partial.success == 2


def test_retry_after_beyond_the_limit_is_reported_not_waited(sleeps: list[float]) -> None:
    flaky = Flaky([(429, {"Retry-After": "3600"})])
    with (
        InProcessTransport(flaky.app) as t,
        _client(flaky, t, sleeps) as client,
        pytest.raises(RateLimited) as info,
    ):
        client.upload("patient", [{"a": 1}])
    assert info.value.retry_after == 3600
    assert sleeps == [] and flaky.uploads == 1


def test_unreachable_platform_raises_transport_error_after_retries(sleeps: list[float]) -> None:
    with (
        refused_url() as url,  # nothing listens there
        Client(url, "app", "s3cret-value", retries=3, sleep=sleeps.append) as client,
        pytest.raises(TransportError) as info,
    ):
        client.token()
    assert len(sleeps) == 3
    assert "s3cret-value" not in str(info.value)  # the token URL carries the secret
