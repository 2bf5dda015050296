"""The supervision worker: consumes the exchange's change feed and evaluates rules incrementally.

Each round (see ``imsp.exchange.changes``):

1. claim up to ``batch`` changes with a lease, and commit — the claim is durable;
2. in ONE unit of work: re-evaluate every record the changes may affect
   (``incremental.evaluate_changes``), write the findings, and ``ack`` the changes.

So a worker killed at any moment (``kill -9``) loses nothing: an unfinished round left no findings
and no acknowledgement, and its changes are claimed again when the lease expires. Evaluation is
idempotent (one finding per rule and record), so a change evaluated twice has the effect of one.
Uploads never wait for any of this: the feed row is written with the record; rules run here.

When the feed is empty the worker decides pending checks whose grace period ended (R43/R44),
marks findings whose rectification deadline passed as 逾期, and refreshes the daily rollups the
regulator's pages read (``rollups.refresh_rollups``: only what changed since its watermark).
With several workers (nodes or processes) these idle chores run under the shared state's lock
``supervision.chores`` (in Redis with ``IMSP_REDIS_URL``): one worker does them while the others
skip them — two concurrent refreshes would only collide on the same rollup rows and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from imsp.clock import Clock
from imsp.config import Settings
from imsp.exchange import changes as feed
from imsp.shared_state import SharedState, open_state
from imsp.storage.db import Database
from imsp.supervision.engine import Stats
from imsp.supervision.findings import expire_overdue
from imsp.supervision.incremental import evaluate_changes, evaluate_due
from imsp.supervision.rollups import refresh_rollups

__all__ = ["Round", "run_once", "run_worker", "worker_name"]

log = logging.getLogger("imsp.supervision")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Round:
    claimed: int
    stats: Stats


#: Longest the idle chores may hold their lock (it expires if its worker dies).
CHORES_TTL = 300.0


async def run_once(
    db: Database,
    *,
    settings: Settings,
    clock: Clock,
    worker: str,
    shared: SharedState | None = None,
) -> Round:
    """One round: claim (committed), evaluate + ack (committed together)."""
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
        if shared is None:
            return Round(0, await _chores(db, clock=clock, grace=grace))
        async with shared.lock("supervision.chores", ttl=CHORES_TTL) as held:
            if not held:  # another worker is doing them
                return Round(0, Stats())
            return Round(0, await _chores(db, clock=clock, grace=grace))
    async with db.session() as s:
        stats = await evaluate_changes(
            s,
            [(c.institution_id, c.dataset, c.business_key) for c in claimed],
            now=clock.now(),
            grace=grace,
        )
        await feed.ack(s, [c.id for c in claimed])
    return Round(len(claimed), stats)


async def _chores(db: Database, *, clock: Clock, grace: timedelta) -> Stats:
    async with db.session() as s:
        now = clock.now()
        stats = await evaluate_due(s, now=now, grace=grace)
        await expire_overdue(s, now=now)
        await refresh_rollups(s, now=now)  # the dashboards' daily rollups (rollups.py)
    return stats


async def run_worker(
    db: Database,
    *,
    settings: Settings,
    clock: Clock,
    stop: asyncio.Event,
    worker: str | None = None,
) -> None:
    """Run rounds until ``stop`` is set; sleep ``poll_seconds`` when there is nothing to do. A
    failed round (database unavailable, a concurrent worker raised the same finding) is logged
    and retried after a pause: its changes stay in the feed."""
    name = worker or worker_name()
    pause = settings.supervision.poll_seconds
    shared = open_state(settings)
    try:
        while not stop.is_set():
            try:
                done = await run_once(
                    db, settings=settings, clock=clock, worker=name, shared=shared
                )
            except Exception as exc:  # the worker outlives any one round; its changes stay queued
                log.warning("supervision round failed, will retry: %s", type(exc).__name__)
                done = Round(0, Stats())
            if done.claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
    finally:
        await shared.close()
