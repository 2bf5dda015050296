"""The supervision worker: consumes the exchange's change feed and evaluates rules incrementally.

Each round (see ``imsp.exchange.changes``):

1. claim up to ``batch`` changes with a lease, and commit — the claim is durable;
2. in ONE unit of work: re-evaluate every record the changes may affect
   (``incremental.evaluate_changes``), write the findings, and ``ack`` the changes.

So a worker killed at any moment (``kill -9``) loses nothing: an unfinished round left no findings
and no acknowledgement, and its changes are claimed again when the lease expires. Evaluation is
idempotent (one finding per rule and record), so a change evaluated twice has the effect of one.
Uploads never wait for any of this: the feed row is written with the record; rules run here.

A round that took a full batch is followed by the next at once (a backlog); one that drained the
feed is followed by a pause of ``poll_seconds`` (1 s), so that the changes of a steady stream of
uploads are taken in rounds of a second's worth, not a few at a time, each paying a round's fixed
cost (claim, ~20 statements, commit).

When the feed is empty, or after a round that drained it — and at most every ``chores_seconds``
(30 s), not on every idle poll — the worker decides pending checks whose grace period ended (R43/R44),
marks findings whose rectification deadline passed as 逾期, and refreshes the daily rollups the
regulator's pages read (``rollups.refresh_rollups``: only what changed since its watermark).
Once an hour it also creates the monthly partitions ahead on PostgreSQL
(``imsp.exchange.partitions.ensure_ahead``: this month and the next two).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.clock import Clock
from imsp.config import Settings
from imsp.exchange import changes as feed
from imsp.exchange import partitions
from imsp.storage.db import Database
from imsp.supervision.engine import Stats, without_gc
from imsp.supervision.findings import expire_overdue
from imsp.supervision.incremental import evaluate_changes, evaluate_due
from imsp.supervision.meters import WorkerMeters
from imsp.supervision.rollups import refresh_rollups

__all__ = ["Round", "do_chores", "run_once", "run_worker", "worker_name"]

log = logging.getLogger("imsp.supervision")

#: How often the worker makes sure next months' partitions exist (PostgreSQL).
PARTITION_CHECK_SECONDS = 3600.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Round:
    claimed: int
    stats: Stats
    chores: bool | None = None  # idle chores: done, left to another worker, not attempted


async def run_once(
    db: Database, *, settings: Settings, clock: Clock, worker: str, chores: bool = True
) -> Round:
    """One round: claim (committed), evaluate + ack (committed together). When nothing was
    claimed and ``chores`` is set, the idle chores instead (see the module doc)."""
    conf = settings.supervision
    grace = timedelta(hours=conf.grace_hours)
    async with db.session() as s:
        claimed = await feed.claim(
            s,
            worker=worker,
            limit=conf.batch,
            now=clock.now(),
            lease=timedelta(seconds=conf.lease_seconds),
        )
    if not claimed:
        return await do_chores(db, settings=settings, clock=clock) if chores else Round(0, Stats())
    # the round allocates tens of thousands of short-lived objects: no collector passes over
    # them meanwhile (as a sweep's batches; ``engine.without_gc``)
    with without_gc():
        async with db.session() as s:
            stats = await evaluate_changes(
                s,
                [(c.institution_id, c.dataset, c.business_key) for c in claimed],
                now=clock.now(),
                grace=grace,
                claimed=True,
                horizon=claimed[-1].id,
            )
            await feed.ack(s, [c.id for c in claimed])
    return Round(len(claimed), stats)


async def do_chores(db: Database, *, settings: Settings, clock: Clock) -> Round:
    """The chores, in their own unit of work (see the module doc), if this worker's turn
    (``Round.chores``: done, or left to another worker)."""
    grace = timedelta(hours=settings.supervision.grace_hours)
    async with db.session() as s:
        if not await _chores_turn(s):
            return Round(0, Stats(), chores=False)
        now = clock.now()
        stats = await evaluate_due(s, now=now, grace=grace)
        await expire_overdue(s, now=now)
        await refresh_rollups(s, now=now)  # the dashboards' daily rollups (rollups.py)
    return Round(0, stats, chores=True)


#: PostgreSQL advisory lock key of the idle chores (``imsp`` in ASCII).
CHORES_LOCK = 0x696D7370


async def _chores_turn(session: AsyncSession) -> bool:
    """Whether this worker does the idle chores (due checks, overdue findings, rollups) now.
    With several worker processes (``imsp serve worker --workers N``, several hosts) one at a
    time does them: on PostgreSQL a transaction-scoped advisory lock, skipped when another
    worker holds it; SQLite serialises writers anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": CHORES_LOCK})
    return bool(got)


async def run_worker(
    db: Database,
    *,
    settings: Settings,
    clock: Clock,
    stop: asyncio.Event,
    worker: str | None = None,
    meters: WorkerMeters | None = None,
) -> None:
    """Run rounds until ``stop`` is set; sleep ``poll_seconds`` when there is nothing to do. A
    failed round (database unavailable, a concurrent worker raised the same finding) is logged
    and retried after a pause: its changes stay in the feed. ``meters`` (the health port's
    ``/metrics``) count what each round did."""
    name = worker or worker_name()
    pause = settings.supervision.poll_seconds
    next_maintenance = next_chores = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_maintenance:
            try:
                created = await partitions.ensure_ahead(db.engine, now=clock.now())
                if created:
                    log.info("partitions created: %s", ", ".join(created))
                    if meters is not None:
                        meters.partitions.inc(len(created))
                next_maintenance = time.monotonic() + PARTITION_CHECK_SECONDS
            except Exception as exc:  # retried at the next round
                log.warning("partition maintenance failed: %s", type(exc).__name__)
                if meters is not None:
                    meters.failed("partitions")
        chores = time.monotonic() >= next_chores
        started = time.perf_counter()
        try:
            done = await run_once(db, settings=settings, clock=clock, worker=name, chores=chores)
        except Exception as exc:  # the worker outlives any one round; its changes stay queued
            log.warning("supervision round failed, will retry: %s", type(exc).__name__)
            done = Round(0, Stats())
            if meters is not None:
                meters.failed("round")
        else:
            if meters is not None and done.claimed:
                meters.round(
                    claimed=done.claimed, stats=done.stats, seconds=time.perf_counter() - started
                )
            elif meters is not None:
                meters.idle(chores=done.chores, stats=done.stats)
        if done.claimed >= settings.supervision.batch:
            continue  # a backlog: the next round at once
        if chores:
            if done.claimed:  # a steady stream never leaves the feed empty: chores all the same
                try:
                    extra = await do_chores(db, settings=settings, clock=clock)
                except Exception as exc:
                    log.warning("supervision chores failed, will retry: %s", type(exc).__name__)
                else:
                    if meters is not None:
                        meters.idle(chores=extra.chores, stats=extra.stats)
            # done (or failed: retried after the interval like the rest)
            next_chores = time.monotonic() + settings.supervision.chores_seconds
        # the feed is drained: wait for the next changes to gather instead of taking them a
        # few at a time as they come — a round has a fixed cost (~20 statements) that a
        # round of 5 changes pays as dearly as one of 500
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
