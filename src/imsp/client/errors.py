"""The SDK's one error tree. Every failure a caller can handle is a :class:`ClientError`.

Low-level exceptions (httpx's, JSON decoding, …) are mapped to this tree at one boundary
(:func:`from_response` for answers, :func:`from_transport` for the network), so a hospital's code
never imports httpx to handle an error::

    ClientError
    ├── ConfigurationError   missing base URL / appId / appSecret, bad option
    ├── UnknownDataset       a dataset name that is neither a short code nor a service
    ├── InputError           a records file that cannot be read (type, JSON, CSV, encoding)
    ├── AuthError            the platform refused the credentials (40002 / 40004 / 40005)
    │   └── TokenError       a token error persisted after one refresh and resend (401xx)
    ├── RequestRejected      the platform refused the request as a whole (400, 403, 404, 413, 415 …)
    ├── RateLimited          429 still answered after the retries (``retry_after`` seconds)
    ├── ServerError          5xx still answered after the retries
    ├── TransportError       the platform could not be reached (connection, timeout) after retries
    ├── ProtocolError        the answer is not the protocol's JSON envelope
    └── ValidationFailed     offline validation found errors and nothing was sent

Codes and hints come from ``imsp.standard.protocol.GATEWAY`` — the same catalogue the server uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imsp.standard.protocol import GATEWAY, TOKEN_ERRORS

if TYPE_CHECKING:
    from imsp.client.receipt import Receipt, RecordResult


class ClientError(Exception):
    """Base of every SDK error. ``code`` is the platform's gateway code when there is one,
    ``status`` the HTTP status, ``hint`` what to do about it (Chinese, from the catalogue).
    ``partial`` is set by ``Client.upload`` when earlier batches were delivered before it."""

    partial: Receipt | None = None

    def __init__(
        self,
        msg: str,
        *,
        code: int | None = None,
        status: int | None = None,
        hint: str = "",
        data: Any = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code
        self.status = status
        self.hint = hint or (GATEWAY[code].hint if code in GATEWAY else "")
        self.data = data

    def __str__(self) -> str:
        prefix = f"[{self.code}] " if self.code is not None else ""
        return prefix + self.msg


class ConfigurationError(ClientError):
    """The SDK was given incomplete or invalid settings (nothing was sent)."""


class UnknownDataset(ClientError):
    """The dataset is neither a short code (``prescription``) nor a service
    (``uploadPrescriptionInfo``) of the Data Standard."""


class InputError(ClientError):
    """An input file cannot be read as records (unknown type, bad JSON/CSV, not UTF-8)."""


class AuthError(ClientError):
    """The platform refused the appId/appSecret: no token can be obtained. Not retried."""


class TokenError(AuthError):
    """The platform still refused the access token after one refresh and resend."""


class RequestRejected(ClientError):
    """The request as a whole was refused (malformed, too large, wrong service …). Not retried."""


class RateLimited(ClientError):
    """Still 429 after the retries. ``retry_after`` is the platform's ``Retry-After`` in seconds."""

    def __init__(self, msg: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(msg, **kw)
        self.retry_after = retry_after


class ServerError(ClientError):
    """Still a 5xx answer after the retries (platform maintenance, database down …)."""


class TransportError(ClientError):
    """The platform could not be reached or did not answer in time, after the retries."""


class ProtocolError(ClientError):
    """The platform answered something that is not the protocol's ``{code, msg, data}`` JSON."""


class ValidationFailed(ClientError):
    """Offline validation (the Data Standard's own validator) found errors; nothing was sent.
    ``results`` holds every record's result, rejected ones with their field errors."""

    def __init__(self, msg: str, *, results: list[RecordResult]) -> None:
        super().__init__(msg)
        self.results = results


def from_response(
    status: int, body: Any, *, retry_after: float | None = None
) -> ClientError | None:
    """The error an answer means, or ``None`` for a successful ``code: 200`` envelope.

    ``body`` is the decoded JSON (anything; a non-envelope gives :class:`ProtocolError`).
    """
    if not isinstance(body, dict) or "code" not in body:
        if status == 429:
            return RateLimited("请求过于频繁", status=status, code=42900, retry_after=retry_after)
        if status >= 500:
            return ServerError(f"平台服务异常（HTTP {status}）", status=status, code=50000)
        return ProtocolError(f"平台返回了非协议格式的应答（HTTP {status}）", status=status)
    code = body.get("code")
    msg = str(body.get("msg") or "")
    if not isinstance(code, int):
        return ProtocolError(f"应答中的 code 不是整数：{code!r}", status=status)
    if code == 200 and status < 400:
        return None
    entry = GATEWAY.get(code)
    msg = msg or (entry.msg if entry else f"平台错误 {code}")
    data = body.get("data")
    kw: dict[str, Any] = {"code": code, "status": status, "data": data}
    if code in TOKEN_ERRORS:
        return TokenError(msg, **kw)
    if code in (40002, 40004, 40005):
        return AuthError(msg, **kw)
    if code == 42900 or status == 429:
        return RateLimited(msg, retry_after=retry_after, **kw)
    if status >= 500 or code >= 50000:
        return ServerError(msg, **kw)
    return RequestRejected(msg, **kw)


def from_transport(exc: Exception) -> TransportError:
    """A network failure, without the URL (the token URL carries the appSecret)."""
    kind = type(exc).__name__
    if "Timeout" in kind:
        return TransportError(f"连接平台超时（{kind}）")
    return TransportError(f"无法连接平台（{kind}）")
