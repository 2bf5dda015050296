"""Prometheus metrics of each HTTP server: ``/metrics`` in the text exposition format.

Every app (exchange, portal) owns an :class:`AppMetrics`: a registry of its own, the generic
request counter and latency histogram kept by :class:`HttpMetrics` (an ASGI middleware, by route
*template*, never by raw path), the domain's meters (``imsp.exchange.meters``) and *samplers*:
cheap database reads (the supervision queue's depth) taken when a scrape arrives, at most once per
``IMSP_METRICS__SAMPLE_SECONDS`` and within ``IMSP_METRICS__SAMPLE_TIMEOUT_SECONDS``.

Several worker processes on one port: when ``PROMETHEUS_MULTIPROC_DIR`` is set before the process
imports ``prometheus_client``, counters and histograms are written to memory-mapped files in that
directory and a scrape — answered by whichever worker the kernel hands it to — sums every
worker's files (``prometheus_client.multiprocess``). The directory must be emptied before the
workers start (:func:`prepare_multiprocess_dir`). Process metrics (``process_*``) then describe
only the worker that answered the scrape; samplers are read by that worker too (they are the
same for every worker).

Who may read: only peers in ``IMSP_METRICS__ALLOW`` (default loopback), and when the request
carries ``X-Forwarded-For``/``Forwarded`` every address in it must be allowed as well — so a load
balancer on the same host does not open ``/metrics`` to everyone behind it. Labels never carry
patient data, appIds, tokens or institutions (see ``docs/performance.md`` § metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

from fastapi import FastAPI, Request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imsp import __version__
from imsp.config import Settings
from imsp.errors import Forbidden
from imsp.logs import ACCESS, access
from imsp.web import IPNetwork, error_response

log = logging.getLogger("imsp.metrics")

#: Latency buckets (seconds): most requests take 1–500 ms; finer where uploads land.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# No ``*_created`` series: they double the exposition and Prometheus does not need them for
# counters that start at process start (a library-wide switch, the same in every process).
disable_created_metrics()  # type: ignore[no-untyped-call]

#: A sampler reads something cheap from the database and returns its gauge families.
Sampler = Callable[[], Awaitable[list[Metric]]]


def multiprocess() -> bool:
    """Whether this process writes its metrics to ``PROMETHEUS_MULTIPROC_DIR`` (decided when
    ``prometheus_client`` was imported, as the library does)."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


@contextlib.contextmanager
def multiprocess_mode(path: str) -> Iterator[None]:
    """Within the block, this process (and the children it forks) writes its metrics to
    ``path`` (``PROMETHEUS_MULTIPROC_DIR``), although ``prometheus_client`` was imported without
    it; afterwards, its own memory again.

    The library chooses its value class once, when imported — and ``imsp.cli`` imports it long
    before ``imsp.prefork`` makes a temporary directory for ``--workers N``: without the switch
    each child counted in its own memory and a scrape showed whichever child answered it. The
    apps (and so every metric) are built in the children, after the switch."""
    from prometheus_client import values

    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir(path: Path) -> None:
    """Create ``path`` and remove files of earlier runs (a parent calls this before it starts
    the workers; stale files would add a dead worker's counts to every scrape)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


class AppMetrics:
    """The metrics of one app (``app.state.metrics``)."""

    def __init__(self, server: str, settings: Settings) -> None:
        self.server = server
        self.settings = settings.metrics
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "imsp_http_requests",
            "HTTP 请求数（按服务、路由模板、方法、状态类别）",
            ("server", "route", "method", "status"),
            registry=self.registry,
        )
        self.seconds = Histogram(
            "imsp_http_request_seconds",
            "HTTP 请求处理时间（秒，按服务、路由模板）",
            ("server", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.samplers: list[Sampler] = []
        self._sampled: list[Metric] = []
        self._sampled_at = -1e9
        self._sampling = asyncio.Lock()
        self._build = GaugeMetricFamily(
            "imsp_build_info", "IMSP 版本与服务", labels=("version", "server")
        )
        self._build.add_metric((__version__, server), 1)
        if not multiprocess():
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # ----------------------------------------------------------------------- scraping

    async def _sample(self) -> list[Metric]:
        now = time.monotonic()
        if now - self._sampled_at < self.settings.sample_seconds:
            return self._sampled
        async with self._sampling:  # concurrent scrapes share one sampling
            if time.monotonic() - self._sampled_at < self.settings.sample_seconds:
                return self._sampled
            families: list[Metric] = []
            ok = 1.0
            for sampler in self.samplers:
                try:
                    async with asyncio.timeout(self.settings.sample_timeout_seconds):
                        families.extend(await sampler())
                except Exception as exc:  # a slow or absent database must not fail the scrape
                    ok = 0.0
                    log.warning("metrics sampler failed: %s", type(exc).__name__)
            up = GaugeMetricFamily(
                "imsp_metrics_sample_ok", "最近一次数据库指标采样是否成功（1 成功，0 失败或超时）"
            )
            up.add_metric((), ok)
            families.append(up)
            self._sampled, self._sampled_at = families, time.monotonic()
            return families

    async def exposition(self) -> bytes:
        """The text exposition of this app (all workers' counters in multi-process mode)."""
        sampled = await self._sample()
        fixed = [self._build, *sampled]
        if multiprocess():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            ProcessCollector(registry=registry)
        else:
            registry = self.registry
        return generate_latest(_Merged(registry, fixed))


class _Merged:
    """A collector of a registry plus a few ready families (the sampled gauges)."""

    def __init__(self, registry: CollectorRegistry, extra: list[Metric]) -> None:
        self.registry = registry
        self.extra = extra

    def collect(self) -> Iterable[Metric]:
        yield from self.registry.collect()
        yield from self.extra


# --------------------------------------------------------------------------- access control


def _networks(spec: str) -> tuple[IPNetwork, ...]:
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def _forwarded(request: Request) -> list[str]:
    """Every address a proxy said the request came from (``X-Forwarded-For``, ``Forwarded``)."""
    hops = [h for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for value in request.headers.getlist("forwarded"):
        for part in value.replace(",", ";").split(";"):
            name, _, addr = part.strip().partition("=")
            if name.lower() == "for":
                addr = addr.strip('"')
                if addr.startswith("["):
                    addr = addr[1:].split("]", 1)[0]
                elif addr.count(":") == 1:
                    addr = addr.split(":", 1)[0]
                hops.append(addr)
    return hops


def may_read(request: Request, allow: tuple[IPNetwork, ...]) -> bool:
    """Whether the peer and every forwarded address are in ``allow`` (an unparsable one is not)."""
    peer = request.client.host if request.client else ""
    for text in (peer, *_forwarded(request)):
        try:
            ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
        except ValueError:
            return False
        if not any(ip in n for n in allow):
            return False
    return True


# --------------------------------------------------------------------------- the middleware


class HttpMetrics:
    """ASGI middleware: count and time every HTTP request by route template and status class.

    Routes whose endpoint is marked ``imsp_metered`` (the exchange's upload and token services,
    which keep their own, richer meters) are skipped; so is everything the exchange's fast path
    answers, because that middleware sits outside this one."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.server = metrics.server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            if not getattr(getattr(route, "endpoint", None), "imsp_metered", False):
                template = getattr(route, "path", None) or "<unmatched>"
                method = scope["method"]
                seconds = time.perf_counter() - started
                m = self.metrics
                m.requests.labels(self.server, template, method, f"{status // 100}xx").inc()
                m.seconds.labels(self.server, template).observe(seconds)
                if ACCESS.isEnabledFor(logging.INFO):  # the template, never the path or query
                    client = scope.get("client")
                    access(
                        f"{method} {template} {status}",
                        {
                            "server": self.server,
                            "method": method,
                            "route": template,
                            "status": status,
                            "client": client[0] if client else "",
                            "ms": round(seconds * 1000, 2),
                        },
                    )


def metered(endpoint: Callable[..., object]) -> None:
    """Mark ``endpoint`` as keeping its own meters (:class:`HttpMetrics` skips it)."""
    endpoint.__dict__["imsp_metered"] = True


def install_metrics(app: FastAPI, settings: Settings, server: str) -> AppMetrics | None:
    """Add the middleware and ``GET /metrics`` to ``app`` (unless metrics are disabled)."""
    if not settings.metrics.enabled:
        app.state.metrics = None
        return None
    metrics = app.state.metrics = AppMetrics(server, settings)
    allow = _networks(settings.metrics.allow)
    app.add_middleware(HttpMetrics, metrics=metrics)

    @app.get("/metrics", tags=["运维"], summary="Prometheus 指标", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        if not may_read(request, allow):
            return error_response(Forbidden.code, "仅允许监控网络读取指标（IMSP_METRICS__ALLOW）")
        body = await metrics.exposition()
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return metrics
