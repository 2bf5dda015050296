"""The worker's rounds: a full batch is followed by the next at once (a backlog); a round that
drains the feed is followed by the pause, so that a steady stream of uploads is taken a second's
worth at a time, not a few changes at a time (each round has a fixed cost)."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, func, select

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange.models import RecordChange
from imsp.supervision.worker import run_worker
from tests.supervision.builders import NOW, Platform, run, world


def test_a_round_that_drains_the_feed_is_followed_by_the_pause_not_another_claim(
    settings: Settings,
) -> None:
    conf = settings.supervision.model_copy(
        update={"batch": 2, "poll_seconds": 3600, "chores_seconds": 3600}
    )
    quick = settings.model_copy(update={"supervision": conf})
    claims: list[str] = []
    chores = asyncio.Event()

    def seen(_c: object, _cur: object, stmt: str, *_: object) -> None:
        if stmt.startswith("UPDATE record_change"):
            claims.append(stmt)
        elif "FROM supervision_pending" in stmt and "due_at <=" in stmt:
            chores.set()  # evaluate_due: the first chore, done once the feed is drained

    async def go() -> int:
        p = Platform(settings)
        try:
            await p.upload("prescription", world()["prescription"][:5], at=NOW)
            event.listen(p.db.engine.sync_engine, "before_cursor_execute", seen)
            stop = asyncio.Event()
            task = asyncio.create_task(
                run_worker(p.db, settings=quick, clock=FrozenClock(NOW), stop=stop, worker="t")
            )
            try:
                await asyncio.wait_for(chores.wait(), timeout=60)
            finally:
                stop.set()
                await task
                event.remove(p.db.engine.sync_engine, "before_cursor_execute", seen)
            async with p.db.session() as s:
                return int(await s.scalar(select(func.count()).select_from(RecordChange)) or 0)
        finally:
            await p.close()

    left = run(go())
    assert left == 0
    # 2 + 2 + 1: the third round drained the feed; no fourth claim came before the pause
    assert len(claims) == 3, len(claims)
