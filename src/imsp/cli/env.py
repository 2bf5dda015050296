"""What every platform-side command needs: the settings from the environment, and one unit of
work on the configured database with errors as one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.config import Settings
from imsp.errors import ImspError
from imsp.storage.db import Database, db_error_name

T = TypeVar("T")


def load_settings() -> Settings:
    """``Settings`` from the environment (``IMSP_…``); a bad value ends the command in one line."""
    try:
        return Settings()
    except ValidationError as exc:  # one line, no traceback
        problems = "; ".join(
            f"IMSP_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"配置错误 / invalid configuration: {problems}") from None


def run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work (committed when it returns) on the configured database;
    a domain error ends the command in one line."""

    async def main() -> T:
        db = Database(load_settings())
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except ImspError as exc:
        raise click.ClickException(f"{exc.msg}（{exc.code}）") from None
    except DBAPIError as exc:  # nothing was committed, and nothing was printed before the commit
        raise click.ClickException(
            f"数据库未能完成本次操作（{db_error_name(exc)}），未做任何更改，请稍后重试"
        ) from None
