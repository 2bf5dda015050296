"""Order of upload must not matter: the same world uploaded in random orders, with random resends
(identical, or a broken version first and the real one later), evaluated by the worker as it goes,
ends with the same set of open findings as a sweep of the world uploaded in dependency order."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imsp.config import Settings
from tests.conftest import _empty_all_tables
from tests.supervision.builders import NOW, Platform, key_of, received_at, run, world

World = dict[str, list[dict[str, Any]]]


def _world() -> World:
    """A world with violations of rules that read several datasets."""
    w = world()
    w["prescription"][0]["recipeCategory"] = "4"  # R19
    w["prescription"][1]["auditDoctorCertID"] = w["prescription"][1]["doctorCertID"]  # R24, R09
    w["outpatient"][2]["visitType"] = "0"  # R13 (its visit has a prescription)
    w["prescription_item"][0]["specialDrugClass"] = "2"  # R19 via an item
    w["agreement"] = [a for a in w["agreement"] if a["protocolType"] != "3"]  # R17
    w["doctor"][0]["workStatus"] = "2"  # R04 for every record of doctor 0
    pid = w["consult"][0]["patientId"]
    w["patient"] = [p for p in w["patient"] if p["patientId"] != pid]  # R43
    return w


WORLD = _world()
ITEMS = [(ds, i) for ds, docs in WORLD.items() for i in range(len(docs))]


def _open(findings: list[Any]) -> set[tuple[str, str, str, str, str]]:
    return {
        (f.rule_id, f.dataset, f.key, f.severity, "|".join(sorted(e["field"] for e in f.evidence)))
        for f in findings
        if f.status in ("pending_review", "confirmed", "rectifying", "overdue")
    }


def _expected(settings_: Settings) -> set[tuple[str, str, str, str, str]]:
    async def go() -> set[tuple[str, str, str, str, str]]:
        p = Platform(settings_)
        try:
            await p.upload_world(WORLD)
            await p.sweep()
            return _open(await p.findings())
        finally:
            await p.close()

    return run(go())


def _broken(ds: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A wrong first version of a record (the hospital corrects it later)."""
    if ds == "prescription":
        return dict(doc, recipeCategory="5", doctorSign=None, caCertSN=None, signTime=None)
    if ds == "doctor":
        return dict(doc, workStatus="3")
    if ds == "organization":
        return dict(doc, securityLevel="2")
    return dict(doc)


@settings(
    max_examples=6,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
@given(
    order=st.permutations(ITEMS),
    resends=st.lists(st.sampled_from(ITEMS), max_size=12),
    corrected=st.lists(st.sampled_from(ITEMS), max_size=6),
    every=st.integers(min_value=1, max_value=40),
)
def test_same_open_findings_in_any_order_with_resends(
    settings: Settings,
    order: list[tuple[str, int]],
    resends: list[tuple[str, int]],
    corrected: list[tuple[str, int]],
    every: int,
) -> None:
    if settings.sqlalchemy_url not in _EXPECTED:
        _EXPECTED[settings.sqlalchemy_url] = _expected_fresh(settings)
    expected = _EXPECTED[settings.sqlalchemy_url]
    _empty_all_tables(settings)

    async def go() -> set[tuple[str, str, str, str, str]]:
        p = Platform(settings)
        try:
            await p.institution()
            for t in WORLD["telemedicine"]:
                await p.institution(t["invitedOrgCode"], "远程医疗合作机构")
            fixed = set(corrected)
            plan = list(order)
            for n, item in enumerate(resends):  # identical resends anywhere later
                plan.insert(min(len(plan), plan.index(item) + 1 + n % 5), item)
            sent: set[tuple[str, int]] = set()
            for step, (ds, i) in enumerate(plan):
                doc = WORLD[ds][i]
                if (ds, i) in fixed and (ds, i) not in sent:
                    await p.upload(ds, [_broken(ds, doc)], at=received_at(ds, doc))
                await p.upload(ds, [doc], at=received_at(ds, doc))
                sent.add((ds, i))
                if step % every == 0:
                    await p.work(now=NOW)
            await p.work(now=NOW)
            return _open(await p.findings())
        finally:
            await p.close()

    assert run(go()) == expected


_EXPECTED: dict[str, set[tuple[str, str, str, str, str]]] = {}


def _expected_fresh(settings_: Settings) -> set[tuple[str, str, str, str, str]]:
    _empty_all_tables(settings_)
    got = _expected(settings_)
    assert {r for r, *_ in got} >= {"R04", "R09", "R13", "R17", "R19", "R24", "R43"}
    return got


def test_world_keys_are_unique() -> None:
    keys = [(ds, key_of(ds, WORLD[ds][i])) for ds, i in ITEMS]
    assert len(keys) == len(set(keys))
