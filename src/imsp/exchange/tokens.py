"""Access tokens (授权码): issued by ``/auth/accesstoken/create``, checked on every upload.

* A token is ``hbt_`` + 256 random bits; only its SHA-256 is stored (``access_token.token_hash``).
* It is valid ``settings.exchange.token_ttl_seconds`` (default one day) by the injected ``Clock``.
  Issuing a new token does not cut off older unexpired ones, so a client that refreshes while
  requests are in flight never sees them fail (数据接入工作说明 第三章 超时处理建议).
* Verification on the hot path is served from an in-process cache (digest → grant) for
  ``token_cache_seconds`` (default 5 s); ``0`` disables the cache. A revocation is announced
  (``announce_revocation``, after its commit) through the shared state's ``revocations``: in
  memory (one node) it drops this process's cache and other processes' caches expire within
  ``token_cache_seconds``; with Redis (``IMSP_REDIS_URL``) every node drops its cache within
  one second, and a node that cannot reach Redis checks every token against the database
  (``imsp.shared_redis`` says how — fail safe).
* Rate limits (the shared state's sliding windows — one limit for every node with Redis —,
  answered 429 with ``Retry-After``) never refuse a correct secret or a valid token because of
  someone else's failures:

  - token requests: failures are counted per (appId, address) — the one key that locks, since
    its failures are the requester's own — and per address and IPv6 /64, which only turn the
    answer to a *wrong* secret into 429 (a correct one from the same address still gets its
    token). Per appId the ceiling is ``APP_ALERT_FACTOR`` times higher and only raises an alert
    in the log: anyone who knows an appId must not be able to stop that hospital's renewals;
  - uploads: an unknown token from an address (or /64) with too many unknown tokens is 429
    instead of 40102; a valid token from there is accepted.
* Distinct codes: 40101 no token, 40102 unknown/revoked token, 40103 expired — the client refreshes
  and resends on any of them (``protocol.TOKEN_ERRORS``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import NoReturn

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from imsp.auth import credentials, crypto
from imsp.auth.models import AppCredential, Institution
from imsp.auth.service import IssuedCredential
from imsp.clock import Clock
from imsp.config import ExchangeSettings
from imsp.errors import ImspError, RateLimited, TokenExpired, TokenInvalid, TokenMissing
from imsp.exchange.models import AccessToken
from imsp.exchange.ratelimit import address_keys
from imsp.exchange.writer import db_failure
from imsp.shared_state import MemoryState, SharedState

log = logging.getLogger("imsp.exchange")

#: The per-appId ceiling of failed token requests is this many times the per-address limit; it
#: alerts, never locks.
APP_ALERT_FACTOR = 10
#: Expired tokens are kept this long so a late client still gets "expired" (40103), not "invalid".
KEEP_EXPIRED = timedelta(days=7)
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

    def __init__(
        self, settings: ExchangeSettings, clock: Clock, shared: SharedState | None = None
    ) -> None:
        self.ttl = timedelta(seconds=settings.token_ttl_seconds)
        self.cache_seconds = settings.token_cache_seconds
        self.clock = clock
        state = shared or MemoryState()
        self.revocations = state.revocations
        limit = settings.auth_failures_per_minute
        self.by_pair = state.window("token.pair", limit=limit)
        self.by_addr = state.window("token.addr", limit=limit)
        self.by_app = state.window("token.app", limit=limit * APP_ALERT_FACTOR)
        self.bad_tokens = state.window("token.unknown", limit=limit)
        # digest -> (grant, cached until, revocation generation it was read under)
        self._cache: dict[str, tuple[Grant | None, float, int]] = {}
        # (digest, revocation generation) -> its load in flight: the requests that miss the
        # cache together (every connection of a client when its entry expires) share one query
        self._loading: dict[tuple[str, int], asyncio.Future[Grant | None]] = {}

    # ----------------------------------------------------------------------------- issuing

    async def issue(
        self, session: AsyncSession, *, app_id: str, app_secret: str, client_addr: str
    ) -> IssuedToken:
        """A new token for a valid appId/appSecret. Raises ``RateLimited`` (42900) while this
        appId has too many recent failures from this address, or for a wrong secret from an
        address (or /64) with too many failures; else the credential errors of
        ``credentials.authenticate`` (40002/40004/40005)."""
        now = self.clock.now()
        ts = now.timestamp()
        pair = f"{app_id}\x00{client_addr}"
        wait = await self.by_pair.retry_after([pair], ts)
        if wait:
            raise RateLimited(wait)
        addrs = address_keys(client_addr)
        addr_wait = await self.by_addr.retry_after(addrs, ts)
        try:
            principal = await credentials.authenticate(
                session, app_id=app_id, app_secret=app_secret
            )
        except ImspError:
            await self.by_pair.fail([pair], ts)
            await self.by_addr.fail(addrs, ts)
            if app_id and await self.by_app.fail([app_id], ts) == self.by_app.limit:
                log.warning(
                    "alert: %d failed token requests for appId %r within %.0f s (not locked)",
                    self.by_app.limit,
                    app_id[:40],
                    self.by_app.window,
                )
            if addr_wait:
                raise RateLimited(addr_wait) from None
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
        # Even a token of the wrong shape is looked up (an indexed miss, and the address is
        # rate-limited): while the database is unreachable every unknown token is 50300, never
        # 40102 — the platform could not check it, and a client told 40102 drops its token.
        digest = crypto.digest(token)
        hit = self._cache.get(digest)
        generation = self.revocations.generation
        if hit is not None and hit[1] > ts and hit[2] == generation and self.revocations.trusted():
            grant = hit[0]
        else:
            try:
                grant = await self._load_shared(engine, digest, generation)
            except (DBAPIError, PoolTimeout) as exc:
                raise db_failure(exc, None, connection_lost=True) from None
            # Cached only if no revocation was announced while it was read: a grant read just
            # before a revocation committed must not outlive the announcement.
            if self.cache_seconds > 0 and self.revocations.generation == generation:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[digest] = (grant, ts + self.cache_seconds, generation)
        if grant is None:
            await self._unknown(client_addr, ts)
        if grant.expires_at <= now:
            raise TokenExpired()
        return grant

    async def _unknown(self, client_addr: str, ts: float) -> NoReturn:
        """40102 — or 429 for an address (or /64) that keeps sending unknown tokens."""
        keys = address_keys(client_addr)
        wait = await self.bad_tokens.retry_after(keys, ts)
        await self.bad_tokens.fail(keys, ts)
        if wait:
            raise RateLimited(wait)
        raise TokenInvalid()

    async def _load_shared(self, engine: AsyncEngine, digest: str, generation: int) -> Grant | None:
        """:meth:`_load`, once for all the callers that miss the cache while it runs. Keyed by
        the revocation generation too: a caller arriving after a revocation was announced never
        gets a grant read before it. The load runs as a task of its own, so a caller that is
        cancelled (its client went away) does not cancel it for the others."""
        key = (digest, generation)
        future = self._loading.get(key)
        if future is None:
            future = self._loading[key] = asyncio.ensure_future(self._load(engine, digest))
            future.add_done_callback(partial(self._loaded, key))
        return await asyncio.shield(future)

    def _loaded(self, key: tuple[str, int], future: asyncio.Future[Grant | None]) -> None:
        if self._loading.get(key) is future:
            del self._loading[key]
        if not future.cancelled():
            future.exception()  # retrieved: the callers that were cancelled will not read it

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


async def announce_revocation(shared: SharedState) -> bool:
    """Tell every node's token cache that tokens were revoked — call it AFTER the revocation
    committed (``revoke_tokens``, ``rotate_secret(revoke=True)``, ``revoke_credential``).
    ``False`` when the other nodes could not be told (then their caches expire within
    ``token_cache_seconds``)."""
    return await shared.revocations.announce()


async def revoke_tokens(session: AsyncSession, *, app_id: str) -> int:
    """Delete every token of ``app_id`` (they stop working on every node once
    ``announce_revocation`` is called after the commit)."""
    cred_id = select(AppCredential.id).where(AppCredential.app_id == app_id).scalar_subquery()
    result = await session.execute(delete(AccessToken).where(AccessToken.credential_id == cred_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def rotate_secret(
    session: AsyncSession, *, app_id: str, now: datetime, revoke: bool
) -> tuple[IssuedCredential, int]:
    """A new secret for ``app_id`` (``credentials.rotate_secret``); with ``revoke`` its access
    tokens are revoked too (a leaked secret). Returns the new credential and how many tokens
    were revoked."""
    issued = await credentials.rotate_secret(session, app_id=app_id, now=now)
    revoked = await revoke_tokens(session, app_id=app_id) if revoke else 0
    return issued, revoked


async def revoke_credential(
    session: AsyncSession, *, app_id: str, now: datetime
) -> credentials.CredentialInfo:
    """Stop ``app_id`` for good: the credential (``credentials.revoke_credential``) and every
    access token it was issued."""
    info = await credentials.revoke_credential(session, app_id=app_id, now=now)
    await revoke_tokens(session, app_id=app_id)
    return info
