"""Forwarded headers are believed only from configured proxies (issue 16 item 8).

On ``main`` uvicorn believed ``X-Forwarded-For`` from loopback: a header longer than the
``client_addr`` column made every upload 50000 on PostgreSQL, and rotating it escaped the
invalid-token limit.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.exchange.builders import get_token, record
from tests.exchange.conftest import Peek
from tests.support.live import imsp_serve

LONG = "203.0.113.7, " * 20 + "x" * 200


def _log_addrs(peek: Peek) -> list[str]:
    return [
        r[0]
        for r in peek.rows(
            "SELECT client_addr FROM exchange_log WHERE service = 'uploadPatientFile' ORDER BY at"
        )
    ]


def _upload(client: Any, token: str, n: int, forwarded: str) -> Any:
    return client.post(
        "/uploadPatientFile",
        headers={"accessToken": token, "X-Forwarded-For": forwarded},
        json=record("patient", n=n),
    )


def test_imsp_serve_ignores_forwarded_headers_by_default(settings: Settings, peek: Peek) -> None:
    from tests.exchange.builders import make_credential

    cred = make_credential(settings, FrozenClock())
    with imsp_serve(settings) as (exchange, _), httpx.Client(base_url=exchange) as client:
        r = client.get(
            "/auth/accesstoken/create",
            params={"appId": cred.app_id, "appSecret": cred.app_secret},
            headers={"X-Forwarded-For": LONG},
        )
        assert r.status_code == 200, r.text
        token = r.json()["data"]["accessToken"]
        assert _upload(client, token, 0, LONG).status_code == 200
        assert _upload(client, token, 1, "198.51.100.4").status_code == 200
    assert _log_addrs(peek) == ["127.0.0.1", "127.0.0.1"]


def test_a_trusted_proxy_gives_the_client_address(
    behind_proxy: TestClient, cred: IssuedCredential, peek: Peek
) -> None:
    token = get_token(behind_proxy, cred)
    assert _upload(behind_proxy, token, 0, "198.51.100.4").status_code == 200
    # A chain through a second trusted proxy: the right-most untrusted hop is the client.
    assert _upload(behind_proxy, token, 1, "192.0.2.1, 198.51.100.5, 10.0.8.7").status_code == 200
    assert _upload(behind_proxy, token, 2, "2001:DB8::0:1").status_code == 200
    assert _log_addrs(peek) == ["198.51.100.4", "198.51.100.5", "2001:db8::1"]


def test_a_forwarded_value_that_is_not_an_address_never_fails_a_write(
    behind_proxy: TestClient, cred: IssuedCredential, peek: Peek
) -> None:
    token = get_token(behind_proxy, cred)
    assert _upload(behind_proxy, token, 0, LONG).status_code == 200
    assert _upload(behind_proxy, token, 1, "unknown").status_code == 200
    assert _log_addrs(peek) == ["10.0.0.1", "10.0.0.1"]


def test_rotating_the_header_does_not_escape_the_invalid_token_limit(
    exchange_client: TestClient,
) -> None:
    codes = [
        _upload(exchange_client, f"hbt_guess{i}", 0, f"198.51.100.{i}").json()["code"]
        for i in range(12)
    ]
    assert codes[-1] == 42900
