"""Run a piece of async work against a test's database in its own committed unit of work.

One runner for every test package ("open a Database, run, dispose"): it runs on a thread of its
own, so it also works where an event loop is already running (Playwright's sync API keeps one in
the test's thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.config import Settings
from imsp.storage.db import Database

T = TypeVar("T")


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open ``settings``' database, await ``work(db)``, dispose of the engine."""

    async def go() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, go()).result()


def run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Await ``work(session)`` in one unit of work, committed when it returns."""

    async def in_session(db: Database) -> T:
        async with db.session() as session:
            return await work(session)

    return with_database(settings, in_session)
