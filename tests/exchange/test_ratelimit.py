"""Rate limits never lock out the legitimate client (issue 16 item 7).

On ``main`` ten wrong secrets for an appId from ten addresses made the right secret fail with 429
from an eleventh, and eleven unknown tokens from an address made a valid token from there fail.
Addresses are varied through a trusted proxy's ``X-Forwarded-For`` (``behind_proxy``).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imsp.auth import crypto
from imsp.auth.service import IssuedCredential
from imsp.config import ExchangeSettings
from imsp.exchange.tokens import APP_ALERT_FACTOR
from tests.exchange.builders import record

TOKEN_URL = "/auth/accesstoken/create"
LIMIT = ExchangeSettings().auth_failures_per_minute


def _token(client: TestClient, app_id: str, secret: str, addr: str) -> Any:
    return client.get(
        TOKEN_URL,
        params={"appId": app_id, "appSecret": secret},
        headers={"X-Forwarded-For": addr},
    )


def _upload(client: TestClient, token: str, addr: str) -> Any:
    return client.post(
        "/uploadPatientFile",
        headers={"accessToken": token, "X-Forwarded-For": addr},
        json=record("patient"),
    ).json()


def test_others_wrong_secrets_never_refuse_the_right_one(
    behind_proxy: TestClient, cred: IssuedCredential, caplog: pytest.LogCaptureFixture
) -> None:
    ceiling = LIMIT * APP_ALERT_FACTOR
    with caplog.at_level(logging.WARNING, logger="imsp.exchange"):
        for n in range(ceiling):
            r = _token(behind_proxy, cred.app_id, "hbs_wrong", f"198.51.{n // 250}.{n % 250 + 1}")
            assert r.json()["code"] == 40004
    r = _token(behind_proxy, cred.app_id, cred.app_secret, "203.0.113.200")
    assert r.json()["code"] == 200
    # The appId's ceiling raised an alert instead of a lock.
    assert [m for m in caplog.messages if "alert" in m and cred.app_id in m]


def test_an_address_own_failures_for_an_app_id_still_lock_that_pair(
    behind_proxy: TestClient, cred: IssuedCredential
) -> None:
    for _ in range(LIMIT):
        _token(behind_proxy, cred.app_id, "hbs_wrong", "198.51.100.1")
    assert _token(behind_proxy, cred.app_id, cred.app_secret, "198.51.100.1").status_code == 429
    assert _token(behind_proxy, cred.app_id, cred.app_secret, "198.51.100.2").status_code == 200


def test_unknown_tokens_from_an_address_never_refuse_a_valid_token_from_it(
    behind_proxy: TestClient, cred: IssuedCredential
) -> None:
    addr = "198.51.100.9"
    codes = [_upload(behind_proxy, crypto.new_token(), addr)["code"] for _ in range(LIMIT + 1)]
    assert codes == [40102] * LIMIT + [42900]
    token = _token(behind_proxy, cred.app_id, cred.app_secret, addr).json()["data"]["accessToken"]
    assert _upload(behind_proxy, token, addr)["code"] == 200


def test_unknown_tokens_are_counted_per_ipv6_slash_64(behind_proxy: TestClient) -> None:
    codes = [
        _upload(behind_proxy, crypto.new_token(), f"2001:db8:1:2::{n + 1:x}")["code"]
        for n in range(LIMIT + 1)
    ]
    assert codes[-1] == 42900
    assert _upload(behind_proxy, crypto.new_token(), "2001:db8:1:3::1")["code"] == 40102
