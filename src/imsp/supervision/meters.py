"""The supervision worker's meters (``imsp serve worker --health-port P`` → ``/metrics``).

What an operator watching the background jobs needs: is the change feed draining (its depth and
the age of its oldest change, sampled at scrape time by ``imsp.exchange.meters.queue_sampler``),
how many records wait for the other side of a reference (pending checks, and how many of them
are due), how fast rounds go (changes evaluated, a histogram of the round's duration), what the
rules concluded (findings raised, seen again, rectified by a resubmission; records set waiting),
whether the idle chores run, and whether anything fails.

Counters are incremented by :func:`imsp.supervision.worker.run_worker` through
:meth:`WorkerMeters.round` and friends — the worker calls them, it never reads them. Labels are
closed sets (where a round's work came from, an outcome, a stage); institutions, datasets' keys
and people never appear (``docs/performance.md`` § metrics). In multi-process mode
(``PROMETHEUS_MULTIPROC_DIR``) every worker process writes its own files and any one of them
answers the scrape with the sum (``imsp.metrics``).
"""

from __future__ import annotations

import time
from datetime import UTC
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select, text

from imsp.clock import Clock
from imsp.metrics import Sampler
from imsp.storage.db import Database
from imsp.supervision.engine import Stats
from imsp.supervision.models import PendingCheck

#: Round durations (seconds): a claimed batch of a few hundred changes takes 0.05–5 s.
ROUND_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: What the rules concluded on a record (``engine.Stats``): a new finding, an open one seen
#: again, one closed because the record was resubmitted without the problem, a record set
#: waiting for the other side of a reference.
OUTCOMES: Final = ("raised", "updated", "rectified", "pending")
#: Where a round's records came from: the change feed, or pending checks whose grace ended.
Source = Literal["changes", "due"]
#: What failed: a round (its changes stay queued), or the hourly partition maintenance.
Stage = Literal["round", "partitions"]
#: Above this many pending checks the count stops (a scrape must stay cheap).
PENDING_CAP: Final = 100_000


class WorkerMeters:
    """The worker's counters and histograms on an app's registry (``app.state.worker_meters``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.changes = Counter(
            "imsp_supervision_changes",
            "监管后台任务已处理（评估并确认）的变更数",
            (),
            registry=registry,
        )
        self.records = Counter(
            "imsp_supervision_records_evaluated",
            "按规则评估的记录数（按来源：changes 变更流，due 宽限期已到的待查记录）",
            ("source",),
            registry=registry,
        )
        self.outcomes = Counter(
            "imsp_supervision_outcomes",
            "规则评估结果数（按来源与结果：raised 新问题，updated 问题再次出现，"
            "rectified 重新上报后整改，pending 等待关联数据）",
            ("source", "outcome"),
            registry=registry,
        )
        self.seconds = Histogram(
            "imsp_supervision_batch_seconds",
            "一轮变更处理（领取、评估、写入问题并确认）的耗时（秒）",
            (),
            buckets=ROUND_BUCKETS,
            registry=registry,
        )
        self.chores = Counter(
            "imsp_supervision_chores",
            "空闲维护（到期待查、逾期标记、日汇总）的执行次数（按结果：done 已执行，"
            "skipped 另一后台任务进程正在执行）",
            ("result",),
            registry=registry,
        )
        self.errors = Counter(
            "imsp_supervision_errors",
            "后台任务失败次数（按阶段：round 一轮处理，partitions 分区维护；失败的变更会重试）",
            ("stage",),
            registry=registry,
        )
        self.partitions = Counter(
            "imsp_supervision_partitions_created",
            "后台任务预先创建的月分区数",
            (),
            registry=registry,
        )
        # Unix time of the last round that finished (with or without work): an alert on
        # ``time() - imsp_supervision_last_round_timestamp_seconds`` finds a stuck worker.
        self.last_round = Gauge(
            "imsp_supervision_last_round_timestamp_seconds",
            "最近一轮处理结束的时间（Unix 秒）；长时间不变表示后台任务停滞",
            (),
            registry=registry,
            multiprocess_mode="max",
        )
        self._records = {s: self.records.labels(s) for s in ("changes", "due")}
        self._outcomes = {
            (s, o): self.outcomes.labels(s, o) for s in ("changes", "due") for o in OUTCOMES
        }
        for result in ("done", "skipped"):
            self.chores.labels(result)
        for stage in ("round", "partitions"):
            self.errors.labels(stage)

    def round(self, *, claimed: int, stats: Stats, seconds: float) -> None:
        """A round over ``claimed`` changes finished and was committed."""
        self.changes.inc(claimed)
        self.seconds.observe(seconds)
        self.evaluated("changes", stats)
        self.last_round.set(time.time())

    def idle(self, *, chores: bool | None, stats: Stats) -> None:
        """A round found the feed empty; ``chores``: done (``True``), left to another worker
        process (``False``), not this round's turn (``None``)."""
        if chores is not None:
            self.chores.labels("done" if chores else "skipped").inc()
            if chores:
                self.evaluated("due", stats)
        self.last_round.set(time.time())

    def evaluated(self, source: Source, stats: Stats) -> None:
        if stats.records:
            self._records[source].inc(stats.records)
        for outcome in OUTCOMES:
            n = getattr(stats, outcome)
            if n:
                self._outcomes[source, outcome].inc(n)

    def failed(self, stage: Stage) -> None:
        self.errors.labels(stage).inc()


def pending_sampler(db: Database, clock: Clock) -> Sampler:
    """A sampler (``imsp.metrics.Sampler``) of the pending checks: records waiting for the other
    side of a reference, and how many of them are due (their grace period ended; the idle chores
    decide them)."""

    async def sample() -> list[Metric]:
        now = clock.now().astimezone(UTC)
        async with db.session() as session:
            if db.dialect == "postgresql":  # never let a scrape hold a connection long
                await session.execute(text("SET LOCAL statement_timeout = 1000"))
            head = select(PendingCheck.key).limit(PENDING_CAP + 1).subquery()
            waiting = int(
                (await session.execute(select(func.count()).select_from(head))).scalar_one()
            )
            due_head = (
                select(PendingCheck.key)
                .where(PendingCheck.due_at <= now)
                .limit(PENDING_CAP + 1)
                .subquery()
            )
            due = int(
                (await session.execute(select(func.count()).select_from(due_head))).scalar_one()
            )
        pending = GaugeMetricFamily(
            "imsp_supervision_pending_checks",
            f"等待关联数据的记录数（待查）；最多计到 {PENDING_CAP + 1}",
        )
        pending.add_metric((), waiting)
        overdue = GaugeMetricFamily(
            "imsp_supervision_pending_due",
            f"宽限期已到、等待空闲维护判定的待查记录数；最多计到 {PENDING_CAP + 1}",
        )
        overdue.add_metric((), due)
        return [pending, overdue]

    return sample
