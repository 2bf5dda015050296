"""The idle worker's chores (due pending checks, overdue findings, rollups) run at most every
``chores_seconds``, not on every poll of an empty change feed."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.supervision.worker import run_worker
from tests.supervision.builders import NOW, Platform, run


def test_an_idle_worker_does_its_chores_once_per_interval_not_on_every_poll(
    settings: Settings,
) -> None:
    conf = settings.supervision.model_copy(update={"poll_seconds": 0.01, "chores_seconds": 3600})
    quick = settings.model_copy(update={"supervision": conf})
    polls: list[str] = []
    due_reads: list[str] = []
    enough = asyncio.Event()

    def seen(_c: object, _cur: object, stmt: str, *_: object) -> None:
        if stmt.startswith("UPDATE record_change"):
            polls.append(stmt)  # a claim: one per poll
            if len(polls) >= 8:
                enough.set()
        elif "FROM supervision_pending" in stmt and "due_at <=" in stmt:
            due_reads.append(stmt)  # evaluate_due: the first chore

    async def go() -> None:
        p = Platform(settings)
        event.listen(p.db.engine.sync_engine, "before_cursor_execute", seen)
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_worker(p.db, settings=quick, clock=FrozenClock(NOW), stop=stop, worker="t")
        )
        try:
            await asyncio.wait_for(enough.wait(), timeout=60)
        finally:
            stop.set()
            await task
            event.remove(p.db.engine.sync_engine, "before_cursor_execute", seen)
            await p.close()

    run(go())
    assert len(polls) >= 8
    assert len(due_reads) == 1, (len(polls), len(due_reads))
