"""The token lifecycle against the real exchange app: refreshed ahead of expiry on the client's
clock, refreshed and resent once when the platform says the token expired — invisibly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imsp.auth.service import IssuedCredential
from imsp.client import AuthError, Client, ServerError, TokenError
from imsp.clock import FrozenClock
from imsp.config import ExchangeSettings, Settings
from tests.client.builders import logged_codes, sample, stored
from tests.client.conftest import BASE_URL
from tests.client.inprocess import InProcessTransport

TTL = 60


@pytest.fixture
def exchange_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"exchange": ExchangeSettings(token_ttl_seconds=TTL)})


@pytest.fixture
def client_clock() -> FrozenClock:
    """The hospital's clock: separate from the platform's, moved only when a test says so."""
    return FrozenClock()


@pytest.fixture
def sdk(
    exchange: InProcessTransport,
    credential: IssuedCredential,
    client_clock: FrozenClock,
    sleeps: list[float],
) -> Iterator[Client]:
    with Client(
        BASE_URL,
        credential.app_id,
        credential.app_secret,
        transport=exchange,
        clock=client_clock,
        batch_size=10,
        sleep=sleeps.append,
    ) as client:
        yield client


def test_token_expiry_in_the_middle_of_a_long_push_is_invisible(
    sdk: Client, clock: FrozenClock, exchange_settings: Settings
) -> None:
    records = sample("patient", 60)

    def after_batch(sent: int) -> None:
        if sent == 30:  # half-way: the platform's time passes the token's expiry
            clock.advance(seconds=TTL + 1)

    receipt = sdk.upload("uploadPatientFile", records, progress=after_batch)

    assert receipt.ok and receipt.success == 60 and receipt.batches == 6
    assert sdk.tokens.fetches == 2
    codes = logged_codes(exchange_settings)
    assert codes.count(40103) == 1  # the platform did see the expired token, once
    assert len(stored(exchange_settings, "patient")) == 60


def test_token_is_refreshed_ahead_of_expiry_without_any_token_error(
    sdk: Client, client_clock: FrozenClock, exchange_settings: Settings
) -> None:
    records = sample("patient", 20)
    first = sdk.token()
    sdk.upload("patient", records[:10])
    client_clock.advance(seconds=TTL / 2 + 1)  # within the refresh margin (half the life here)
    sdk.upload("patient", records[10:])
    assert sdk.token().value != first.value
    assert sdk.tokens.fetches == 2
    assert not {40101, 40102, 40103} & set(logged_codes(exchange_settings))


def test_background_refresher_renews_the_token_while_idle(
    sdk: Client, client_clock: FrozenClock
) -> None:
    first = sdk.token()
    sdk.start_token_refresher(poll=0.01)
    client_clock.advance(seconds=TTL)
    deadline = time.monotonic() + 10
    while sdk.tokens.fetches < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sdk.tokens.fetches >= 2
    assert sdk.token().value != first.value


def test_concurrent_uploads_share_one_token_and_one_refresh(
    sdk: Client, clock: FrozenClock, exchange_settings: Settings
) -> None:
    records = sample("patient", 80)
    errors: list[BaseException] = []

    def push(part: int) -> None:
        try:
            assert sdk.upload("patient", records[part * 10 : part * 10 + 10]).ok
        except BaseException as exc:
            errors.append(exc)

    def run(parts: range) -> None:
        threads = [threading.Thread(target=push, args=(p,)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run(range(4))
    assert sdk.tokens.fetches == 1
    clock.advance(seconds=TTL + 1)  # every thread's next request meets an expired token
    run(range(4, 8))
    assert errors == []
    assert sdk.tokens.fetches == 2  # one refresh, shared
    assert len(stored(exchange_settings, "patient")) == 80


def test_wrong_secret_raises_auth_error_with_the_catalogue_hint(
    exchange: InProcessTransport, credential: IssuedCredential, sleeps: list[float]
) -> None:
    with (
        Client(BASE_URL, credential.app_id, "wrong", transport=exchange, sleep=sleeps.append) as c,
        pytest.raises(AuthError) as info,
    ):
        c.upload("patient", sample("patient", 1))
    assert info.value.code == 40004 and "appSecret" in info.value.hint
    assert sleeps == []  # a credential error is not retried


def test_a_token_error_that_persists_after_one_resend_raises_token_error() -> None:
    """A platform that refuses every token (played by a tiny app): one refresh, one resend, stop."""
    calls = {"token": 0, "upload": 0}

    async def token(request: Request) -> Response:
        calls["token"] += 1
        data = {"accessToken": f"t{calls['token']}", "expiresIn": 86400, "expireTime": ""}
        return JSONResponse({"code": 200, "msg": "成功", "data": data})

    async def upload(request: Request) -> Response:
        calls["upload"] += 1
        return JSONResponse({"code": 40103, "msg": "访问令牌已过期", "data": None}, 401)

    app = Starlette(
        routes=[
            Route("/auth/accesstoken/create", token),
            Route("/uploadPatientFile", upload, methods=["POST"]),
        ]
    )
    with (
        InProcessTransport(app) as t,
        Client(BASE_URL, "app", "secret", transport=t) as c,
        pytest.raises(TokenError) as info,
    ):
        c.upload("patient", [{"patientId": "1"}])
    assert info.value.code == 40103
    assert calls == {"token": 2, "upload": 2}


def test_a_failed_refresh_ahead_of_expiry_keeps_using_the_still_valid_token(
    sleeps: list[float],
) -> None:
    """The platform's token service is down during the refresh window: the token in hand is
    still valid, so uploads go on with it; only once it has expired does the outage surface."""
    calls = {"token": 0}
    seen: list[str] = []

    async def token(request: Request) -> Response:
        calls["token"] += 1
        if calls["token"] > 1:
            return JSONResponse({"code": 50000, "msg": "服务暂不可用", "data": None}, 503)
        data = {"accessToken": "t1", "expiresIn": 600, "expireTime": ""}
        return JSONResponse({"code": 200, "msg": "成功", "data": data})

    async def upload(request: Request) -> Response:
        seen.append(request.headers["accessToken"])
        data = {"total": 1, "success": 1, "fail": 0, "results": []}
        return JSONResponse({"code": 200, "msg": "成功", "data": data})

    app = Starlette(
        routes=[
            Route("/auth/accesstoken/create", token),
            Route("/uploadPatientFile", upload, methods=["POST"]),
        ]
    )
    clock = FrozenClock()
    with (
        InProcessTransport(app) as t,
        Client(BASE_URL, "app", "secret", transport=t, clock=clock, sleep=sleeps.append) as c,
    ):
        c.upload("patient", [{"patientId": "1"}])
        clock.advance(seconds=400)  # inside the refresh margin, 200 s before expiry
        c.upload("patient", [{"patientId": "2"}])
        assert seen == ["t1", "t1"]
        clock.advance(seconds=201)  # now the token has expired: nothing to fall back on
        with pytest.raises(ServerError):
            c.upload("patient", [{"patientId": "3"}])
    assert seen == ["t1", "t1"]
