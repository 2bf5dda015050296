"""A generated world is compliant with every supervision rule: hospitals upload generated test data
during access confirmation (接入确认), whose data-quality check is supervision, and must not be
shown findings that are artefacts of the generator. Violations come only from explicit mutation
(``tests/supervision/builders.py``, ``bench/supervision_data.py``).

The rules run in memory on one :class:`~imsp.supervision.facts.Index` holding the whole world, as
the platform holds it after a punctual upload: every business record received one hour after its
business time, base data two months before the evaluation, the hospital and the partners its
telemedicine records invite registered.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from imsp.clock import BEIJING
from imsp.standard.model import load_standard
from imsp.standard.sample import DEFAULT_START, SPAN_DAYS, generate_all, vocab
from imsp.standard.sample.world import PAEDIATRIC_AGE
from imsp.supervision.engine import Outcome, evaluate
from imsp.supervision.facts import Index, Rec, as_time

ORG = "12130000MB1A2B3C4R"
INSTITUTION = 1
World = dict[str, list[dict[str, Any]]]


def evaluated_at(start: date, span_days: int) -> datetime:
    """Two weeks after the business days from ``start`` (grace periods are long over)."""
    day = start + timedelta(days=span_days + 14)
    return datetime(day.year, day.month, day.day, 9, tzinfo=BEIJING)


def _received(dataset: str, doc: dict[str, Any], now: datetime) -> datetime:
    field = load_standard().datasets[dataset].columns.get("business_time")
    t = as_time(doc.get(field)) if field else None
    if t is None:
        return now - timedelta(days=60)
    return (t.replace(tzinfo=BEIJING) + timedelta(hours=1)).astimezone(UTC)


def outcomes(world: World, now: datetime | None = None) -> list[Outcome]:
    """Every rule on every record of ``world`` at ``now`` (default: two weeks after a world of
    the default days): the outcomes that found something."""
    now = now or evaluated_at(DEFAULT_START, SPAN_DAYS)
    std = load_standard()
    idx = Index(now=now, grace=timedelta(hours=48), institution_org={INSTITUTION: ORG})
    idx.org_codes.add(ORG)
    for t in world.get("telemedicine", []):  # the partners, registered as the builders do
        idx.org_codes.update({t["applyOrgCode"], t["invitedOrgCode"]})
    subjects: list[Rec] = []
    for code, docs in world.items():
        ds = std.datasets[code]
        visit_field = ds.columns.get("visit_no")
        for doc in docs:
            visit = doc.get(visit_field) if visit_field else None
            rec = Rec(
                id=len(subjects) + 1,
                institution_id=INSTITUTION,
                dataset=code,
                key="|".join(str(doc.get(k, "")) for k in ds.key),
                version=1,
                created_at=_received(code, doc, now),
                doc=dict(doc),
                voided=doc.get("operType") == "3",
                visit_no=visit if isinstance(visit, str) and visit else None,
            )
            idx.add(rec)
            subjects.append(rec)
    return evaluate(subjects, idx, compliant=False)


@cache
def _world(count: int, seed: int, start: date = DEFAULT_START, span_days: int = SPAN_DAYS) -> World:
    return generate_all(count, seed=seed, org_code=ORG, start=start, span_days=span_days)


def _summary(found: list[Outcome]) -> tuple[Counter[str], list[tuple[str, str, str, Any]]]:
    by_rule = Counter(o.rule_id for o in found)
    examples: dict[str, tuple[str, str, str, Any]] = {}
    for o in found:
        p = o.verdict.problems[0] if o.verdict.problems else {"field": "?", "message": "pending"}
        examples.setdefault(o.rule_id, (o.rule_id, o.subject.key, p["field"], p["message"]))
    return by_rule, sorted(examples.values())


@pytest.mark.parametrize(
    ("count", "seed"),
    # 1–3: the smallest worlds (the client's self-check uploads 3 of each); 6/4: the supervision
    # tests' world; then worlds with every department and the staff pool full
    [(1, 0), (2, 1), (3, 1), (6, 4), (11, 5), (60, 0), (60, 1), (400, 2), (1500, 3)],
)
def test_a_generated_world_raises_no_finding_of_any_rule(count: int, seed: int) -> None:
    world = _world(count, seed)
    assert len(world["prescription"]) == count
    assert _summary(outcomes(world)) == (Counter(), [])


@pytest.mark.parametrize(
    ("start", "span_days"),
    # the benchmarks' one day; business days running into the next year (liability insurance)
    [(date(2026, 3, 2), 1), (date(2025, 12, 20), 30)],
)
def test_other_business_days_raise_no_finding_either(start: date, span_days: int) -> None:
    world = _world(200, 7, start, span_days)
    found = outcomes(world, evaluated_at(start, span_days))
    assert _summary(found) == (Counter(), [])


def test_the_check_sees_a_mutated_record() -> None:
    """The in-memory evaluation is not blind: one prescription reviewed by its own prescriber
    (R24) and a doctor without liability insurance (R07) are found."""
    world = {k: [dict(d) for d in v] for k, v in _world(60, 0).items()}
    assert outcomes(world) == []
    rx = world["prescription"][0]
    rx["auditDoctorCertID"] = rx["doctorCertID"]
    doctor = next(d for d in world["doctor"] if d["doctorCertID"] == rx["doctorCertID"])
    doctor["policyNo"] = None
    found = {(o.rule_id, o.subject.key) for o in outcomes(world)}
    assert ("R24", rx["recipeID"]) in found
    assert ("R07", rx["recipeID"]) in found


def test_a_world_without_a_paediatrician_has_no_child_under_six() -> None:
    """World._make_patient makes a child six years older when nobody could see it (R12): that
    stays within the ages of every profile that starts below six."""
    for profile in vocab.PROFILES:
        if profile.ages[0] < PAEDIATRIC_AGE:
            assert profile.ages[1] >= 2 * PAEDIATRIC_AGE - 1, profile.name
    small = _world(9, 0)  # the first paediatrician is staff 9
    assert not any(d["subjectCode"] == "07" for d in small["doctor"])
    assert min(p["age"] for p in small["prescription"]) >= PAEDIATRIC_AGE
    assert min(p["age"] for p in _world(400, 2)["prescription"]) < PAEDIATRIC_AGE


def test_every_business_event_is_before_the_evaluation() -> None:
    """The evaluation judges no record from its future (R43/R44 would wait, R45 misjudge)."""
    now = evaluated_at(DEFAULT_START, SPAN_DAYS)
    for rx in _world(60, 0)["prescription"]:
        assert as_time(rx["datein"]) < now.replace(tzinfo=None) - timedelta(days=14)
