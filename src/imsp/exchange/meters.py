"""The exchange's own meters: upload and token requests, records by outcome, rejected records by
issue code, and the supervision queue sampled at scrape time (``imsp.metrics``).

The upload path is the hot one, so each upload service gets an :class:`UploadMeter` with its
label children bound once when the app is built: a request costs two dictionary-free metric
updates (its code's counter, its latency histogram) plus one pass over the receipt's results.

Labels are closed sets — upload service, gateway code, dataset, outcome, issue code (the
standard's catalogue), token refusal reason — so the number of series is bounded by the
standard, never by traffic. Institutions are deliberately not a label (hundreds of hospitals ×
datasets × outcomes would be tens of thousands of series); per-institution figures are the
supervision rollups' (``quality_day``).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import text

from imsp.clock import Clock
from imsp.exchange import changes
from imsp.metrics import BUCKETS
from imsp.standard.model import Dataset
from imsp.storage.db import Database

#: Record outcomes (a record's ``msgCode`` in the receipt): stored (200/201) without or with
#: warnings, passed a dry run (202), not stored because its atomic batch failed (-91), rejected.
OUTCOMES: Final = ("accepted", "warned", "dry_run", "not_stored", "rejected")

#: The request code metered for an upload that ended without a receipt: the client closed the
#: connection before its body was complete, or the request was cancelled (a shutdown past its
#: grace period) — nginx's "client closed request". No client is answered with it; its
#: ``exchange_log`` row carries the gateway code 49900 (客户端中断, ``errors.ClientDisconnected``),
#: the same outcome. The records of such a request are counted only if its write committed (by
#: what the write stored), never as accepted when they were not stored.
CANCELLED: Final = 499

#: Why a token request was refused (its gateway code), as a stable label.
TOKEN_REFUSALS: Final[dict[int, str]] = {
    40001: "bad_request",
    40002: "unknown_app_id",
    40004: "wrong_secret",
    40005: "revoked",
    40007: "repeated_parameter",
    42900: "rate_limited",
    50300: "unavailable",
}

#: Above this many waiting changes the queue depth is estimated from the id range instead of
#: counted (a scrape must stay cheap while a backlog of millions drains).
COUNT_CAP: Final = 100_000


class ExchangeMeters:
    """The exchange app's counters and histograms (on the app's metrics registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "imsp_exchange_requests",
            "数据交换服务请求数（按服务与应答代码 code；499：客户端中途断开或请求被取消，未收到回执）",
            ("service", "code"),
            registry=registry,
        )
        self.seconds = Histogram(
            "imsp_exchange_request_seconds",
            "数据交换服务请求处理时间（秒，按服务）",
            ("service",),
            buckets=BUCKETS,
            registry=registry,
        )
        self.records = Counter(
            "imsp_exchange_records",
            "上传的记录数（按数据集与结果：accepted/warned/dry_run/not_stored/rejected）",
            ("dataset", "outcome"),
            registry=registry,
        )
        self.rejected = Counter(
            "imsp_exchange_rejected_records",
            "被拒收的记录数（按数据集与问题代码；一条记录的每种问题代码各计一次）",
            ("dataset", "issue"),
            registry=registry,
        )
        self.tokens_issued = Counter(
            "imsp_exchange_tokens_issued", "签发的访问令牌数", (), registry=registry
        )
        self.tokens_refused = Counter(
            "imsp_exchange_tokens_refused",
            "拒绝签发访问令牌的次数（按原因）",
            ("reason",),
            registry=registry,
        )

    def service(self, service: str) -> ServiceMeter:
        return ServiceMeter(self, service)

    def upload(self, ds: Dataset) -> UploadMeter:
        return UploadMeter(self, ds)

    def token_refused(self, code: int) -> None:
        self.tokens_refused.labels(TOKEN_REFUSALS.get(code, "other")).inc()


class ServiceMeter:
    """Requests and latency of one service, its children bound once."""

    __slots__ = ("_codes", "_requests", "_service", "seconds")

    def __init__(self, meters: ExchangeMeters, service: str) -> None:
        self._requests = meters.requests
        self._service = service
        self._codes: dict[int, Counter] = {200: meters.requests.labels(service, "200")}
        self.seconds = meters.seconds.labels(service)

    def request(self, code: int, seconds: float) -> None:
        child = self._codes.get(code)
        if child is None:  # a gateway code from the catalogue: a closed set
            child = self._codes[code] = self._requests.labels(self._service, str(code))
        child.inc()
        self.seconds.observe(seconds)


class UploadMeter(ServiceMeter):
    """One upload service: its requests plus its records by outcome and issue code."""

    __slots__ = (
        "_dataset",
        "_issues",
        "_rejected",
        "accepted",
        "dry",
        "rejected",
        "unstored",
        "warned",
    )

    def __init__(self, meters: ExchangeMeters, ds: Dataset) -> None:
        super().__init__(meters, ds.service)
        self._dataset = ds.code
        self._rejected = meters.rejected
        self._issues: dict[str, Counter] = {}
        by = {o: meters.records.labels(ds.code, o) for o in OUTCOMES}
        self.accepted: Counter = by["accepted"]
        self.warned: Counter = by["warned"]
        self.dry: Counter = by["dry_run"]
        self.unstored: Counter = by["not_stored"]
        self.rejected: Counter = by["rejected"]

    def receipt(self, results: list[dict[str, Any]]) -> None:
        """Count the records of one receipt by outcome, and the rejected ones by issue code."""
        accepted = warned = dry = unstored = 0
        rejected: list[dict[str, Any]] = []
        for r in results:
            code = r["msgCode"]
            if code == 200 or code == 201:
                if r["warnings"]:
                    warned += 1
                else:
                    accepted += 1
            elif code == 202:
                dry += 1
            elif code == -91:
                unstored += 1
            else:
                rejected.append(r)
        if accepted:
            self.accepted.inc(accepted)
        if warned:
            self.warned.inc(warned)
        if dry:
            self.dry.inc(dry)
        if unstored:
            self.unstored.inc(unstored)
        if rejected:
            self.rejected.inc(len(rejected))
            for r in rejected:
                for issue in {e["code"] for e in r["errors"]}:
                    if issue == "more_issues":
                        continue
                    child = self._issues.get(issue)
                    if child is None:  # the standard's issue catalogue: a closed set
                        child = self._issues[issue] = self._rejected.labels(self._dataset, issue)
                    child.inc()


def queue_sampler(db: Database, clock: Clock) -> Any:
    """A sampler (``imsp.metrics.Sampler``) of the supervision queue: the change feed's depth and
    the age of its oldest change."""

    async def sample() -> list[Metric]:
        async with db.session() as session:
            if db.dialect == "postgresql":  # never let a scrape hold a connection long
                await session.execute(text("SET LOCAL statement_timeout = 1000"))
            depth, oldest = await changes.backlog(session, cap=COUNT_CAP)
        gauge = GaugeMetricFamily(
            "imsp_supervision_queue_depth",
            f"监管队列（变更流 record_change）中等待的变更数；超过 {COUNT_CAP} 时按编号范围估计",
        )
        gauge.add_metric((), depth)
        age = GaugeMetricFamily(
            "imsp_supervision_queue_oldest_seconds", "监管队列中最早一条变更已等待的秒数（空为 0）"
        )
        waited = 0.0
        if oldest is not None:
            stored = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            waited = max(0.0, (clock.now() - stored).total_seconds())
        age.add_metric((), waited)
        return [gauge, age]

    return sample
