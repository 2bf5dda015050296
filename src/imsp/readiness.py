"""``/readyz``: may a load balancer send this node traffic?

Ready means: the database answers, its schema holds every migration this node's code knows (a
database *ahead* of the code is ready too — during a rolling upgrade the new code migrates first
and the old nodes keep serving, because migrations are expand-then-contract), and, when
``IMSP_REDIS_URL`` is set, Redis answers ``PING``. Anything else is 503 with the reasons in
Chinese. ``/healthz`` stays the liveness check: a node that answers it is alive.

The Redis check speaks the three lines of RESP it needs itself (``AUTH``, ``SELECT`` is not
needed for a ping, ``PING``), so readiness has no client library to agree with.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from imsp.config import Settings
from imsp.storage import migrate
from imsp.storage.db import Database

#: Seconds each dependency may take to answer before the node counts as not ready.
TIMEOUT = 2.0


@dataclass(slots=True)
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" | "error"
    reasons: list[str] = field(default_factory=list)  # Chinese, one per failed check

    @property
    def ready(self) -> bool:
        return not self.reasons

    def fail(self, name: str, reason: str) -> None:
        self.checks[name] = "error"
        self.reasons.append(reason)


async def check(settings: Settings, db: Database) -> Readiness:
    """Every readiness check of one node; never raises."""
    result = Readiness()
    try:
        async with asyncio.timeout(TIMEOUT):
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                result.checks["database"] = "ok"
                try:
                    found = await conn.execute(text("SELECT version_num FROM alembic_version"))
                    current = frozenset(r[0] for r in found)
                except DBAPIError:  # never migrated: no version table
                    current = frozenset()
        missing = migrate.missing_heads(current)
        if missing:
            result.fail(
                "migrations",
                f"数据库结构不是最新版本（缺少迁移 {', '.join(missing)}），请运行 imsp db upgrade",
            )
        else:
            result.checks["migrations"] = "ok"
    except Exception as exc:
        result.fail("database", f"数据库无法连接或无法查询（{type(exc).__name__}）")
    if settings.redis_url:
        problem = await ping_redis(settings.redis_url)
        if problem is None:
            result.checks["redis"] = "ok"
        else:
            result.fail("redis", f"Redis 无法连接（{problem}）")
    return result


async def ping_redis(url: str, wait: float = TIMEOUT) -> str | None:
    """``None`` when the Redis server at ``url`` (``redis://`` or ``rediss://``, optional
    ``user:password@``) answers ``PING``; otherwise a short reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return f"不支持的地址 {parts.scheme}://"
    tls = _client_tls() if parts.scheme == "rediss" else None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(
                parts.hostname or "127.0.0.1", parts.port or 6379, ssl=tls
            )
            if parts.password is not None:
                words = [unquote(parts.password)]
                if parts.username:
                    words.insert(0, unquote(parts.username))
                writer.write(_command("AUTH", *words))
                answer = await reader.readline()
                if not answer.startswith(b"+OK"):
                    return "认证失败"
            writer.write(_command("PING"))
            answer = await reader.readline()
            if not answer.startswith(b"+PONG"):
                return answer.decode(errors="replace").strip()[:80] or "无应答"
            return None
    except TimeoutError:
        return f"{wait:g} 秒内无应答"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


def _command(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for w in words:
        b = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


@functools.cache
def _client_tls() -> ssl.SSLContext:
    return ssl.create_default_context()
