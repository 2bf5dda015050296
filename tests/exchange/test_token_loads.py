"""Token checks that miss the cache together: one database lookup, never a stale grant."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange.tokens import TokenService
from imsp.storage.db import create_engine
from tests.exchange.builders import get_token


class _Counted:
    """The app's engine, counting the statements that read access tokens."""

    def __init__(self, settings: Settings) -> None:
        self.engine: AsyncEngine = create_engine(settings)
        self.lookups = 0
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "access_token" in statement:
            self.lookups += 1


@pytest.fixture
def counted(settings: Settings) -> Iterator[_Counted]:
    c = _Counted(settings)
    yield c
    asyncio.run(c.engine.dispose())


@pytest.fixture
def service(settings: Settings, clock: FrozenClock) -> TokenService:
    return TokenService(settings.exchange, clock)


@pytest.fixture
def issued(exchange_client: TestClient, cred: IssuedCredential) -> str:
    return get_token(exchange_client, cred)


def test_concurrent_checks_of_an_uncached_token_share_one_lookup(
    service: TokenService, counted: _Counted, issued: str, cred: IssuedCredential
) -> None:
    async def run() -> None:
        grants = await asyncio.gather(
            *(service.verify(counted.engine, issued, "127.0.0.1") for _ in range(10))
        )
        assert counted.lookups == 1
        assert {g.app_id for g in grants} == {cred.app_id}
        await service.verify(counted.engine, issued, "127.0.0.1")  # cached now
        assert counted.lookups == 1

    asyncio.run(run())


def test_a_caller_that_goes_away_does_not_cancel_the_lookup_of_the_others(
    service: TokenService, counted: _Counted, issued: str, cred: IssuedCredential
) -> None:
    async def run() -> None:
        calls = [
            asyncio.create_task(service.verify(counted.engine, issued, "127.0.0.1"))
            for _ in range(3)
        ]
        await asyncio.sleep(0)  # all three are waiting for the one lookup
        calls[0].cancel()
        grants = await asyncio.gather(*calls[1:])
        assert calls[0].cancelled()
        assert [g.app_id for g in grants] == [cred.app_id] * 2
        assert counted.lookups == 1

    asyncio.run(run())


def test_a_check_after_a_revocation_announcement_does_not_join_an_earlier_lookup(
    service: TokenService, counted: _Counted, issued: str
) -> None:
    async def run() -> None:
        before = asyncio.create_task(service.verify(counted.engine, issued, "127.0.0.1"))
        await asyncio.sleep(0)  # its lookup is in flight
        await service.revocations.announce()
        after = asyncio.create_task(service.verify(counted.engine, issued, "127.0.0.1"))
        await asyncio.gather(before, after)
        assert counted.lookups == 2

    asyncio.run(run())
