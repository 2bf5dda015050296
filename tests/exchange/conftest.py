"""Fixtures of the exchange tests: a credential, a token, request headers, database peeks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.exchange.builders import ORG_A, get_token, make_credential


@pytest.fixture
def cred(settings: Settings, clock: FrozenClock) -> IssuedCredential:
    return make_credential(settings, clock, ORG_A)


@pytest.fixture
def token(exchange_client: TestClient, cred: IssuedCredential) -> str:
    return get_token(exchange_client, cred)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"accessToken": token}


class Peek:
    """Read the database behind the app directly (what was really stored)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings.sync_url)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def count(self, table: str) -> int:
        return int(self.scalar(f'SELECT count(*) FROM "{table}"'))


@pytest.fixture
def behind_proxy(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    """The exchange app behind a trusted reverse proxy (10.0.0.1): each request says its client's
    address in ``X-Forwarded-For``."""
    trusting = settings.model_copy(update={"trusted_proxies": "10.0.0.1, 10.0.8.0/24"})
    with TestClient(create_exchange_app(trusting, clock=clock), client=("10.0.0.1", 40000)) as c:
        yield c


@pytest.fixture
def peek(settings: Settings) -> Iterator[Peek]:
    p = Peek(settings)
    yield p
    p.engine.dispose()
