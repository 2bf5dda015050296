"""The portal's entry point: routes, static assets, HTML error pages, security headers.

Everything the browser loads comes from this server (卫生专网内无互联网): our own CSS and no
third-party script, font or image. Errors keep the one catalogue (``imsp.errors``): the page shows
the same code and message the JSON shape would carry. Anonymous visitors reach only the login
page, the static assets and ``/healthz``; every other page redirects them to the login page.
"""

from __future__ import annotations

from importlib import resources
from typing import Final
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imsp.errors import (
    BadRequest,
    BodyTooLarge,
    CommitFailed,
    ImspError,
    MethodNotAllowed,
    NotFound,
)
from imsp.portal import acceptance as acceptance_pages
from imsp.portal import (
    accounts,
    applicant,
    audit,
    review,
    roster,
    signin,
    supervise,
    supervise_findings,
    video,
)
from imsp.portal import spec as spec_page
from imsp.portal.edge import TOO_LARGE, Redirect, Rerender, is_https, render
from imsp.standard.protocol import GATEWAY, TOKEN_ERRORS
from imsp.web import log

#: Content Security Policy: only this origin; no inline script; no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Sent on every answer over HTTPS: one year, this host and its subdomains.
HSTS = b"max-age=31536000; includeSubDomains"
_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
_BY_STATUS: dict[int, type[ImspError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: BodyTooLarge,
}
#: Page titles for the catalogue codes a person meets in the portal.
_TITLES = {40001: "输入有误", 40300: "无权访问", 40400: "页面不存在", 41300: "上传内容过大"}


class PortalGuard:
    """Pure ASGI middleware: security headers on every response (no caching of pages, which hold
    personal data) and a hard request-body limit (uploads are checked precisely by the page)."""

    def __init__(self, app: ASGIApp, *, max_body: int, trusted_proxies: str = "") -> None:
        self.app = app
        self.max_body = max_body
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        https = is_https(scope, self.trusted_proxies)
        limit = self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(_too_large_msg(limit))
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = list(_HEADERS)
                if https:  # browsers remember to use HTTPS only (RFC 6797)
                    extra.append((b"strict-transport-security", HSTS))
                if not static:
                    if b"cache-control" not in present:
                        extra.append((b"cache-control", b"no-store"))
                    if b"content-security-policy" not in present:
                        extra.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers + [(k, v) for k, v in extra if k not in present]
            await send(message)

        await self.app(scope, limited_receive, send_with_headers)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method == "POST":
            # Back to the form with the reason: read (and drop) what the browser is still
            # sending first, so it sees our answer rather than a reset connection.
            drained = 0
            while drained <= _DRAIN_BYTES:
                message = await receive()
                drained += len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            response: Response = RedirectResponse(back_to_form(request), status_code=303)
        else:
            response = _error_page(request, BodyTooLarge(_too_large_msg(self.max_body)))
        response.headers["connection"] = "close"
        await response(scope, receive, send)


#: How much of an oversized upload is read and dropped before answering.
_DRAIN_BYTES: Final = 200 * 1024 * 1024


def back_to_form(request: Request) -> str:
    """Where an oversized upload is sent back: the page it came from (same site only, as the
    Referer says), or the address it was posted to; with ``?problem=too_large``."""
    referer = urlsplit(request.headers.get("referer", ""))
    page = request.url.path
    if referer.netloc == request.url.netloc and referer.path.startswith("/"):
        page = referer.path
    return page + "?" + urlencode({"problem": TOO_LARGE})


def _too_large_msg(limit: int) -> str:  # a body without Content-Length, cut off while read
    return f"上传内容过大：单个请求不能超过 {limit / 1024 / 1024:.0f} MB，本次操作未生效"


def _error_page(request: Request, exc: ImspError) -> Response:
    return render(
        request,
        "error.html",
        code=exc.code,
        msg="页面不存在或已被删除"
        if exc.code == 40400 and exc.msg == GATEWAY[40400].msg
        else exc.msg,
        title=_TITLES.get(exc.code, GATEWAY[exc.code].msg),
        status=exc.http_status,
    )


def install(app: FastAPI) -> None:
    """Register the portal's routes, static assets, error pages and middleware on ``app``."""
    settings = app.state.ctx.settings
    static = resources.files("imsp.portal") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # supervise_findings and acceptance before roster: their /my/… must win over /my/{kind}.
    for module in (
        signin,
        accounts,
        applicant,
        supervise_findings,
        acceptance_pages,
        roster,
        review,
        supervise,
        video,
        audit,
    ):
        app.include_router(module.router)
    spec_page.install(app)  # the published interface spec, public like /login
    app.state.login_throttle = signin.new_throttle(settings, app.state.ctx.shared)
    app.add_middleware(
        PortalGuard,
        max_body=settings.portal.max_upload_bytes + 1024 * 1024,
        trusted_proxies=settings.trusted_proxies,
    )

    async def on_redirect(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Redirect)
        return RedirectResponse(exc.location, status_code=303)

    async def on_rerender(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Rerender)
        return exc.response

    async def on_imsp(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ImspError)
        if isinstance(exc, CommitFailed) and isinstance(exc.page, Response):
            return exc.page  # the submitted form again, with the problem on top
        if exc.code in TOKEN_ERRORS:
            return RedirectResponse("/login", status_code=303)
        if isinstance(exc, BodyTooLarge) and request.method == "POST":
            return RedirectResponse(back_to_form(request), status_code=303)
        return _error_page(request, exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code >= 500:
            return _error_page(request, ImspError())
        return _error_page(request, _BY_STATUS.get(exc.status_code, BadRequest)())

    async def on_validation(request: Request, _: Exception) -> Response:
        return _error_page(request, NotFound())

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_page(request, ImspError())

    app.add_exception_handler(Redirect, on_redirect)
    app.add_exception_handler(Rerender, on_rerender)
    app.add_exception_handler(ImspError, on_imsp)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
