"""The composition root: ``create_exchange_app`` (port 8888), ``create_portal_app`` (port 8091) and
``create_health_app`` (the background worker's optional health port).

Each takes its ``Settings`` explicitly (no import-time configuration) and, for tests, an injectable
``Clock`` and ``Database``. This module (with ``imsp.server`` and ``imsp.cli``) is the only place that
wires domains to the web; domains never import each other's ``api`` or the portal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from imsp import __version__
from imsp.clock import Clock, SystemClock
from imsp.config import Settings
from imsp.metrics import AppMetrics, install_metrics
from imsp.shared_state import SharedState, open_state
from imsp.storage.db import Database
from imsp.web import (
    AppContext,
    JsonResponse,
    close_at_shutdown,
    install_error_handlers,
    install_healthz,
)

if TYPE_CHECKING:
    from imsp.supervision.meters import WorkerMeters

#: Background work an app runs while it serves (started and stopped by its lifespan).
Job = Callable[[AppContext, asyncio.Event], Coroutine[Any, Any, None]]


async def _mailer(c: AppContext, stop: asyncio.Event) -> None:
    from imsp.notify.mail import run_mailer

    await run_mailer(c.db, cfg=c.settings.smtp, clock=c.clock, stop=stop)


def _base_app(
    *,
    title: str,
    service: str,
    settings: Settings,
    clock: Clock | None,
    db: Database | None,
    docs: bool,
    jobs: Sequence[Job] = (),
) -> FastAPI:
    owns_db = db is None
    database = db or Database(settings)
    # Shared state (rate limits, sign-in delays, revocations, locks): Redis when
    # IMSP_REDIS_URL is set, else this process's memory — chosen here, once.
    shared: SharedState = open_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await shared.start()
        stop = asyncio.Event()
        running = [asyncio.create_task(job(app.state.ctx, stop)) for job in jobs]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*running, return_exceptions=True)
            await shared.close()
            if owns_db:
                await database.dispose()

    app = FastAPI(
        title=title,
        version=__version__,
        lifespan=lifespan,
        default_response_class=JsonResponse,
        # No /docs: Swagger UI loads its scripts from a CDN, which the health private network
        # does not have. The contract is /openapi.json and the published spec (/spec on the
        # portal, docs/standard/).
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.ctx = AppContext(
        settings=settings,
        db=database,
        clock=clock or SystemClock(),
        service=service,
        shared=shared,
    )
    install_error_handlers(app)
    install_healthz(app)
    install_metrics(app, settings, service)
    return app


def create_exchange_app(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> FastAPI:
    """数据交换服务: token service, the upload services (one per dataset), the published standard."""
    from imsp.acceptance.api import install as install_acceptance
    from imsp.exchange.api import install as install_exchange

    app = _base_app(
        title="河北省互联网医疗服务监管平台 — 数据交换服务",
        service="exchange",
        settings=settings,
        clock=clock,
        db=db,
        docs=True,
    )
    install_exchange(app)
    if settings.supervision.reference_warnings:
        # receipts warn (-95) about references to records not uploaded yet; one query per batch
        app.state.reference_check = _reference_check(app)
    install_acceptance(app)
    return app


def _reference_check(app: FastAPI) -> Any:
    """The receipts' reference lookup of the app's database, behind this process's cache of
    references known to exist; on PostgreSQL its own small pool, closed when the app shuts
    down."""
    from imsp.supervision.references import KnownReferences, PgReferenceCheck, SqlReferenceCheck

    c: AppContext = app.state.ctx
    known = KnownReferences(ttl=c.settings.supervision.reference_cache_seconds)
    if c.db.dialect != "postgresql":
        return SqlReferenceCheck(c.db.engine, known)
    check = PgReferenceCheck(
        c.settings.sqlalchemy_url, pgbouncer=c.settings.database_pgbouncer, known=known
    )
    close_at_shutdown(app, check.close)
    return check


def create_portal_app(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> FastAPI:
    """资质管理系统 and the regulator's portal: server-rendered pages, no external assets."""
    from imsp.portal.pages import install as install_portal

    app = _base_app(
        title="河北省互联网医疗服务监管平台 — 资质管理系统",
        service="portal",
        settings=settings,
        clock=clock,
        db=db,
        docs=False,
        # notifications mailed through the operator's relay, only when one is configured
        jobs=[_mailer] if settings.smtp.enabled else [],
    )
    install_portal(app)
    return app


def create_health_app(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> FastAPI:
    """The background worker's optional health port: ``/healthz``, ``/readyz`` and ``/metrics``
    (the worker's meters, ``app.state.worker_meters``, passed to the worker by ``imsp.server``)."""
    app = _base_app(
        title="河北省互联网医疗服务监管平台 — 后台任务",
        service="worker",
        settings=settings,
        clock=clock,
        db=db,
        docs=False,
    )
    app.state.worker_meters = install_worker_meters(app, queue=True)
    return app


def install_worker_meters(app: FastAPI, *, queue: bool) -> WorkerMeters | None:
    """The supervision worker's meters on ``app``'s ``/metrics`` (``None`` when metrics are off):
    its counters, the pending checks sampled at scrape time and, with ``queue``, the change
    feed's depth (the exchange app samples that one itself)."""
    from imsp.exchange.meters import queue_sampler
    from imsp.supervision.meters import WorkerMeters, pending_sampler

    metrics: AppMetrics | None = app.state.metrics
    if metrics is None:
        return None
    c: AppContext = app.state.ctx
    if queue:
        metrics.samplers.append(queue_sampler(c.db, c.clock))
    metrics.samplers.append(pending_sampler(c.db, c.clock))
    return WorkerMeters(metrics.registry)
