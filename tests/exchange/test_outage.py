"""While the database is unreachable, every answer that needed it is 50300 with ``Retry-After``,
at once — never a token error the client would act on (issue 16 item 13).

The outage is real: the app's PostgreSQL URL points at a loopback port nothing listens on, so
every connection attempt is refused, as when the database server is stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imsp.app import create_exchange_app
from imsp.auth import crypto
from imsp.config import Settings
from tests.exchange.builders import record
from tests.support.live import refused_url


@pytest.fixture
def down(tmp_path: Path) -> Iterator[TestClient]:
    with refused_url() as http_url:
        url = http_url.replace("http://", "postgresql://postgres@") + "/imsp"
        settings = Settings(database_url=url, data_dir=tmp_path)
        with TestClient(create_exchange_app(settings)) as client:
            yield client


def _assert_unavailable(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["code"] == 50300
    assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "token",
    [crypto.new_token(), "not-a-token-at-all", crypto.TOKEN_PREFIX + "x" * 43],
    ids=["well-formed", "malformed", "prefixed"],
)
def test_unknown_token_during_outage_is_50300_at_once_not_40102(
    down: TestClient, token: str
) -> None:
    t0 = time.monotonic()
    r = down.post("/uploadPatientFile", headers={"accessToken": token}, json=record("patient"))
    _assert_unavailable(r)
    # Refused connections fail in milliseconds; the writer's pool wait (3 s) must not be reached.
    assert time.monotonic() - t0 < 2.5


def test_token_request_during_outage_is_50300_with_retry_after(down: TestClient) -> None:
    r = down.get("/auth/accesstoken/create", params={"appId": "hb0000000001", "appSecret": "x"})
    _assert_unavailable(r)


def test_health_check_during_outage_says_when_to_retry(down: TestClient) -> None:
    r = down.get("/healthz")
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
