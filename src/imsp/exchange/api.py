"""Handlers of the data exchange service (port 8888): the token service, one upload service per dataset
and the published standard (JSON Schemas and code tables), and ``install`` which registers them.

Parsing and limits are the edge's (``exchange.edge``, which also holds the ASGI fast path for
uploads); the OpenAPI document is ``exchange.openapi``'s. Each handler parses with the edge, calls
one use case (``tokens``, ``ingest``) and shapes the answer; every request, refused or not, is
written to ``exchange_log`` unless the database itself is what failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from logging import INFO

import orjson
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response

from imsp.clock import format_datetime
from imsp.errors import (
    BadRequest,
    ClientDisconnected,
    ImspError,
    NotFound,
    RepeatedParameter,
    Unavailable,
)
from imsp.exchange import archive, openapi
from imsp.exchange.edge import (
    FastUploads,
    Handler,
    bearer,
    check_media_type,
    fast,
    flag,
    only_parameters,
    parse_records,
    read_body,
    single,
)
from imsp.exchange.ingest import Receipt, ingest
from imsp.exchange.meters import (
    CANCELLED,
    ExchangeMeters,
    ServiceMeter,
    UploadMeter,
    queue_sampler,
)
from imsp.exchange.tokens import TokenService
from imsp.exchange.writer import LogEntry, Writer, db_failure
from imsp.logs import ACCESS, access
from imsp.metrics import AppMetrics, metered
from imsp.standard.jsonschema import code_table_json, dataset_schema
from imsp.standard.model import Dataset, Standard, load_standard
from imsp.web import AppContext, JsonResponse, client_addr, close_at_shutdown, ctx

log = logging.getLogger("imsp.exchange")

TOKEN_SERVICE = "accesstoken"  # noqa: S105 - the service name in the exchange log
TOKEN_PARAMETERS = frozenset({"appId", "appSecret"})
UPLOAD_PARAMETERS = frozenset({"dryRun", "atomic"})


def tokens_of(request: Request) -> TokenService:
    service: TokenService = request.app.state.tokens
    return service


def writer_of(request: Request) -> Writer:
    writer: Writer = request.app.state.exchange_writer
    return writer


def _open_writer(c: AppContext) -> Writer:
    """The storage writer of the app's database — the one place that knows there are two."""
    if c.db.dialect == "postgresql":
        from imsp.exchange.pg_writer import PgWriter

        return PgWriter(c.settings.sqlalchemy_url, pgbouncer=c.settings.database_pgbouncer)
    from imsp.exchange.sqlite_writer import SqliteWriter

    return SqliteWriter(c.db)


# --------------------------------------------------------------------------- handlers


def _new_entry(request: Request, service: str, dataset: str | None) -> LogEntry:
    now = ctx(request).clock.now()
    return LogEntry(
        id=archive.new_exchange_id(now),  # carries ``at``: lookups by id prune partitions
        at=now,
        institution_id=None,
        app_id="",
        service=service,
        dataset=dataset,
        client_addr=client_addr(request),
        size=0,
        sha256=None,
        code=200,
    )


async def _refused(request: Request, entry: LogEntry, code: int, started: float) -> None:
    """Log a request answered with the error ``code`` (its body is not archived)."""
    entry.code = code
    entry.body = None
    if code == Unavailable.code:
        return  # the database is what failed: nothing to log to
    try:
        await writer_of(request).log(entry, started=started)
    except ImspError:  # the database is down: the refusal itself still goes out
        log.warning("could not log refused request %s (code %s)", entry.id, entry.code)


def _done(meter: ServiceMeter | None, entry: LogEntry, code: int, started: float) -> None:
    """Meter one exchange request and write its access line (``imsp.logs``): the exchange id is
    the receipt's ``exchangeId`` and the ``exchange_log`` row's id."""
    seconds = time.perf_counter() - started
    if meter is not None:
        meter.request(code, seconds)
    if ACCESS.isEnabledFor(INFO):
        access(
            f"{entry.service} {code}",
            {
                "exchange_id": str(entry.id),
                "service": entry.service,
                "dataset": entry.dataset,
                "app_id": entry.app_id,
                "channel": entry.channel,
                "client": entry.client_addr,
                "code": code,
                "ms": round(seconds * 1000, 2),
                "bytes": entry.size,
                "total": entry.total,
                "success": entry.success,
                "fail": entry.fail,
                "dry_run": entry.dry_run,
            },
        )


async def create_token(request: Request) -> Response:
    """授权码获取服务：GET /auth/accesstoken/create?appId=&appSecret="""
    started = time.perf_counter()
    c = ctx(request)
    params = request.query_params
    entry = _new_entry(request, TOKEN_SERVICE, None)
    meters: ExchangeMeters | None = request.app.state.exchange_meters
    meter = request.app.state.token_meter
    try:
        only_parameters(request, TOKEN_PARAMETERS)
        app_id = (
            single(params.getlist("appId"), "查询参数 appId", RepeatedParameter) or ""
        ).strip()
        entry.app_id = app_id[:40].replace("\x00", "\ufffd")  # PostgreSQL text holds no NUL
        secret = single(params.getlist("appSecret"), "查询参数 appSecret", RepeatedParameter)
        secret = (secret or "").strip()
        if not app_id or not secret:
            raise BadRequest("缺少查询参数 appId 或 appSecret")
        try:
            async with c.db.session() as session:
                issued = await tokens_of(request).issue(
                    session, app_id=app_id, app_secret=secret, client_addr=entry.client_addr
                )
        except DBAPIError as exc:
            raise db_failure(exc, None, connection_lost=exc.connection_invalidated) from None
        except PoolTimeout as exc:
            raise db_failure(exc, None, connection_lost=True) from None
    except ImspError as exc:
        await _refused(request, entry, exc.code, started)
        if meters is not None:
            meters.token_refused(exc.code)
        _done(meter, entry, exc.code, started)
        raise
    entry.institution_id = issued.grant.institution_id
    entry.channel = issued.grant.channel
    try:
        await writer_of(request).log(entry, started=started)
    except ImspError as exc:
        _done(meter, entry, exc.code, started)
        raise
    if meters is not None:
        meters.tokens_issued.inc()
    _done(meter, entry, 200, started)
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


def upload_handler(ds: Dataset, meter: UploadMeter | None) -> Handler:
    async def upload(request: Request) -> Response:
        started = time.perf_counter()
        c = ctx(request)
        limits = c.settings.exchange
        entry = _new_entry(request, ds.service, ds.code)
        code = 200
        write: asyncio.Task[Receipt] | None = None
        try:
            grant = await tokens_of(request).verify(c.db.engine, bearer(request), entry.client_addr)
            entry.institution_id, entry.app_id = grant.institution_id, grant.app_id
            only_parameters(request, UPLOAD_PARAMETERS)
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
            # Shielded: a request cancelled while its write is under way (a shutdown past its
            # grace period) lets the write finish, so what it stored is known and counted.
            write = asyncio.ensure_future(
                ingest(
                    writer_of(request),
                    dataset=ds,
                    records=records,
                    grant=grant,
                    dry_run=dry_run,
                    atomic=atomic,
                    entry=entry,
                    started=started,
                    references=getattr(request.app.state, "reference_check", None),
                )
            )
            receipt = await asyncio.shield(write)
        except ImspError as exc:
            code = exc.code
            await _refused(request, entry, code, started)
            if isinstance(exc, ClientDisconnected):
                code = CANCELLED  # logged as 49900 (客户端中断), metered 499: the client went away
            raise
        except asyncio.CancelledError:
            code = CANCELLED
            _settle_later(request.app, entry, write, meter, started)
            raise
        except Exception:  # a bug: the request is still in the exchange log (as 50000)
            code = ImspError.code
            await _refused(request, entry, code, started)
            raise
        finally:
            _done(meter, entry, code, started)
        data = receipt.data
        if meter is not None:
            meter.receipt(data["results"])
        data["channel"] = grant.channel
        return JsonResponse({"code": 200, "msg": receipt.msg, "data": data})

    upload.__name__ = f"upload_{ds.code}"
    metered(upload)
    return fast(upload)


def _settle_later(
    app: FastAPI,
    entry: LogEntry,
    write: asyncio.Task[Receipt] | None,
    meter: UploadMeter | None,
    started: float,
) -> None:
    """A cancelled upload (a shutdown past its grace period) is logged as what its metric says:
    49900 客户端中断, never 200 — the client received no receipt.

    Its write, if begun, goes on (shielded); when it ends, the records it stored are counted and
    its log row (written with the records, code 200) gets the code 49900, keeping the counts of
    what was stored. If no write had begun, or it failed, the request is logged as 49900 with
    nothing stored. The app waits for this before it closes its writer (:func:`install`)."""
    settling: set[asyncio.Future[None]] = app.state.exchange_settling
    writer: Writer = app.state.exchange_writer
    entry.code = ClientDisconnected.code

    async def settle() -> None:
        if write is not None:
            await asyncio.wait([write])
            if not write.cancelled() and write.exception() is None:  # it stored: count, recode
                if meter is not None:
                    meter.receipt(write.result().data["results"])
                try:
                    await writer.recode(entry)
                except ImspError:
                    log.warning("could not mark cancelled request %s", entry.id)
                return
            # nothing stored (the write failed): logged as interrupted below
        entry.body = None
        try:
            await writer.log(entry, started=started)
        except ImspError:  # the database is down: nothing to log to
            log.warning("could not log cancelled request %s", entry.id)

    task = asyncio.ensure_future(settle())
    settling.add(task)
    task.add_done_callback(settling.discard)


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


def install(app: FastAPI) -> None:
    """Register the exchange routes on ``app`` (``create_exchange_app``)."""
    c: AppContext = app.state.ctx
    limits = c.settings.exchange
    std = load_standard()
    app.state.tokens = TokenService(limits, c.clock, c.shared)
    app.state.exchange_writer = _open_writer(c)
    settling: set[asyncio.Future[None]] = set()
    app.state.exchange_settling = settling

    async def close() -> None:  # cancelled uploads are settled and logged, then the writer closes
        while settling:
            await asyncio.gather(*settling, return_exceptions=True)
        await app.state.exchange_writer.close()

    close_at_shutdown(app, close)
    published = _Published(std, limits.max_records)
    metrics: AppMetrics | None = app.state.metrics
    meters = app.state.exchange_meters = (
        ExchangeMeters(metrics.registry) if metrics is not None else None
    )
    app.state.token_meter = meters.service(TOKEN_SERVICE) if meters is not None else None
    if metrics is not None:
        metrics.samplers.append(queue_sampler(c.db, c.clock))
    metered(create_token)

    app.add_api_route(
        "/auth/accesstoken/create",
        create_token,
        methods=["GET"],
        tags=["授权码"],
        summary="授权码获取服务",
        description="用平台分配的 appId/appSecret 换取访问令牌（有效期默认 1 天）。"
        "新令牌不会使旧令牌提前失效；连续失败将被限流（429）。",
        response_model=None,
        responses=openapi.TOKEN_RESPONSES,
        openapi_extra=openapi.TOKEN_PARAMETERS,
    )
    app.add_middleware(FastUploads, routes=app.router.routes)
    for ds in std.ordered():
        app.add_api_route(
            ds.path,
            upload_handler(ds, meters.upload(ds) if meters is not None else None),
            methods=["POST"],
            tags=["上传服务"],
            summary=f"{ds.name}上传服务",
            description=ds.description,
            operation_id=ds.service,
            response_model=None,
            responses=openapi.UPLOAD_RESPONSES,
            openapi_extra=openapi.upload_doc(ds, limits.max_records),
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
        responses=openapi.NOT_FOUND,
        openapi_extra=openapi.path_parameter("name"),
    )
    app.add_api_route(
        "/standard/v1/codes/{table}.json",
        code_table,
        methods=["GET"],
        tags=["数据标准"],
        summary="代码表（值域）",
        response_model=None,
        responses=openapi.NOT_FOUND,
        openapi_extra=openapi.path_parameter("table"),
    )
    if limits.bench_echo:

        async def echo(request: Request) -> Response:
            doc = orjson.loads(await request.body())
            return JsonResponse({"code": 200, "msg": "成功", "data": {"n": len(doc)}})

        app.add_api_route("/bench/echo", echo, methods=["POST"], include_in_schema=False)

    openapi.install(app, std, max_records=limits.max_records)
