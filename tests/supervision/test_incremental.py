"""Rules run after uploads (the worker on the change feed), in any order of upload: pending on a
missing reference until it arrives or the grace period ends; a corrected resend closes the finding
as 已整改-重新上传 with both versions linked; a broken resend reopens it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from imsp.config import Settings
from imsp.supervision.models import FindingEvent
from tests.supervision.builders import GRACE, NOW, Platform, key_of, received_at, run, world


def _without(w: dict[str, list[dict[str, object]]], dataset: str) -> list[dict[str, object]]:
    docs = w[dataset]
    w[dataset] = []
    return docs


def test_rule_waits_for_missing_patient_then_decides_when_it_arrives(settings: Settings) -> None:
    w = world()
    patients = _without(w, "patient")
    rx = w["prescription"][0]

    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
            within = received_at("prescription", rx) + timedelta(hours=2)
            await p.work(now=within)
            # records older than the grace period already count as R43; this one still waits
            assert rx["recipeID"] not in {f.key for f in await p.findings("R43")}
            waiting = {(rule, c.dataset, c.key) for c in await p.pending() for rule in c.checks}
            assert ("R43", "prescription", rx["recipeID"]) in waiting
            assert ("R11", "prescription", rx["recipeID"]) in waiting  # age needs the patient
            missing = next(c.checks["R43"] for c in await p.pending() if c.key == rx["recipeID"])
            assert {"dataset": "patient", "field": "patientId", "key": rx["patientId"]} in missing
            for doc in patients:
                await p.upload("patient", [doc], at=within)
            await p.work(now=within)
            assert await p.pending() == []
            assert {(f.rule_id, f.status, f.resolution) for f in await p.findings()} <= {
                ("R43", "rectified", "resubmitted")
            }
        finally:
            await p.close()

    run(go())


def test_missing_reference_becomes_r43_after_grace_and_closes_when_it_arrives(
    settings: Settings,
) -> None:
    w = world()
    patients = _without(w, "patient")
    rx = w["prescription"][0]

    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
            first = received_at("prescription", rx)
            await p.work(now=first + timedelta(hours=1))
            assert rx["recipeID"] not in {f.key for f in await p.findings("R43")}
            # the grace period ends: the worker decides the pending checks that are due
            await p.work(now=first + GRACE + timedelta(minutes=1))
            found = [f for f in await p.findings("R43") if f.key == rx["recipeID"]]
            assert len(found) == 1
            assert found[0].status == "pending_review"
            assert any(
                e["field"] == "patientId" and "患者信息" in e["message"] for e in found[0].evidence
            )
            later = NOW
            for doc in patients:
                await p.upload("patient", [doc], at=later)
            await p.work(now=later)
            (f,) = [f for f in await p.findings("R43") if f.key == rx["recipeID"]]
            assert f.status == "rectified" and f.resolution == "resubmitted"
        finally:
            await p.close()

    run(go())


def test_corrected_resend_closes_the_finding_and_a_broken_one_reopens_it(
    settings: Settings,
) -> None:
    w = world()
    rx = w["prescription"][0]
    broken = dict(rx, auditDoctorCertID=rx["doctorCertID"])

    async def go() -> None:
        p = Platform(settings)
        try:
            w["prescription"][0] = broken
            await p.upload_world(w)
            await p.work()
            (f,) = await p.findings("R24")
            assert (f.status, f.record_version) == ("pending_review", 1)
            await p.upload("prescription", [rx], at=NOW)  # corrected: version 2
            await p.work()
            (f,) = await p.findings("R24")
            assert (f.status, f.resolution, f.resolved_version) == ("rectified", "resubmitted", 2)
            async with p.db.session() as s:
                events = (
                    await s.scalars(
                        select(FindingEvent)
                        .where(FindingEvent.finding_id == f.id)
                        .order_by(FindingEvent.id)
                    )
                ).all()
            assert [e.action for e in events] == ["raise", "resubmitted"]
            assert events[1].data["from_version"] == 1 and events[1].data["to_version"] == 2
            assert events[1].to_status == "rectified"
            await p.upload("prescription", [broken], at=NOW)  # broken again: version 3
            await p.work()
            (f,) = await p.findings("R24")
            assert (f.status, f.record_version) == ("pending_review", 3)
            assert len(await p.findings("R24")) == 1  # never a duplicate
        finally:
            await p.close()

    run(go())


def test_unchanged_resend_changes_nothing(settings: Settings) -> None:
    w = world()
    w["prescription"][0]["recipeCategory"] = "4"

    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
            assert await p.work() > 0
            before = [(f.id, f.status, f.last_seen) for f in await p.findings()]
            await p.upload("prescription", [w["prescription"][0]], at=NOW)
            assert await p.work() == 0  # an unchanged resend adds no change to the feed
            assert [(f.id, f.status, f.last_seen) for f in await p.findings()] == before
            assert [f.rule_id for f in await p.findings()] == ["R19"]
        finally:
            await p.close()

    run(go())


def test_sweep_for_one_rule_and_one_institution(settings: Settings) -> None:
    w = world()
    w["prescription"][0]["recipeCategory"] = "4"
    w["prescription"][1]["doctorSign"] = None
    w["prescription"][1]["caCertSN"] = None
    w["prescription"][1]["signTime"] = None

    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
            stats = await p.sweep(rules=["R19"])
            assert set(stats.checks) == {"R19"} and stats.checks["R19"] == len(w["prescription"])
            assert [f.key for f in await p.findings()] == [
                key_of("prescription", w["prescription"][0])
            ]
            await p.sweep()
            assert {f.rule_id for f in await p.findings()} == {"R19", "R21"}
        finally:
            await p.close()

    run(go())


def test_a_batch_of_changes_costs_a_bounded_number_of_statements(settings: Settings) -> None:
    """The worker works per batch, not per change: raising, then closing (已整改-重新上传) the
    findings of N resent prescriptions takes the same few statements whatever N is (a statement
    sent with many parameter sets — executemany — counts once)."""
    from sqlalchemy import event

    from imsp.clock import FrozenClock
    from imsp.supervision.worker import run_once

    w = world(count=24)
    rxs = w["prescription"]

    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
            await p.work(now=NOW)
            conf = settings.supervision.model_copy(update={"batch": 10_000})
            wide = settings.model_copy(update={"supervision": conf})
            statements: list[str] = []

            def seen(_c: object, _cur: object, stmt: str, *_: object) -> None:
                statements.append(stmt)

            async def one_round(docs: list[dict[str, object]]) -> tuple[int, int, int]:
                for doc in docs:
                    await p.upload("prescription", [doc], at=NOW)
                statements.clear()
                event.listen(p.db.engine.sync_engine, "before_cursor_execute", seen)
                try:
                    r = await run_once(p.db, settings=wide, clock=FrozenClock(NOW), worker="t")
                finally:
                    event.remove(p.db.engine.sync_engine, "before_cursor_execute", seen)
                return r.claimed, len(statements), r.stats.raised + r.stats.rectified

            few, many = rxs[:3], rxs[3:]
            assert len(many) >= 15
            broken = [
                [dict(rx, auditDoctorCertID=rx["doctorCertID"]) for rx in part]  # R24
                for part in (few, many)
            ]
            n_few, q_few, raised_few = await one_round(broken[0])
            n_many, q_many, raised_many = await one_round(broken[1])
            assert (n_few, n_many) == (len(few), len(many))
            assert raised_few >= len(few) and raised_many >= len(many)
            assert len(await p.findings("R24")) == len(rxs)
            assert q_many <= q_few + 2, (q_few, q_many)
            assert q_many < 40, q_many
            # corrected resends close every finding in one round, again in a few statements
            n_fixed, q_fixed, closed = await one_round(rxs)
            assert n_fixed == len(rxs) and closed >= len(rxs)
            assert q_fixed < 40, q_fixed
            assert {(f.status, f.resolution) for f in await p.findings("R24")} == {
                ("rectified", "resubmitted")
            }
        finally:
            await p.close()

    run(go())


def test_a_changed_reviewer_re_evaluates_the_prescriptions_they_reviewed(
    settings: Settings,
) -> None:
    """The reviewing pharmacist is found by ``record.reviewer_cert_id`` (``record.data`` is stored
    compressed, so SQL cannot look inside it): a corrected doctor record re-runs R09 on the
    prescriptions that pharmacist reviewed."""
    w = world()
    rx = w["prescription"][0]
    reviewer = next(d for d in w["doctor"] if d["doctorCertID"] == rx["auditDoctorCertID"])
    assert rx["auditDoctorCertID"] != rx["doctorCertID"]

    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
            await p.work()
            assert rx["recipeID"] not in {f.key for f in await p.findings("R09")}
            await p.upload("doctor", [dict(reviewer, titleCode="245", titleName="药士")], at=NOW)
            await p.work()
            assert rx["recipeID"] in {f.key for f in await p.findings("R09")}
        finally:
            await p.close()

    run(go())
