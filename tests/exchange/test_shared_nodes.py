"""Two exchange nodes on one database and one Redis (``IMSP_REDIS_URL``) behave as one: a
credential revoked on node A is refused on node B within a second, and a client spreading its
failures over both nodes meets one rate limit. Without Redis nothing changes (the rest of the
suite); when Redis stops answering, correct uploads still pass and revocation still holds.

Node B's verification cache never expires here (the clock is frozen), so only the shared
revocation can make it refuse the token: the tests would fail without it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.cli.main import cli
from imsp.clock import FrozenClock
from imsp.config import ExchangeSettings, Settings
from tests.exchange.builders import get_token, make_credential, record, revoke
from tests.support.live import live_server

TOKEN_URL = "/auth/accesstoken/create"
LIMIT = 4  # IMSP_EXCHANGE__AUTH_FAILURES_PER_MINUTE, lowered so the tests reach it quickly


def _upload(url: str, token: str) -> int:
    r = httpx.post(
        f"{url}/uploadPatientFile", json=[record("patient")], headers={"accessToken": token}
    )
    code: int = r.json()["code"]
    return code


def _refused_within(url: str, token: str, seconds: float) -> float:
    """Upload to ``url`` until the token is refused (40102); how long that took."""
    start = time.monotonic()
    while True:
        code = _upload(url, token)
        took = time.monotonic() - start
        if code == 40102:
            return took
        assert code == 200
        if took > seconds:
            pytest.fail(f"the revoked token was still accepted after {took:.2f} s")


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "IMSP_DATABASE_URL": settings.database_url or "",
        "IMSP_DATA_DIR": str(settings.data_dir),
        "IMSP_REDIS_URL": settings.redis_url or "",
        "IMSP_REDIS_PREFIX": settings.redis_prefix,
    }


@pytest.fixture
def two_nodes(redis_settings: Settings, clock: FrozenClock) -> Iterator[tuple[str, str]]:
    """Two real exchange servers on loopback, sharing the test's database and Redis."""
    with (
        live_server(create_exchange_app(redis_settings, clock=clock)) as a,
        live_server(create_exchange_app(redis_settings, clock=clock)) as b,
    ):
        yield a, b


@pytest.mark.parametrize(
    "command",
    [("credentials", "revoke"), ("credentials", "rotate", "--revoke-tokens")],
    ids=["revoke", "rotate-revoke-tokens"],
)
def test_a_credential_revoked_on_node_a_is_refused_on_node_b_within_a_second(
    two_nodes: tuple[str, str],
    redis_settings: Settings,
    clock: FrozenClock,
    command: tuple[str, ...],
) -> None:
    a, b = two_nodes
    cred = make_credential(redis_settings, clock)
    token = httpx.get(
        f"{a}{TOKEN_URL}", params={"appId": cred.app_id, "appSecret": cred.app_secret}
    ).json()["data"]["accessToken"]
    assert _upload(b, token) == 200  # node B now has the grant in its cache
    assert _upload(b, token) == 200
    # The operator on node A (the CLI announces the revocation after its commit).
    args = [*command[:2], cred.app_id, *command[2:]]
    result = CliRunner().invoke(cli, args, env=_cli_env(redis_settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "未能通知" not in result.output
    assert _refused_within(b, token, 1.0) < 1.0
    assert _upload(a, token) == 40102


def _token(client: TestClient, app_id: str, secret: str) -> Any:
    return client.get(TOKEN_URL, params={"appId": app_id, "appSecret": secret})


@pytest.fixture
def two_apps(redis_settings: Settings, clock: FrozenClock) -> Iterator[tuple[TestClient, ...]]:
    """Two exchange apps (in this process) sharing the database and Redis, with a low limit."""
    low = redis_settings.model_copy(
        update={"exchange": ExchangeSettings(auth_failures_per_minute=LIMIT)}
    )
    with (
        TestClient(create_exchange_app(low, clock=clock)) as a,
        TestClient(create_exchange_app(low, clock=clock)) as b,
    ):
        yield a, b


def test_failed_token_requests_spread_over_two_nodes_meet_one_limit(
    two_apps: tuple[TestClient, TestClient], cred: IssuedCredential
) -> None:
    a, b = two_apps
    for n in range(LIMIT):  # alternately on A and B: each node sees only half of them
        r = _token((a, b)[n % 2], cred.app_id, "hbs_wrong")
        assert r.json()["code"] == 40004
    for node in (a, b):  # the (appId, address) pair is limited on both nodes at once
        r = _token(node, cred.app_id, cred.app_secret)
        assert r.status_code == 429 and r.json()["code"] == 42900
        assert 1 <= int(r.headers["retry-after"]) <= 60


def test_unknown_tokens_spread_over_two_nodes_meet_one_limit(
    two_apps: tuple[TestClient, TestClient], cred: IssuedCredential
) -> None:
    a, b = two_apps
    for n in range(LIMIT):
        r = (a, b)[n % 2].post(
            "/uploadPatientFile", json=[record("patient")], headers={"accessToken": f"hbt_x{n}"}
        )
        assert r.json()["code"] == 40102
    for node in (a, b):
        r = node.post(
            "/uploadPatientFile", json=[record("patient")], headers={"accessToken": "hbt_y"}
        )
        assert r.status_code == 429
    token = get_token(a, cred)  # a valid token from the same address is still accepted
    assert (
        b.post(
            "/uploadPatientFile", json=[record("patient")], headers={"accessToken": token}
        ).json()["code"]
        == 200
    )


@pytest.fixture
def dead_redis_settings(settings: Settings) -> Iterator[Settings]:
    """Settings whose Redis never answers (the port is bound, nothing accepts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
        yield settings.model_copy(update={"redis_url": url, "redis_prefix": "dead:"})


def test_without_redis_uploads_pass_and_a_revocation_still_holds_at_once(
    dead_redis_settings: Settings, clock: FrozenClock
) -> None:
    """Fail open for counters, fail safe for revocations: while Redis does not answer no cached
    grant is trusted, so a revocation committed in the database (which could not be announced)
    is refused on the very next upload."""
    low = dead_redis_settings.model_copy(
        update={"exchange": ExchangeSettings(auth_failures_per_minute=LIMIT)}
    )
    cred = make_credential(low, clock)
    with TestClient(create_exchange_app(low, clock=clock)) as node:
        token = get_token(node, cred)
        for _ in range(3):
            r = node.post(
                "/uploadPatientFile", json=[record("patient")], headers={"accessToken": token}
            )
            assert r.json()["code"] == 200
        for _ in range(LIMIT):  # the limit still holds, counted in this process
            assert _token(node, cred.app_id, "hbs_wrong").json()["code"] == 40004
        assert _token(node, cred.app_id, cred.app_secret).status_code == 429
        revoke(low, clock, cred.app_id)
        r = node.post(
            "/uploadPatientFile", json=[record("patient")], headers={"accessToken": token}
        )
        assert r.json()["code"] == 40102
