"""Access tokens (授权码): cached with their expiry, refreshed ahead of it, and on a token error.

Both ways of the access instructions (第三章 “access_token 超时处理建议”) at once:

* 方式一 (scheduled refresh): a token is renewed once less than ``refresh_margin`` of its life
  remains — checked before every request, and optionally by a background thread
  (:meth:`TokenManager.start_refresher`) so a quiet client still holds a fresh token;
* 方式二 (wrap the calls): :class:`TokenAuth` is an ``httpx.Auth`` whose ``auth_flow`` sees a token
  error (``protocol.TOKEN_ERRORS``: missing/invalid/expired), fetches a new token and resends the
  request **once** — so a token that expires in the middle of a long push is invisible.

The manager is thread-safe: one lock guards the cached token, and concurrent callers that all see
a stale token wait for one fetch instead of each fetching their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import httpx
import orjson

from imsp.client.errors import (
    ClientError,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
    from_response,
)
from imsp.client.receipt import Token
from imsp.client.transport import retry_after_seconds
from imsp.standard.protocol import TOKEN_ERRORS

log = logging.getLogger("imsp.client")

TOKEN_PATH = "/auth/accesstoken/create"  # noqa: S105 (a URL path, not a secret)
#: 北京时间, the zone of the platform's ``expireTime``.
BEIJING = timezone(timedelta(hours=8))


class Clock(Protocol):
    """Anything with ``now()`` returning an aware datetime (``imsp.clock.FrozenClock`` fits)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(BEIJING)


def decode_json(response: httpx.Response) -> Any:
    """The answer's JSON, or ``None`` when it is not JSON (a proxy's HTML page, an empty body)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def error_of(response: httpx.Response) -> ClientError | None:
    return from_response(
        response.status_code,
        decode_json(response),
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


class TokenManager:
    """Fetches and caches the access token of one appId. ``fetch`` does the HTTP call."""

    def __init__(
        self,
        fetch: Callable[[], httpx.Response],
        *,
        clock: Clock,
        refresh_margin: float = 300.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._next_try: datetime | None = None  # after a failed early refresh
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fetches = 0  # how many tokens were obtained (observability, tests)

    # ------------------------------------------------------------------ the cached token

    def refresh_at(self, token: Token) -> datetime:
        """When ``token`` is renewed: ``refresh_margin`` before expiry, but never before half
        its life (so a short-lived token is not refetched on every request)."""
        margin = min(self._margin, token.expires_in / 2)
        return token.expires_at - timedelta(seconds=margin)

    def current(self) -> Token:
        """A token that is not due for renewal, fetching one if needed.

        A renewal ahead of expiry that fails for a passing reason (the platform unreachable,
        5xx, 429) keeps the token in hand while it is still valid — a short outage of the token
        service must not stop uploads — and is tried again after a pause."""
        with self._lock:
            token = self._token
            now = self._clock.now()
            if token is None or now >= token.expires_at:
                return self._obtain()
            if now < self.refresh_at(token) or (self._next_try and now < self._next_try):
                return token
            try:
                return self._obtain()
            except (TransportError, ServerError, RateLimited) as exc:
                left = (token.expires_at - now).total_seconds()
                self._next_try = now + timedelta(seconds=max(1.0, min(60.0, left / 4)))
                log.warning("token renewal failed (%s); current token valid %.0fs more", exc, left)
                return token

    def renew(self, stale: str | None = None) -> Token:
        """A new token — unless another thread already replaced ``stale`` meanwhile."""
        with self._lock:
            token = self._token
            if token is not None and stale is not None and token.value != stale:
                return token
            return self._obtain()

    def _obtain(self) -> Token:
        now = self._clock.now()
        response = self._fetch()
        err = error_of(response)
        if err is not None:
            raise err
        try:
            data = decode_json(response)["data"]
            value = str(data["accessToken"])
            expires_in = int(data["expiresIn"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("令牌服务应答缺少 accessToken/expiresIn") from exc
        token = Token(
            value=value,
            expires_in=expires_in,
            obtained_at=now,
            expires_at=now + timedelta(seconds=expires_in),
            expire_time=str(data.get("expireTime") or ""),
        )
        self._token = token
        self._next_try = None
        self.fetches += 1
        log.info("access token obtained, valid %ss", expires_in)
        return token

    # ------------------------------------------------------------------ background refresher

    def start_refresher(self, *, poll: float = 30.0) -> None:
        """Renew the token in a daemon thread whenever it is due (方式一). Idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._refresh_loop, args=(poll,), name="imsp-token-refresher", daemon=True
        )
        self._thread.start()

    def stop_refresher(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _refresh_loop(self, poll: float) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.current()
                failures = 0
            except ClientError as exc:  # keep trying; requests refresh on their own too
                failures += 1
                log.warning("background token refresh failed: %s", exc)
            self._stop.wait(min(poll * (2 ** min(failures, 5)), 600.0))


class TokenAuth(httpx.Auth):
    """Puts the token in the ``accessToken`` header; on a token error, renews it and resends once."""

    requires_response_body = True  # the gateway code is in the body

    def __init__(self, manager: TokenManager) -> None:
        self.manager = manager

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.manager.current()
        request.headers["accessToken"] = token.value
        response = yield request
        if response.status_code != 401:
            return
        body = decode_json(response)
        code = body.get("code") if isinstance(body, dict) else None
        if code not in TOKEN_ERRORS:
            return
        log.info("token refused (%s), refreshing and resending once", code)
        token = self.manager.renew(stale=token.value)
        request.headers["accessToken"] = token.value
        yield request
