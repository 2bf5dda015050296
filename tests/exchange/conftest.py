"""Fixtures of the exchange tests: a credential, a token, request headers, database peeks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

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
def peek(settings: Settings) -> Iterator[Peek]:
    p = Peek(settings)
    yield p
    p.engine.dispose()
