"""Access tokens (授权码): issued by ``/auth/accesstoken/create``, checked on every upload.

* A token is ``hbt_`` + 256 random bits; only its SHA-256 is stored (``access_token.token_hash``).
* It is valid ``settings.exchange.token_ttl_seconds`` (default one day) by the injected ``Clock``.
  Issuing a new token does not cut off older unexpired ones, so a client that refreshes while
  requests are in flight never sees them fail (数据接入工作说明 第三章 超时处理建议).
* Verification on the hot path is served from an in-process cache (digest → grant) for
  ``token_cache_seconds`` (default 5 s): a revoked credential stops working within that time in
  every server process. ``0`` disables the cache.
* Failed token requests are limited per appId and per client address; uploads with unknown tokens
  per client address (``SlidingWindow``) — answered 429 with ``Retry-After``.
* Distinct codes: 40101 no token, 40102 unknown/revoked token, 40103 expired — the client refreshes
  and resends on any of them (``protocol.TOKEN_ERRORS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from imsp.auth import credentials, crypto
from imsp.auth.models import AppCredential, Institution
from imsp.clock import Clock
from imsp.config import ExchangeSettings
from imsp.errors import ImspError, RateLimited, TokenExpired, TokenInvalid, TokenMissing
from imsp.exchange.models import AccessToken
from imsp.exchange.ratelimit import SlidingWindow
from imsp.exchange.writer import db_failure

#: Expired tokens are kept this long so a late client still gets "expired" (40103), not "invalid".
KEEP_EXPIRED = timedelta(days=7)
_TOKEN_LENGTH = len(crypto.new_token())
_CACHE_MAX = 20_000


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token grants: uploads for one institution, until ``expires_at``."""

    institution_id: int
    org_code: str
    app_id: str
    expires_at: datetime
    channel: str = "production"  # test (测试) | production (正式), of the credential


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime
    expires_in: int
    grant: Grant


class TokenService:
    """Issues and verifies access tokens; one per app (holds the cache and the rate limiters)."""

    def __init__(self, settings: ExchangeSettings, clock: Clock) -> None:
        self.ttl = timedelta(seconds=settings.token_ttl_seconds)
        self.cache_seconds = settings.token_cache_seconds
        self.clock = clock
        limit = settings.auth_failures_per_minute
        self.by_app = SlidingWindow(limit=limit)
        self.by_addr = SlidingWindow(limit=limit)
        self.bad_tokens = SlidingWindow(limit=limit)
        self._cache: dict[str, tuple[Grant | None, float]] = {}

    # ----------------------------------------------------------------------------- issuing

    async def issue(
        self, session: AsyncSession, *, app_id: str, app_secret: str, client_addr: str
    ) -> IssuedToken:
        """A new token for a valid appId/appSecret. Raises ``RateLimited`` (42900) while the appId
        or the address has too many recent failures, else the credential errors of
        ``credentials.authenticate`` (40002/40004/40005)."""
        now = self.clock.now()
        ts = now.timestamp()
        wait = max(
            self.by_app.retry_after(app_id, ts) if app_id else 0,
            self.by_addr.retry_after(client_addr, ts),
        )
        if wait:
            raise RateLimited(wait)
        try:
            principal = await credentials.authenticate(
                session, app_id=app_id, app_secret=app_secret
            )
        except ImspError:
            if app_id:
                self.by_app.fail(app_id, ts)
            self.by_addr.fail(client_addr, ts)
            raise
        token = crypto.new_token()
        expires_at = now + self.ttl
        await session.execute(
            delete(AccessToken).where(
                AccessToken.credential_id == principal.credential_id,
                AccessToken.expires_at < now - KEEP_EXPIRED,
            )
        )
        await session.execute(
            insert(AccessToken).values(
                token_hash=crypto.digest(token),
                credential_id=principal.credential_id,
                institution_id=principal.institution_id,
                issued_at=now,
                expires_at=expires_at,
            )
        )
        grant = Grant(
            principal.institution_id, principal.org_code, app_id, expires_at, principal.channel
        )
        return IssuedToken(token, expires_at, int(self.ttl.total_seconds()), grant)

    # ----------------------------------------------------------------------------- verifying

    async def verify(self, engine: AsyncEngine, token: str | None, client_addr: str) -> Grant:
        """The grant of a valid token, else ``TokenMissing``/``TokenInvalid``/``TokenExpired``
        (or ``RateLimited`` for an address that keeps sending unknown tokens)."""
        if not token:
            raise TokenMissing()
        now = self.clock.now()
        ts = now.timestamp()
        if len(token) != _TOKEN_LENGTH or not token.startswith(crypto.TOKEN_PREFIX):
            self._unknown(client_addr, ts)
        digest = crypto.digest(token)
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > ts:
            grant = hit[0]
        else:
            wait = self.bad_tokens.retry_after(client_addr, ts)
            if wait:
                raise RateLimited(wait)
            try:
                grant = await self._load(engine, digest)
            except DBAPIError as exc:
                raise db_failure(exc, None, connection_lost=True) from None
            if self.cache_seconds > 0:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[digest] = (grant, ts + self.cache_seconds)
        if grant is None:
            self._unknown(client_addr, ts)
        if grant.expires_at <= now:
            raise TokenExpired()
        return grant

    def forget(self) -> None:
        """Drop every cached verification (after revoking in this process)."""
        self._cache.clear()

    def _unknown(self, client_addr: str, ts: float) -> NoReturn:
        self.bad_tokens.fail(client_addr, ts)
        raise TokenInvalid()

    async def _load(self, engine: AsyncEngine, digest: str) -> Grant | None:
        stmt = (
            select(
                AccessToken.institution_id,
                Institution.org_code,
                AppCredential.app_id,
                AccessToken.expires_at,
                AppCredential.channel,
            )
            .join(AppCredential, AppCredential.id == AccessToken.credential_id)
            .join(Institution, Institution.id == AccessToken.institution_id)
            .where(AccessToken.token_hash == digest, AppCredential.status == "active")
        )
        async with engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return Grant(row.institution_id, row.org_code, row.app_id, row.expires_at, row.channel)


async def revoke_tokens(session: AsyncSession, *, app_id: str) -> int:
    """Delete every token of ``app_id`` (they stop working once the verification caches expire)."""
    cred_id = select(AppCredential.id).where(AppCredential.app_id == app_id).scalar_subquery()
    result = await session.execute(delete(AccessToken).where(AccessToken.credential_id == cred_id))
    return int(getattr(result, "rowcount", 0) or 0)
