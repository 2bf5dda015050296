"""HTTP edge of the data exchange service (port 8888): token service, 16 upload services, the
published standard (JSON Schemas and code tables), and the OpenAPI document.

Upload request handling, in this order (each refusal is logged in ``exchange_log`` with its code):

1. token from the ``accessToken`` header (or ``Authorization: Bearer``) — 40101/40102/40103, 429;
2. query flags ``dryRun`` / ``atomic`` (``true``/``false``/``1``/``0``) — 40001;
3. ``Content-Type: application/json`` (charset, if given, must be UTF-8) — 41500;
4. the body, read as a stream (``Content-Length`` or ``Transfer-Encoding: chunked``), refused with
   41300 as soon as it passes ``max_body_bytes`` — also up front from ``Content-Length``;
5. JSON parsing with orjson: invalid UTF-8, NUL characters, malformed JSON or nesting deeper than
   1024 — 40000; a UTF-8 BOM is tolerated (RFC 8259 §8.1); the body must be one object or an array
   of 1..``max_records`` records — 40001 / 41301;
6. per-record checking, storage and the receipt (``ingest``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import DBAPIError
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from imsp.clock import format_datetime
from imsp.errors import (
    BadRequest,
    BodyTooLarge,
    ImspError,
    MalformedJson,
    NotFound,
    TooManyRecords,
    Unavailable,
    UnsupportedMediaType,
)
from imsp.exchange import archive, schemas
from imsp.exchange.ingest import ingest
from imsp.exchange.pg_writer import PgWriter
from imsp.exchange.sqlite_writer import SqliteWriter
from imsp.exchange.tokens import TokenService
from imsp.exchange.writer import LogEntry, Writer, db_failure
from imsp.standard.jsonschema import code_table_json, dataset_schema
from imsp.standard.model import Dataset, Standard, load_standard
from imsp.standard.validate import validator_for
from imsp.web import JsonResponse, client_addr, ctx, error_response

log = logging.getLogger("imsp.exchange")

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0", ""})
_BOM = b"\xef\xbb\xbf"

TOKEN_SERVICE = "accesstoken"  # noqa: S105 - the service name in the exchange log


def tokens_of(request: Request) -> TokenService:
    service: TokenService = request.app.state.tokens
    return service


def writer_of(request: Request) -> Writer:
    writer: Writer = request.app.state.exchange_writer
    return writer


# --------------------------------------------------------------------------- request parsing


def bearer(request: Request) -> str | None:
    headers = request.headers
    token = headers.get("accesstoken")
    if token:
        return token.strip()
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest(f"查询参数 {name} 只能为 true 或 false")


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
        raise BadRequest("客户端在请求体传输完成前断开连接") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_records(body: bytes, max_records: int) -> list[Any]:
    """The records of an upload body (one object or an array of 1..``max_records``)."""
    if body.startswith(_BOM):
        body = body[3:]
    if not body.strip():
        raise MalformedJson("请求体为空")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"请求体不是合法的 UTF-8 JSON：{exc}") from None
    if b"\\u0000" in body and _has_nul(doc):
        raise MalformedJson("请求体含 NUL 字符（\\u0000），不能接收")
    if type(doc) is dict:
        return [doc]
    if type(doc) is not list:
        raise BadRequest("请求体须为 JSON 对象或 JSON 数组")
    if not doc:
        raise BadRequest("请求体为空数组，至少应有 1 条记录")
    if len(doc) > max_records:
        raise TooManyRecords(f"单次上传 {len(doc)} 条，超过上限 {max_records} 条")
    return doc


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


# --------------------------------------------------------------------------- handlers


def _new_entry(request: Request, service: str, dataset: str | None) -> LogEntry:
    return LogEntry(
        id=archive.new_exchange_id(),
        at=ctx(request).clock.now(),
        institution_id=None,
        app_id="",
        service=service,
        dataset=dataset,
        client_addr=client_addr(request),
        size=0,
        sha256=None,
        code=200,
    )


async def _refused(request: Request, entry: LogEntry, exc: ImspError, started: float) -> None:
    entry.code = exc.code
    entry.body = None
    if exc.code == Unavailable.code:
        return  # the database is what failed: nothing to log to
    try:
        await writer_of(request).log(entry, started=started)
    except ImspError:  # the database is down: the refusal itself still goes out
        log.warning("could not log refused request %s (code %s)", entry.id, entry.code)


async def create_token(request: Request) -> Response:
    """授权码获取服务：GET /auth/accesstoken/create?appId=&appSecret="""
    started = time.perf_counter()
    c = ctx(request)
    app_id = request.query_params.get("appId", "").strip()
    secret = request.query_params.get("appSecret", "").strip()
    entry = _new_entry(request, TOKEN_SERVICE, None)
    entry.app_id = app_id[:40].replace("\x00", "\ufffd")  # PostgreSQL text holds no NUL
    try:
        if not app_id or not secret:
            raise BadRequest("缺少查询参数 appId 或 appSecret")
        try:
            async with c.db.session() as session:
                issued = await tokens_of(request).issue(
                    session, app_id=app_id, app_secret=secret, client_addr=entry.client_addr
                )
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None
    except ImspError as exc:
        await _refused(request, entry, exc, started)
        raise
    entry.institution_id = issued.grant.institution_id
    entry.channel = issued.grant.channel
    await writer_of(request).log(entry, started=started)
    body = {
        "code": 200,
        "msg": "成功",
        "data": {
            "accessToken": issued.token,
            "expiresIn": issued.expires_in,
            "expireTime": format_datetime(issued.expires_at),
            "channel": issued.grant.channel,
        },
    }
    return JsonResponse(body, headers={"Cache-Control": "no-store"})


def upload_handler(ds: Dataset) -> Callable[[Request], Awaitable[Response]]:
    async def upload(request: Request) -> Response:
        started = time.perf_counter()
        c = ctx(request)
        limits = c.settings.exchange
        entry = _new_entry(request, ds.service, ds.code)
        try:
            grant = await tokens_of(request).verify(c.db.engine, bearer(request), entry.client_addr)
            entry.institution_id, entry.app_id = grant.institution_id, grant.app_id
            entry.channel = grant.channel
            entry.chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
            entry.dry_run = dry_run = flag(request, "dryRun")
            entry.atomic = atomic = flag(request, "atomic")
            check_media_type(request)
            body = await read_body(request, limits.max_body_bytes, entry)
            entry.sha256 = archive.sha256_hex(body)
            records = parse_records(body, limits.max_records)
            if not dry_run:
                entry.body = body
            receipt = await ingest(
                writer_of(request),
                dataset=ds,
                records=records,
                grant=grant,
                dry_run=dry_run,
                atomic=atomic,
                entry=entry,
                started=started,
            )
        except ImspError as exc:
            await _refused(request, entry, exc, started)
            raise
        data = receipt.data
        data["channel"] = grant.channel
        return JsonResponse({"code": 200, "msg": receipt.msg, "data": data})

    upload.__name__ = f"upload_{ds.code}"
    return upload


class FastUploads:
    """ASGI middleware: ``POST`` to an upload service goes straight to its handler.

    The handlers are the same functions registered as FastAPI routes (which document them in
    ``/openapi.json``); calling them here skips routing through ~20 routes and FastAPI's
    dependency machinery — about a fifth of the CPU time of a single-record upload. Errors take
    the one shape (``ImspError`` → ``web.error_response``); anything unexpected still reaches the
    app's error handler (code 50000).
    """

    def __init__(
        self, app: ASGIApp, handlers: dict[str, Callable[[Request], Awaitable[Response]]]
    ) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.handlers.get(scope["path"])
            if handler is not None:
                try:
                    response = await handler(Request(scope, receive))
                except ImspError as exc:
                    response = error_response(exc.code, exc.msg, exc.data, exc.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- the standard


class _Published:
    """The standard's JSON Schemas and code tables, rendered once per app."""

    def __init__(self, std: Standard, max_records: int) -> None:
        self.std = std
        self.max_records = max_records
        self._cache: dict[str, bytes] = {}

    def schema(self, name: str) -> bytes:
        try:
            ds = self.std.dataset(name)
        except KeyError:
            raise NotFound(f"数据集 {name} 不存在") from None
        key = "ds:" + ds.code
        if key not in self._cache:
            self._cache[key] = orjson.dumps(
                dataset_schema(ds, self.std, max_items=self.max_records)
            )
        return self._cache[key]

    def table(self, name: str) -> bytes:
        table = self.std.tables.get(name)
        if table is None:
            raise NotFound(f"代码表 {name} 不存在")
        key = "t:" + name
        if key not in self._cache:
            self._cache[key] = orjson.dumps(code_table_json(table))
        return self._cache[key]


def _json_bytes(content: bytes) -> Response:
    return Response(content, media_type="application/json")


# --------------------------------------------------------------------------- installing

_settled = False


def settle(std: Standard) -> None:
    """Once per process, at start-up: compile every validator, then move everything alive into
    the garbage collector's permanent generation (``gc.freeze``). The standard's code tables and
    compiled validators are ~170,000 objects that live as long as the process; without this every
    full collection walks them again — a 30-60 ms pause that lands on whichever requests are in
    flight (the p99 of ``docs/performance.md``)."""
    global _settled
    if _settled:
        return
    _settled = True
    for ds in std.ordered():
        validator_for(ds)
    gc.collect()
    gc.freeze()


def _upload_doc(ds: Dataset, max_records: int) -> dict[str, Any]:
    name = schemas.component_name(ds)
    return {
        "parameters": [
            {
                "name": "accessToken",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "访问令牌（也可用 Authorization: Bearer <令牌>）",
            },
            {
                "name": "dryRun",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": "true：只校验不入库（逐条 msgCode 202）",
            },
            {
                "name": "atomic",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": "true：批内任一记录失败则整批不入库（其余记录 msgCode -91）",
            },
        ],
        "requestBody": {
            "required": True,
            "description": f"一条记录（JSON 对象）或 1..{max_records} 条记录的 JSON 数组，UTF-8",
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}Upload"}}
            },
        },
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": text}
    for status, text in (
        (400, "40000 请求体不是合法的 JSON；40001 请求参数错误"),
        (401, "40101 缺少令牌；40102 令牌无效；40103 令牌过期（重新获取令牌后重发）"),
        (413, "41300 请求体过大；41301 记录数超过上限"),
        (415, "41500 Content-Type 必须为 application/json"),
        (429, "42900 请求过于频繁（见 Retry-After）"),
        (503, "50300 服务暂不可用"),
    )
}


def install(app: FastAPI) -> None:
    """Register the exchange routes on ``app`` (``create_exchange_app``)."""
    c = app.state.ctx
    limits = c.settings.exchange
    std = load_standard()
    app.state.tokens = TokenService(limits, c.clock)
    writer: Writer = (
        PgWriter(c.settings.sqlalchemy_url) if c.db.dialect == "postgresql" else SqliteWriter(c.db)
    )
    app.state.exchange_writer = writer
    parent = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with parent(a) as state:
            settle(std)
            try:
                yield state
            finally:
                await writer.close()

    app.router.lifespan_context = lifespan
    published = _Published(std, limits.max_records)

    app.add_api_route(
        "/auth/accesstoken/create",
        create_token,
        methods=["GET"],
        tags=["授权码"],
        summary="授权码获取服务",
        description="用平台分配的 appId/appSecret 换取访问令牌（有效期默认 1 天）。"
        "新令牌不会使旧令牌提前失效；连续失败将被限流（429）。",
        response_model=None,
        responses={
            200: {"model": schemas.TokenResponse, "description": "成功"},
            400: _ERRORS[400],
            401: {
                "model": schemas.ErrorBody,
                "description": "40002 appId 不存在；40004 appSecret 不匹配；40005 凭据已停用",
            },
            429: _ERRORS[429],
        },
        openapi_extra={
            "parameters": [
                {"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                for n in ("appId", "appSecret")
            ]
        },
    )
    uploads = {ds.path: upload_handler(ds) for ds in std.ordered()}
    app.add_middleware(FastUploads, handlers=uploads)
    for ds in std.ordered():
        app.add_api_route(
            ds.path,
            uploads[ds.path],
            methods=["POST"],
            tags=["上传服务"],
            summary=f"{ds.name}上传服务",
            description=ds.description,
            operation_id=ds.service,
            response_model=None,
            responses={
                200: {"model": schemas.UploadResponse, "description": "回执（逐条结果）"},
                **_ERRORS,
            },
            openapi_extra=_upload_doc(ds, limits.max_records),
        )

    async def dataset_schema_json(request: Request) -> Response:
        return _json_bytes(published.schema(request.path_params["name"]))

    async def code_table(request: Request) -> Response:
        return _json_bytes(published.table(request.path_params["table"]))

    app.add_api_route(
        "/standard/v1/{name}.schema.json",
        dataset_schema_json,
        methods=["GET"],
        tags=["数据标准"],
        summary="数据集的 JSON Schema（2020-12），name 为数据集代码或服务名",
        response_model=None,
        openapi_extra={
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        },
    )
    app.add_api_route(
        "/standard/v1/codes/{table}.json",
        code_table,
        methods=["GET"],
        tags=["数据标准"],
        summary="代码表（值域）",
        response_model=None,
        openapi_extra={
            "parameters": [
                {"name": "table", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        },
    )
    if limits.bench_echo:

        async def echo(request: Request) -> Response:
            doc = orjson.loads(await request.body())
            return JsonResponse({"code": 200, "msg": "成功", "data": {"n": len(doc)}})

        app.add_api_route("/bench/echo", echo, methods=["POST"], include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description="数据交换服务：授权码获取服务与 16 个上传服务（数据标准 V1.0）。",
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components.update(schemas.dataset_components(std, max_records=limits.max_records))
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
