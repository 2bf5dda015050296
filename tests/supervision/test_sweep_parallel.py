"""A sweep shared among processes (``--jobs``) raises exactly the findings of a one-process sweep.

On PostgreSQL the records are split among two processes by id; on SQLite (one writer at a time)
``jobs`` is ignored and the comparison still runs, so the test is meaningful on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from imsp.config import Settings
from imsp.supervision.models import Finding, FindingEvent, PendingCheck
from imsp.supervision.sweep import sweep
from tests.supervision.builders import GRACE, NOW, ORG, Platform, run, world

OTHER = "12130000MB1A2B3C5W"


def _violating(org: str = ORG) -> dict[str, list[dict[str, Any]]]:
    w = world(org=org)
    w["prescription"][0]["recipeCategory"] = "4"  # R19
    w["prescription"][1]["auditDoctorCertID"] = w["prescription"][1]["doctorCertID"]  # R24
    w["prescription"][2]["totalFee"] = 1.0  # R34
    del w["doctor"][0]  # its prescriptions and visits refer to a doctor never filed (R43)
    return w


async def _snapshot(p: Platform) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with p.db.session() as s:
        findings = sorted(
            (f.rule_id, f.institution_id, f.dataset, f.key, f.record_version, f.severity,
             f.status, repr(f.evidence), repr(f.records))
            for f in (await s.scalars(select(Finding))).all()
        )  # fmt: skip
        pending = sorted(
            (c.institution_id, c.dataset, c.key, repr(sorted(c.checks.items())), c.due_at)
            for c in (await s.scalars(select(PendingCheck))).all()
        )
    return findings, pending


async def _forget(p: Platform) -> None:
    async with p.db.session() as s:
        await s.execute(delete(FindingEvent))
        await s.execute(delete(Finding))
        await s.execute(delete(PendingCheck))


def test_a_parallel_sweep_finds_what_a_single_process_sweep_finds(settings: Settings) -> None:
    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(_violating())
            await p.upload_world(_violating(OTHER), org=OTHER)
            one = await sweep(p.db, now=NOW, grace=GRACE, jobs=1, batch=50)
            single = await _snapshot(p)
            await _forget(p)
            two = await sweep(p.db, now=NOW, grace=GRACE, jobs=2, batch=50)
            parallel = await _snapshot(p)
        finally:
            await p.close()
        rules = {f[0] for f in single[0]}
        assert {"R19", "R24", "R34", "R43"} <= rules
        assert parallel == single
        assert (two.records, two.raised) == (one.records, one.raised)
        assert two.checks == one.checks

    run(go())
