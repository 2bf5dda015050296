"""The HTTP edge of the data exchange service: request parsing and limits, and the ASGI fast path.

Upload request handling, in this order (each refusal is logged in ``exchange_log`` with its code
by the handler, ``exchange.api``):

1. token from the ``accessToken`` header (or ``Authorization: Bearer``), each at most once —
   40101/40102/40103, 429, 40008;
2. query flags ``dryRun`` / ``atomic`` (``true``/``false``/``1``/``0``), each at most once, and
   no other query parameter — 40001, 40007;
3. ``Content-Type: application/json`` (charset, if given, must be UTF-8) — 41500;
4. the body, read as a stream (``Content-Length`` or ``Transfer-Encoding: chunked``), refused with
   41300 as soon as it passes ``max_body_bytes`` — also up front from ``Content-Length``; a
   client that closes the connection before the body is complete — 49900 (客户端中断, in the
   log only: nobody is left to answer);
5. JSON parsing with orjson: invalid UTF-8, NUL characters, malformed JSON or nesting deeper than
   1024 — 40000; a key twice in one object — 40006; a UTF-8 BOM is tolerated (RFC 8259 §8.1); the
   body must be one object or an array of 1..``max_records`` records — 40001 / 41301;
6. per-record checking, storage and the receipt (``ingest``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from imsp.errors import (
    BadRequest,
    BodyTooLarge,
    ClientDisconnected,
    DuplicateKey,
    ImspError,
    MalformedJson,
    RepeatedHeader,
    RepeatedParameter,
    TooManyRecords,
    UnsupportedMediaType,
)
from imsp.exchange.writer import LogEntry
from imsp.web import error_response

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_BOM = b"\xef\xbb\xbf"

Handler = Callable[[Request], Awaitable[Response]]


# --------------------------------------------------------------------------- request parsing


def single(values: list[str], name: str, error: type[ImspError]) -> str | None:
    """The one value of a header or query parameter; repeating it is ambiguous (which one did
    the client mean?) and refused with ``error``."""
    if not values:
        return None
    if len(values) > 1:
        raise error(f"{name} 出现了 {len(values)} 次，只能出现一次")
    return values[0]


def bearer(request: Request) -> str | None:
    headers = request.headers
    token = single(headers.getlist("accesstoken"), "请求头 accessToken", RepeatedHeader)
    auth = single(headers.getlist("authorization"), "请求头 Authorization", RepeatedHeader)
    if token:
        return token.strip()
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def only_parameters(request: Request, allowed: frozenset[str]) -> None:
    """Refuse a query parameter the service does not define (40001): a misspelt ``dryrun``
    silently ignored would store what the client meant only to check."""
    for name in request.query_params:
        if name not in allowed:
            raise BadRequest(f"未定义的查询参数 {name[:40]}（只接受 {'、'.join(sorted(allowed))}）")


def flag(request: Request, name: str) -> bool:
    raw = single(request.query_params.getlist(name), f"查询参数 {name}", RepeatedParameter)
    if raw is None or raw in _FALSE:
        return False
    if raw in _TRUE:
        return True
    raise BadRequest(f"查询参数 {name} 只能为 true、false、1 或 0")


def check_media_type(request: Request) -> None:
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != "application/json":
        raise UnsupportedMediaType()
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType("仅接受 UTF-8 编码的 JSON（charset=UTF-8）")


async def read_body(request: Request, limit: int, entry: LogEntry) -> bytes:
    """The whole body, refused with 41300 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("Content-Length 无效") from None
        if size > limit:
            entry.size = size
            raise BodyTooLarge(f"请求体 {size} 字节，超过上限 {limit} 字节")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            entry.size = size
            if size > limit:
                raise BodyTooLarge(f"请求体超过上限 {limit} 字节")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected("客户端在请求体传输完成前断开连接") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_records(body: bytes, max_records: int) -> list[Any]:
    """The records of an upload body (one object or an array of 1..``max_records``)."""
    if body.startswith(_BOM):
        body = body[3:]
    if not body or body.isspace():  # not ``strip()``: that copies a body with a trailing newline
        raise MalformedJson("请求体为空")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"请求体不是合法的 UTF-8 JSON：{exc}") from None
    # orjson refuses a raw NUL; an escaped one needs a backslash, which most bodies lack
    # (memchr of one byte: ~0.02 µs per 2.3 KB record, the 6-byte search ~1.2 µs)
    if b"\\" in body and b"\\u0000" in body and _has_nul(doc):
        raise MalformedJson("请求体含 NUL 字符（\\u0000），不能接收")
    key = duplicate_key(body, doc)
    if key is not None:
        raise DuplicateKey(f"JSON 对象中的键 {key[:64]!r} 重复出现，无法确定取哪一个值")
    if type(doc) is dict:
        return [doc]
    if type(doc) is not list:
        raise BadRequest("请求体须为 JSON 对象或 JSON 数组")
    if not doc:
        raise BadRequest("请求体为空数组，至少应有 1 条记录")
    if len(doc) > max_records:
        raise TooManyRecords(f"单次上传 {len(doc)} 条，超过上限 {max_records} 条")
    return doc


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Duplicate(k)
            seen.add(k)
    return out


def duplicate_key(body: bytes, doc: Any) -> str | None:
    """A key that occurs twice in one object of ``body`` (parsed as ``doc``), or ``None``.

    orjson keeps the last of duplicate keys silently. Fast check: every key in the body is
    followed by one ``:``, and every ``:`` in the body is such a separator or a character of a
    string; ``doc`` re-serialised has the same count unless a key (with its value) was dropped.
    Only ``\\u003a`` (an escaped colon) could hide a duplicate from that count, so its presence —
    or an unequal count — sends the body through the exact, slower check.

    Faster still, and first: a body byte for byte equal to ``doc`` re-serialised (compact JSON,
    as orjson, Jackson and most SDKs send it) has no duplicate — orjson never writes a key twice
    in one object, so the body cannot hold one either; counting ``:`` in both (~4 µs a 2 KB
    record) and the scan for ``\\u003`` (~1 µs) are then skipped."""
    try:
        again = orjson.dumps(doc)
    except TypeError:  # nesting deeper than orjson writes (255)
        again = None
    if again is not None:
        if again == body:
            return None  # orjson never writes ``\\u003a``: no escaped colon either
        if b"\\u003" not in body and body.count(b":") == again.count(b":"):
            return None
    try:
        json.loads(body.decode("utf-8-sig"), object_pairs_hook=_unique_pairs)
    except _Duplicate as dup:
        return dup.key
    except RecursionError:  # nesting orjson accepts but the stdlib parser cannot follow
        return None
    return None


def _has_nul(doc: Any) -> bool:
    """Whether any string or object key in ``doc`` holds NUL. Iterative: orjson accepts nesting
    1024 deep, past Python's recursion limit (a RecursionError would be a 500)."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if "\x00" in node:
                return True
        elif type(node) is list:
            stack.extend(node)
        elif type(node) is dict:
            if any("\x00" in k for k in node):
                return True
            stack.extend(node.values())
    return False


# --------------------------------------------------------------------------- the fast path


def fast(handler: Handler) -> Handler:
    """Mark ``handler`` as one :class:`FastUploads` may call directly for its route."""
    handler.__dict__["imsp_fast"] = True
    return handler


class FastUploads:
    """ASGI middleware: ``POST`` to an upload service goes straight to its handler.

    Calling the handler skips routing through ~20 routes and FastAPI's dependency machinery —
    about a fifth of the CPU time of a single-record upload. The table of shortcuts is derived
    from the app's routes at the first request: only a ``POST`` route whose endpoint is marked
    :func:`fast` *and that has no dependencies* (route-level, router-level or in its signature)
    is shortcut. A ``Depends`` added to an upload route therefore takes that route off the fast
    path — it is never silently skipped. Errors take the one shape (``ImspError`` →
    ``web.error_response``); anything unexpected still reaches the app's error handler (50000).
    """

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self._table: dict[str, Handler] | None = None

    @staticmethod
    def shortcuts(routes: list[BaseRoute]) -> dict[str, Handler]:
        """Path → handler for every route the fast path may shortcut (see the class)."""
        table: dict[str, Handler] = {}
        seen: set[str] = set()
        for route in routes:
            if not isinstance(route, APIRoute) or "POST" not in (route.methods or ()):
                continue
            if route.path in seen:  # routing takes the first match; so does the fast path
                continue
            seen.add(route.path)
            if (
                route.methods == {"POST"}
                and getattr(route.endpoint, "imsp_fast", False)
                and not route.dependant.dependencies
                and not route.dependencies
                and "{" not in route.path
            ):
                table[route.path] = route.endpoint
        return table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            table = self._table
            if table is None:
                table = self._table = self.shortcuts(self.routes)
            handler = table.get(scope["path"])
            if handler is not None:
                try:
                    response = await handler(Request(scope, receive))
                except ImspError as exc:
                    response = error_response(exc.code, exc.msg, exc.data, exc.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
