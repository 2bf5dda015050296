"""授权码获取服务 and token checking on uploads: codes, expiry, revocation, rate limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from imsp.app import create_exchange_app
from imsp.auth import crypto
from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import ExchangeSettings, Settings
from imsp.standard.protocol import GATEWAY
from tests.exchange.builders import get_token, make_credential, record
from tests.exchange.conftest import Peek

TOKEN_URL = "/auth/accesstoken/create"


def _upload(client: TestClient, headers: dict[str, str]) -> dict[str, object]:
    r = client.post("/uploadPatientFile", json=[record("patient")], headers=headers)
    body: dict[str, object] = r.json()
    assert r.status_code == GATEWAY[int(body["code"])].http_status  # type: ignore[call-overload]
    return body


def test_token_response_has_the_published_shape(
    exchange_client: TestClient, cred: IssuedCredential
) -> None:
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": cred.app_secret})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["code"] == 200 and body["msg"] == "成功"
    data = body["data"]
    assert data["accessToken"].startswith(crypto.TOKEN_PREFIX)
    assert data["expiresIn"] == 86400
    # FrozenClock starts at 2026-01-05 09:00:00 Beijing time; one day later:
    assert data["expireTime"] == "2026-01-06 09:00:00"


def test_token_is_stored_only_as_its_digest(
    exchange_client: TestClient, cred: IssuedCredential, peek: Peek
) -> None:
    token = get_token(exchange_client, cred)
    stored = peek.rows("SELECT token_hash FROM access_token")
    assert stored == [(crypto.digest(token),)]
    secrets = peek.rows("SELECT secret_hash FROM app_credential")
    assert secrets == [(crypto.digest(cred.app_secret),)]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"appId": "hb-unknown", "appSecret": "hbs_x"}, 40002),
        ({"appSecret": "hbs_x"}, 40001),
        ({"appId": "hb-unknown"}, 40001),
    ],
)
def test_token_refusals_have_distinct_codes(
    exchange_client: TestClient, params: dict[str, str], code: int
) -> None:
    r = exchange_client.get(TOKEN_URL, params=params)
    assert r.json() == {"code": code, "msg": r.json()["msg"], "data": None}
    assert r.status_code == GATEWAY[code].http_status


def test_wrong_secret_is_40004(exchange_client: TestClient, cred: IssuedCredential) -> None:
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": "hbs_wrong"})
    assert r.status_code == 401
    assert r.json()["code"] == 40004


def test_a_new_token_does_not_cut_off_the_previous_one(
    exchange_client: TestClient, cred: IssuedCredential
) -> None:
    first = get_token(exchange_client, cred)
    second = get_token(exchange_client, cred)
    assert first != second
    assert _upload(exchange_client, {"accessToken": first})["code"] == 200
    assert _upload(exchange_client, {"accessToken": second})["code"] == 200


def test_missing_invalid_and_expired_tokens_have_distinct_codes(
    exchange_client: TestClient, cred: IssuedCredential, clock: FrozenClock
) -> None:
    assert _upload(exchange_client, {})["code"] == 40101
    assert _upload(exchange_client, {"accessToken": "hbt_" + "x" * 43})["code"] == 40102
    assert _upload(exchange_client, {"accessToken": "nonsense"})["code"] == 40102
    token = get_token(exchange_client, cred)
    clock.advance(seconds=86399)
    assert _upload(exchange_client, {"accessToken": token})["code"] == 200
    clock.advance(seconds=1)
    assert _upload(exchange_client, {"accessToken": token})["code"] == 40103


def test_bearer_authorization_is_accepted(exchange_client: TestClient, token: str) -> None:
    assert _upload(exchange_client, {"Authorization": f"Bearer {token}"})["code"] == 200


def test_token_ttl_comes_from_settings(settings: Settings, clock: FrozenClock) -> None:
    short = settings.model_copy(update={"exchange": ExchangeSettings(token_ttl_seconds=600)})
    cred = make_credential(short, clock)
    with TestClient(create_exchange_app(short, clock=clock)) as client:
        r = client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": cred.app_secret})
        assert r.json()["data"]["expiresIn"] == 600
        assert r.json()["data"]["expireTime"] == "2026-01-05 09:10:00"


def test_revoked_credential_gets_no_token_and_its_tokens_stop_working(
    exchange_client: TestClient, cred: IssuedCredential, clock: FrozenClock, settings: Settings
) -> None:
    from tests.exchange.builders import revoke

    token = get_token(exchange_client, cred)
    assert _upload(exchange_client, {"accessToken": token})["code"] == 200
    revoke(settings, clock, cred.app_id)
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": cred.app_secret})
    assert r.json()["code"] == 40005
    # The verification cache (token_cache_seconds, default 5 s) lets the token live that long.
    clock.advance(seconds=ExchangeSettings().token_cache_seconds + 0.1)
    assert _upload(exchange_client, {"accessToken": token})["code"] == 40102


def test_failed_token_requests_are_rate_limited_per_app_id(
    exchange_client: TestClient, cred: IssuedCredential, clock: FrozenClock
) -> None:
    limit = ExchangeSettings().auth_failures_per_minute
    for _ in range(limit):
        r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": "hbs_no"})
        assert r.json()["code"] == 40004
    # Even the right secret is refused while the window is full …
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": cred.app_secret})
    assert r.status_code == 429
    assert r.json()["code"] == 42900
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # … and accepted once the oldest failure has left the one-minute window.
    clock.advance(seconds=61)
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": cred.app_secret})
    assert r.json()["code"] == 200


def test_failed_token_requests_are_rate_limited_per_client_address(
    exchange_client: TestClient, cred: IssuedCredential
) -> None:
    limit = ExchangeSettings().auth_failures_per_minute
    for n in range(limit):  # a different unknown appId each time: only the address repeats
        r = exchange_client.get(TOKEN_URL, params={"appId": f"hb-guess-{n}", "appSecret": "x"})
        assert r.json()["code"] == 40002
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": "hbs_wrong"})
    assert r.status_code == 429 and "retry-after" in r.headers
    # Another institution's correct secret from the same address is never refused for them.
    r = exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": cred.app_secret})
    assert r.json()["code"] == 200


def test_uploads_with_guessed_tokens_are_rate_limited_per_address(
    exchange_client: TestClient,
) -> None:
    limit = ExchangeSettings().auth_failures_per_minute
    codes = [
        _upload(exchange_client, {"accessToken": crypto.new_token()})["code"]
        for _ in range(limit + 1)
    ]
    assert codes == [40102] * limit + [42900]


def test_every_token_request_is_logged(
    exchange_client: TestClient, cred: IssuedCredential, peek: Peek
) -> None:
    get_token(exchange_client, cred)
    exchange_client.get(TOKEN_URL, params={"appId": cred.app_id, "appSecret": "hbs_no"})
    rows = peek.rows("SELECT service, app_id, code FROM exchange_log ORDER BY code")
    assert rows == [("accesstoken", cred.app_id, 200), ("accesstoken", cred.app_id, 40004)]


def test_nul_in_app_id_is_an_unknown_app_id_and_is_logged(
    exchange_client: TestClient, peek: Peek
) -> None:
    # PostgreSQL text cannot hold NUL: the appId must not reach a query or the log as it is.
    r = exchange_client.get(TOKEN_URL, params={"appId": "hb\x00x", "appSecret": "hbs_x"})
    assert r.status_code == 401 and r.json()["code"] == 40002
    assert peek.rows("SELECT app_id, code FROM exchange_log") == [("hb\ufffdx", 40002)]
