"""Database engine and the unit-of-work boundary.

Services receive an ``AsyncSession`` and never commit; the request (or CLI command / job) that
opened the session commits on success and rolls back on error — see ``Database.session``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from imsp.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000  # the default of ``settings.lock_timeout_seconds``


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers proceed during writes; foreign keys are off by default in SQLite.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        # hex text → BLOB (SQLite's own unhex() needs 3.41): the upload writer passes each
        # record's encoded bytes inside its JSON batch parameter (exchange/sqlite_writer.py).
        dbapi_conn.create_function("imsp_unhex", 1, bytes.fromhex, deterministic=True)

    return pragmas


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    """The async engine (of ``url``, default the primary). A unit of work waits at most
    ``settings.lock_timeout_seconds`` for a lock (SQLite busy timeout, PostgreSQL
    ``lock_timeout``) and then fails, so a request never hangs behind a held row. Statement
    parameters never appear in exception messages (``hide_parameters``): they hold what users
    typed, and exceptions end up in logs.

    Behind PgBouncer in transaction mode (``settings.database_pgbouncer``) a server connection
    serves another client after every transaction, so nothing may live in the session: psycopg
    must not prepare statements (it names them per connection after 5 runs of one query) and
    ``lock_timeout`` cannot be a start-up option (PgBouncer refuses ``options``); it is set
    with ``SET LOCAL`` at the start of every transaction instead."""
    url = url or settings.sqlalchemy_url
    lock_ms = int(settings.lock_timeout_seconds * 1000)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if settings.is_sqlite:
        path = make_url(url).database
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"hide_parameters": True, "connect_args": {"timeout": lock_ms / 1000}}
    elif settings.database_pgbouncer:
        kwargs.update(pool_size=20, max_overflow=20, connect_args={"prepare_threshold": None})
    else:
        kwargs.update(
            pool_size=20, max_overflow=20, connect_args={"options": f"-c lock_timeout={lock_ms}"}
        )
    engine = create_async_engine(url, **kwargs)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(lock_ms))
    elif settings.database_pgbouncer:
        event.listen(engine.sync_engine, "begin", _local_lock_timeout(lock_ms))
    return engine


def _local_lock_timeout(lock_ms: int) -> Any:
    def begin(conn: Any) -> None:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_ms)}")

    return begin


def db_error_name(exc: DBAPIError) -> str:
    """What went wrong in the database, without the statement or its parameters."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    name = type(orig).__name__ if orig is not None else type(exc).__name__
    return f"{name} (SQLSTATE {state})" if state else name


class Database:
    """One engine and its session factory, owned by an app (or a CLI command)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        replica = settings.replica_sqlalchemy_url
        #: The read replica's engine (``IMSP_DATABASE_REPLICA_URL``), or the primary's.
        self.reader = create_engine(settings, url=replica) if replica else self.engine
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commit when the block succeeds, roll back when it raises."""
        async with self.sessions() as s:
            try:
                yield s
                await s.commit()
            except BaseException:
                await s.rollback()
                raise

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work for heavy reads — dashboards, reports, exports — on the read replica
        when one is configured (else the primary). A replica is read-only and may lag the
        primary by its replication delay, so only reads whose answer may be that old belong
        here; anything that writes (an audit row) uses :meth:`session`."""
        async with self.read_sessions() as s:
            try:
                yield s
            finally:
                await s.rollback()

    async def ping(self) -> dict[str, Any]:
        """Health of the database for ``/healthz``: never raises."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return {"status": "ok", "dialect": self.dialect}
        except Exception as exc:
            return {"status": "error", "dialect": self.dialect, "error": type(exc).__name__}

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()
