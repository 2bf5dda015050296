"""The worker's rounds: a full batch is followed by the next at once (a backlog); a round that
drains the feed is followed by the pause, so that a steady stream of uploads is taken a second's
worth at a time, not a few changes at a time (each round has a fixed cost)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, func, select

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.exchange.models import RecordChange
from imsp.supervision import incremental
from imsp.supervision.worker import run_once, run_worker
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


def _patient_then_prescription_one_change_a_round(settings: Settings) -> tuple[list[int], int]:
    """Upload a prescription's patient, then the prescription, and run the worker two rounds of
    one change each: the records each round evaluated, and the pending checks at the end — the
    end state checked against a full sweep."""
    conf = settings.supervision.model_copy(update={"batch": 1})
    one = settings.model_copy(update={"supervision": conf})
    w = world()
    rx = w["prescription"][0]
    patient = next(p for p in w["patient"] if p["patientId"] == rx["patientId"])

    async def go() -> tuple[list[int], int]:
        p = Platform(settings)
        try:
            await p.upload("patient", [patient], at=NOW)
            await p.upload("prescription", [rx], at=NOW)
            evaluated = []
            for _ in range(2):
                r = await run_once(p.db, settings=one, clock=FrozenClock(NOW), worker="t")
                assert r.claimed == 1
                evaluated.append(r.stats.records)
            incremental_state = len(await p.findings()), len(await p.pending())
            await p.sweep(now=NOW)  # what every rule says of every record now
            assert (len(await p.findings()), len(await p.pending())) == incremental_state
            return evaluated, incremental_state[1]
        finally:
            await p.close()

    return run(go())


def test_a_record_whose_own_change_waits_in_the_feed_is_left_to_that_change(
    settings: Settings,
) -> None:
    """A patient arrives before its prescription is evaluated (a backlog): the patient's round
    does not evaluate the prescription, whose own change comes next; the end state is the same."""
    evaluated, pending = _patient_then_prescription_one_change_a_round(settings)
    assert evaluated == [1, 1]  # the patient alone, then the prescription
    assert pending == 1  # the prescription waits for its doctor, visit, organization …


def test_a_record_whose_change_is_beyond_the_window_is_evaluated_now(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queued-change check looks only ``QUEUED_WINDOW`` changes past the round (the feed
    has no index by record): a record whose change lies further on is evaluated now, and again
    when its change comes — more work, the same end state."""
    monkeypatch.setattr(incremental, "QUEUED_WINDOW", 0)
    evaluated, _ = _patient_then_prescription_one_change_a_round(settings)
    assert evaluated == [2, 1]  # the patient and its prescription, then the prescription again
