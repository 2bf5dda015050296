"""The composition root: ``create_exchange_app`` (port 8888) and ``create_portal_app`` (port 8091).

Each takes its ``Settings`` explicitly (no import-time configuration) and, for tests, an injectable
``Clock`` and ``Database``. This module (with ``imsp.server`` and ``imsp.cli``) is the only place that
wires domains to the web; domains never import each other's ``api`` or the portal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI

from imsp import __version__
from imsp.clock import Clock, SystemClock
from imsp.config import Settings
from imsp.storage.db import Database
from imsp.web import AppContext, JsonResponse, install_error_handlers, install_healthz


def _base_app(
    *,
    title: str,
    service: str,
    settings: Settings,
    clock: Clock | None,
    db: Database | None,
    docs: bool,
) -> FastAPI:
    owns_db = db is None
    database = db or Database(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
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
        settings=settings, db=database, clock=clock or SystemClock(), service=service
    )
    install_error_handlers(app)
    install_healthz(app)
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
    """The receipts' reference lookup of the app's database; on PostgreSQL its own small pool,
    closed when the app shuts down."""
    from imsp.supervision.references import PgReferenceCheck, missing_references

    c: AppContext = app.state.ctx
    if c.db.dialect != "postgresql":
        return partial(missing_references, c.db.engine)
    check = PgReferenceCheck(c.settings.sqlalchemy_url)
    parent = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with parent(a) as state:
            try:
                yield state
            finally:
                await check.close()

    app.router.lifespan_context = lifespan
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
    )
    install_portal(app)
    return app
