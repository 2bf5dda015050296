"""Builders of the acceptance tests: an institution on the test channel, generated data pushed
with the real SDK, and a unit of work on the test's database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance.service import Deps, Who
from imsp.auth.credentials import create_credential
from imsp.auth.service import IssuedCredential
from imsp.clock import Clock
from imsp.config import Settings
from imsp.standard.sample import generate
from imsp.storage.db import Database

T = TypeVar("T")

#: A fictitious institution with a valid USCC (GB 32100 check character).
ORG = "12130000MB1A2B3C4R"
NAME = "河北省测试第一医院"
CENTRE = Who("centre1", "centre")
OPERATOR = Who("operator", "operator")


def run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``work`` in one committed unit of work on the test's database."""

    async def main() -> T:
        db = Database(settings)
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


def make_test_credential(
    settings: Settings, clock: Clock, org_code: str = ORG, name: str = NAME
) -> IssuedCredential:
    return run(
        settings,
        lambda s: create_credential(
            s, org_code=org_code, institution_name=name, now=clock.now(), channel="test"
        ),
    )


def deps(settings: Settings) -> Deps:
    return Deps(cfg=settings.acceptance)


@lru_cache(maxsize=32)
def _records(code: str, count: int, org_code: str) -> tuple[Any, ...]:
    return tuple(generate(code, count, seed=7, org_code=org_code))


def records(code: str, count: int, org_code: str = ORG) -> list[dict[str, Any]]:
    return [dict(r) for r in _records(code, count, org_code)]
