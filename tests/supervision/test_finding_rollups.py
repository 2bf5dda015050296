"""Finding rollups (``finding_day``): kept incrementally through workflow actions and re-sweeps,
equal to a full recomputation (property test), over real engine findings."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from sqlalchemy import select

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import ImspError
from imsp.supervision import dashboard, findings, rollups, workflow
from imsp.supervision.models import Finding
from imsp.supervision.rollup_models import FindingDay
from imsp.supervision.sweep import sweep_in_session
from tests.qualification import builders as qb
from tests.supervision.portal_builders import GRACE, report

ACTIONS = ("confirm", "dismiss", "rectify", "close", "reopen")


def _snapshot(settings: Settings) -> list[tuple[Any, ...]]:
    async def read(s: Any) -> list[tuple[Any, ...]]:
        rows = (await s.scalars(select(FindingDay))).all()
        return sorted(
            (r.institution_id, r.day, r.rule_id, r.severity, r.status, r.findings) for r in rows
        )

    return qb.run(settings, read)


def _act(settings: Settings, clock: FrozenClock, index: int, action: str) -> None:
    async def work(s: Any) -> None:
        ids = list(await s.scalars(select(Finding.id).order_by(Finding.id)))
        await findings.act(
            s,
            finding_id=ids[index % len(ids)],
            action=action,
            actor="regulator1",
            role=workflow.REGULATOR,
            now=clock.now(),
            text="理由",
            due_at=clock.now() + timedelta(days=10),
        )

    with contextlib.suppress(ImspError):  # not allowed from its state: rolled back
        qb.run(settings, work)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("act"), st.integers(0, 50), st.sampled_from(ACTIONS)),
        st.tuples(st.just("advance"), st.integers(1, 40)),
        st.tuples(st.just("refresh")),
        st.tuples(st.just("sweep")),
    ),
    min_size=1,
    max_size=10,
)


def test_finding_rollups_count_by_rule_severity_and_status(
    settings: Settings, clock: FrozenClock
) -> None:
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        report(exchange, settings, clock)
    rows = _snapshot(settings)
    assert sum(r[5] for r in rows) == 18
    assert {(r[2], r[3], r[4]) for r in rows} == {
        ("R43", "violation", "pending_review"),
        ("R45", "risk", "pending_review"),
    }
    _act(settings, clock, 0, "confirm")
    qb.run(settings, lambda s: rollups.refresh_rollups(s, now=clock.now()))
    assert ("confirmed", 1) in {(r[4], r[5]) for r in _snapshot(settings)}

    async def both(s: Any) -> tuple[Any, Any]:
        start, end = min(r[1] for r in rows), max(r[1] for r in rows) + timedelta(days=2)
        one = await dashboard.findings_summary(s, start=start, end=end)
        three = (
            await dashboard.findings_by_institution(s, start=start, end=end),
            await dashboard.findings_by_rule(s, start=start, end=end),
            await dashboard.findings_by_day(s, start=start, end=end),
        )
        return (one.by_institution, one.by_rule, one.by_day), three

    # the overview's one-scan summary (GROUPING SETS on PostgreSQL) = the three separate reads
    one, three = qb.run(settings, both)
    assert one == three and sum(one[2].values()) == 18 and one[1][0].open <= one[1][0].total


def test_incremental_finding_rollups_agree_with_full_recomputation(
    settings: Settings, clock: FrozenClock
) -> None:
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        report(exchange, settings, clock)
    clock.advance(hours=1)  # past the refresh's look-back: only what examples touch is recomputed

    @settings_(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=OPS)
    def run(ops: list[tuple[Any, ...]]) -> None:
        for op in ops:
            if op[0] == "act":
                _act(settings, clock, op[1], op[2])
            elif op[0] == "advance":
                clock.advance(hours=op[1])
            elif op[0] == "sweep":
                qb.run(settings, lambda s: sweep_in_session(s, now=clock.now(), grace=GRACE))
            else:
                qb.run(settings, lambda s: rollups.refresh_rollups(s, now=clock.now()))
        qb.run(settings, lambda s: rollups.refresh_rollups(s, now=clock.now()))
        incremental = _snapshot(settings)
        qb.run(settings, lambda s: rollups.recompute(s, now=clock.now()))
        assert incremental == _snapshot(settings)
        clock.advance(minutes=1)

    run()
