"""What both servers share at the HTTP edge: the app context, sessions, the error handler, health.

Every error leaves as ``{"code": <catalogue code>, "msg": "<中文>", "data": ...}`` — one shape for
the exchange service and the portal's JSON endpoints (STYLE §4). Unexpected exceptions are logged
with their traceback and answered with code 50000, never with a bare 500 page.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from imsp import __version__
from imsp.clock import Clock
from imsp.config import Settings
from imsp.errors import UNAVAILABLE_RETRY_AFTER, CommitFailed, ImspError, MethodNotAllowed, NotFound
from imsp.shared_state import MemoryState, SharedState
from imsp.standard.protocol import GATEWAY
from imsp.storage.db import Database, db_error_name

log = logging.getLogger("imsp.web")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class JsonResponse(JSONResponse):
    """JSON via orjson: UTF-8 Chinese as-is, fast."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True, slots=True)
class AppContext:
    """What a running app owns; stored on ``app.state.ctx``."""

    settings: Settings
    db: Database
    clock: Clock
    service: str  # "exchange" | "portal" | "worker" (the worker role's health port)
    shared: SharedState = field(default_factory=MemoryState)  # chosen by the app factory


def ctx(request: Request) -> AppContext:
    c: AppContext = request.app.state.ctx
    return c


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one unit of work per request, committed when the handler succeeds.

    Declare it through ``UnitOfWork`` (``scope="function"``): the commit then runs after the
    handler returned its response object but *before* that response is sent, so a page that says
    已保存 has saved, and a session cookie is live when the browser receives it. When the
    database refuses the work (a lock held too long, a lost connection), the request ends with
    ``CommitFailed`` (50300) instead of its success answer. Before rolling back, the hook a page
    registered with ``keep_form(request, render)`` renders the submitted form again (the
    loaded rows are still readable then). The log names only the request and the database
    error's class — never the statement's parameters, which hold what the user typed.
    """
    async with ctx(request).db.sessions() as s:
        try:
            yield s
            await s.commit()
        except DBAPIError as exc:
            await s.rollback()
            log.warning(
                "unit of work of %s %s not committed: %s",
                request.method,
                request.url.path,
                db_error_name(exc),
            )
            raise CommitFailed(page=await _form_again(request)) from None
        except BaseException:
            await s.rollback()
            raise


#: The unit of work of a request, committed before the response is sent (see ``session``).
UnitOfWork = Annotated[AsyncSession, Depends(session, scope="function")]

_KEEP_FORM = "imsp_keep_form"


def keep_form(request: Request, render: Callable[[str], Awaitable[Response]]) -> None:
    """Register how to show this request's form again, should its unit of work fail.

    ``render(problem)`` gets a Chinese message and returns the form page holding the submitted
    values. It runs after the rollback, in a fresh transaction of the same session (rows it
    needs must be loaded again); if it fails too, the generic error page is shown."""
    setattr(request.state, _KEEP_FORM, render)


async def _form_again(request: Request) -> Response | None:
    render: Callable[[str], Awaitable[Response]] | None = getattr(request.state, _KEEP_FORM, None)
    if render is None:
        return None
    try:
        return await render(CommitFailed.problem)
    except Exception as exc:  # e.g. the database is gone altogether: the generic error page
        log.warning("could not show the form of %s again: %s", request.url.path, type(exc).__name__)
        return None


#: The longest address ``client_addr`` returns (the ``client_addr`` columns are 64 wide).
ADDR_LENGTH = 64


@functools.lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[IPNetwork, ...]:
    """The networks of ``Settings.trusted_proxies`` (comma-separated addresses or CIDRs)."""
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])  # no IPv6 zone
    except ValueError:
        return None


def client_addr(request: Request) -> str:
    """The client's address: the connection's peer — or, when the peer is one of the configured
    ``trusted_proxies``, the right-most address of ``X-Forwarded-For`` that is not a trusted
    proxy itself. Anything else in the header is ignored: from an untrusted peer it is what the
    client chose to write (rate limits would count nothing), and a value that is not an IP
    address is never believed. The result is a normalised address, never longer than
    :data:`ADDR_LENGTH`, so no header can make a log row fail to write."""
    peer = request.client.host if request.client else ""
    trusted = trusted_networks(ctx(request).settings.trusted_proxies)
    if trusted:
        here = _ip(peer)
        if here is not None and any(here in n for n in trusted):
            forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
            for hop in reversed(forwarded.split(",")[-32:]):
                ip = _ip(hop)
                if ip is None:
                    break
                if not any(ip in n for n in trusted):
                    return str(ip)
    return peer[:ADDR_LENGTH]


def error_response(
    code: int, msg: str | None = None, data: Any = None, headers: dict[str, str] | None = None
) -> Response:
    entry = GATEWAY[code]
    return JsonResponse(
        {"code": code, "msg": msg or entry.msg, "data": data},
        status_code=entry.http_status,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_imsp(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ImspError)
        return error_response(exc.code, exc.msg, exc.data, exc.headers)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return error_response(40001, data={"errors": errors})

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None  # 405 carries Allow (RFC 9110)
        if exc.status_code == 404:
            return error_response(NotFound.code, headers=headers)
        if exc.status_code == 405:
            return error_response(MethodNotAllowed.code, headers=headers)
        code = {400: 40001, 401: 40101, 403: 40300, 413: 41300, 415: 41500, 429: 42900}.get(
            exc.status_code, 50000
        )
        return error_response(code, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(50000)

    app.add_exception_handler(ImspError, on_imsp)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def install_healthz(app: FastAPI) -> None:
    @app.get("/healthz", tags=["运维"], summary="健康检查")
    async def healthz(request: Request) -> Response:
        c = ctx(request)
        db = await c.db.ping()
        ok = db["status"] == "ok"
        body = {
            "status": "ok" if ok else "degraded",
            "service": c.service,
            "version": __version__,
            "database": db,
        }
        if ok:
            return JsonResponse(body)
        return JsonResponse(
            body, status_code=503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}
        )

    @app.get(
        "/readyz",
        tags=["运维"],
        summary="就绪检查（负载均衡器据此分发流量）",
        responses={503: {"description": "未就绪：数据库、迁移或 Redis 有问题，原因见 reason"}},
    )
    async def readyz(request: Request) -> Response:
        from imsp.readiness import check

        c = ctx(request)
        result = await check(c.settings, c.db)
        body = {
            "status": "ready" if result.ready else "not_ready",
            "service": c.service,
            "version": __version__,
            "checks": result.checks,
        }
        if result.ready:
            return JsonResponse(body)
        body["reason"] = "；".join(result.reasons)
        return JsonResponse(
            body, status_code=503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}
        )


def close_at_shutdown(app: FastAPI, close: Callable[[], Awaitable[None]]) -> None:
    """Run ``close`` (a pool, a writer) when ``app`` shuts down, after the lifespan it already
    has — so a resource opened by an ``install`` function is released with the app."""
    parent = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with parent(a) as state:
            try:
                yield state
            finally:
                await close()

    app.router.lifespan_context = lifespan
