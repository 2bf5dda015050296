"""``/metrics`` of the worker's health port (``imsp serve worker --health-port P``): every counter
moves by what the worker's rounds did, the gauges read the change feed and the pending checks at
scrape time, and only allowed addresses may read them."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from imsp.app import create_health_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange import changes
from imsp.storage.db import Database
from imsp.supervision.meters import WorkerMeters
from imsp.supervision.worker import run_worker
from tests.exchange.test_metrics import Samples, fresh, value
from tests.supervision.builders import NOW, Platform, received_at, run, world
from tests.support.live import live_server


async def _scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    r = await http.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_worker_metrics_count_what_the_rounds_did(settings: Settings) -> None:
    w = world()
    w["prescription"][0]["recipeCategory"] = "4"  # a finding (not a valid category)
    docs = w["prescription"][:3]  # without their patients and doctors: they wait (pending)
    at = received_at("prescription", docs[0])
    clock = FrozenClock(at)
    app = create_health_app(fresh(settings), clock=clock)
    meters: WorkerMeters = app.state.worker_meters

    async def go(base: str) -> None:
        p = Platform(settings)
        conf = settings.supervision.model_copy(update={"poll_seconds": 0.01})
        quick = settings.model_copy(update={"supervision": conf})
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                before = await _scrape(http)
                assert value(before, "imsp_supervision_queue_depth") == 0
                assert value(before, "imsp_supervision_changes_total") == 0
                for doc in docs:
                    await p.upload("prescription", [doc], at=at)
                queued = await _scrape(http)
                assert value(queued, "imsp_supervision_queue_depth") == 3
                assert value(queued, "imsp_metrics_sample_ok") == 1

                stop = asyncio.Event()
                task = asyncio.create_task(
                    run_worker(p.db, settings=quick, clock=clock, stop=stop, meters=meters)
                )
                try:
                    async with asyncio.timeout(60):
                        while True:
                            async with p.db.session() as s:
                                depth, _ = await changes.backlog(s, cap=10)
                            done = value(await _scrape(http), "imsp_supervision_chores_total",
                                         result="done")  # fmt: skip
                            if depth == 0 and done >= 1:
                                break
                            await asyncio.sleep(0.05)
                finally:
                    stop.set()
                    await task
                after = await _scrape(http)
                refused = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
            findings = await p.findings()
            waiting = await p.pending()
            async with p.db.session() as s:
                due = await s.scalar(
                    select(func.count()).where(type(waiting[0]).due_at <= clock.now())
                )
        finally:
            await p.close()

        assert value(after, "imsp_supervision_changes_total") == 3
        assert value(after, "imsp_supervision_queue_depth") == 0
        assert value(after, "imsp_supervision_batch_seconds_count") >= 1
        assert value(after, "imsp_supervision_records_evaluated_total", source="changes") == 3
        raised = value(
            after, "imsp_supervision_outcomes_total", source="changes", outcome="raised"
        ) + value(after, "imsp_supervision_outcomes_total", source="due", outcome="raised")
        assert findings and raised == len(findings)
        assert value(after, "imsp_supervision_outcomes_total", source="changes", outcome="pending")
        assert value(after, "imsp_supervision_pending_checks") == len(waiting) > 0
        assert value(after, "imsp_supervision_pending_due") == due
        assert value(after, "imsp_supervision_chores_total", result="done") == 1
        assert value(after, "imsp_supervision_chores_total", result="skipped") == 0
        assert value(after, "imsp_supervision_errors_total", stage="round") == 0
        assert value(after, "imsp_supervision_last_round_timestamp_seconds") > 0
        assert refused.status_code == 403
        # no institution, key or person in any label
        labels = {v for (_, ls) in after for (_, v) in ls}
        assert not any(d["recipeID"] in labels or d["patientId"] in labels for d in docs)
        assert not {"12130000MB1A2B3C4R"} & labels

    with live_server(app) as base:
        run(go(base))


def test_failed_rounds_are_counted_and_the_worker_goes_on(settings: Settings) -> None:
    # a real client of a database server that is not there (nothing listens on port 1)
    gone = settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/imsp", "supervision":
                settings.supervision.model_copy(update={"poll_seconds": 0.01})}
    )  # fmt: skip
    app = create_health_app(fresh(gone), clock=FrozenClock(NOW))
    meters: WorkerMeters = app.state.worker_meters
    registry = app.state.metrics.registry

    async def go() -> None:
        db = Database(gone)
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_worker(db, settings=gone, clock=FrozenClock(NOW), stop=stop, meters=meters)
        )
        try:
            async with asyncio.timeout(30):
                while True:  # the worker kept going after its first failure
                    failed = registry.get_sample_value(
                        "imsp_supervision_errors_total", {"stage": "round"}
                    )
                    if (failed or 0) >= 2:
                        break
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await task
            await db.dispose()

    run(go())
    assert (
        registry.get_sample_value("imsp_supervision_errors_total", {"stage": "partitions"}) or 0
    ) >= 1
    assert registry.get_sample_value("imsp_supervision_changes_total") == 0
