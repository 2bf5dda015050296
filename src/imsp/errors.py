"""The one error tree. Every error IMSP reports carries a stable code from the catalogue.

Domain code raises these; one handler per app (``imsp.web``) renders them as
``{"code": <code>, "msg": "<中文>", "data": null}`` with the catalogue's HTTP status.
Never raise ad-hoc ``HTTPException``s from domain code.
"""

from __future__ import annotations

from typing import Any

from imsp.standard.protocol import GATEWAY


class ImspError(Exception):
    """Base of every expected error. ``code`` is a key of ``imsp.standard.protocol.GATEWAY``."""

    code: int = 50000

    def __init__(
        self, msg: str | None = None, *, data: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.msg = msg or GATEWAY[self.code].msg
        self.data = data
        self.headers = headers or {}
        super().__init__(self.msg)

    @property
    def http_status(self) -> int:
        return GATEWAY[self.code].http_status


class MalformedJson(ImspError):
    code = 40000


class BadRequest(ImspError):
    code = 40001


class ClientDisconnected(ImspError):
    """The client closed the connection before its request body was complete. Logged in
    ``exchange_log`` with this code (nothing was stored) and metered as cancelled
    (``imsp.exchange.meters.CANCELLED``): the audit and the metrics say the same thing. No client
    receives it — there is no one left to answer."""

    code = 49900


class UnknownAppId(ImspError):
    code = 40002


class SecretMismatch(ImspError):
    code = 40004


class CredentialRevoked(ImspError):
    code = 40005


class DuplicateKey(ImspError):
    code = 40006


class RepeatedParameter(ImspError):
    code = 40007


class RepeatedHeader(ImspError):
    code = 40008


class TokenMissing(ImspError):
    code = 40101


class TokenInvalid(ImspError):
    code = 40102


class TokenExpired(ImspError):
    code = 40103


class Forbidden(ImspError):
    code = 40300


class NotFound(ImspError):
    code = 40400


class MethodNotAllowed(ImspError):
    code = 40500


class BodyTooLarge(ImspError):
    code = 41300


class TooManyRecords(ImspError):
    code = 41301


class UnsupportedMediaType(ImspError):
    code = 41500


class RateLimited(ImspError):
    code = 42900

    def __init__(self, retry_after: int, msg: str | None = None) -> None:
        super().__init__(msg, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


#: Seconds a client waits before retrying after 50300 (the database is unreachable).
UNAVAILABLE_RETRY_AFTER = 5


class Unavailable(ImspError):
    """50300: the platform cannot reach its database. Always answered with ``Retry-After``, and
    never disguised as another code: a client that is told 40102 throws its token away."""

    code = 50300

    def __init__(self, msg: str | None = None) -> None:
        super().__init__(msg, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})


class CommitFailed(Unavailable):
    """The database did not commit a request's unit of work: nothing of it was stored.

    ``page`` is the submitted form rendered again with ``problem`` (portal), if the page
    registered one."""

    problem = "数据库暂时无法完成本次保存（可能正被其他操作占用），本次操作未生效，请稍后重新提交"

    def __init__(self, page: Any = None) -> None:
        super().__init__(self.problem)
        self.page = page


class ConfigError(Exception):
    """Bad configuration at start-up; the CLI prints ``message`` on one line and exits non-zero."""
