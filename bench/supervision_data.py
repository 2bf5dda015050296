"""The data of the supervision benchmarks (not a test): sample worlds (``imsp.standard.sample``,
compliant as generated) with ~1 % of their business records mutated to break a rule.

Used by ``bench_supervision.py`` (``sweep``: :func:`mutate` over a world of June 2025; ``ingest
--data world``: :func:`world_of`) and ``bench_worker.py`` (shape b).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Final

import psycopg

import bench_ingest as bi

BEIJING = dt.timezone(dt.timedelta(hours=8))
World = dict[str, list[dict[str, Any]]]


def mutate(
    ds: str, doc: dict[str, Any], rng: random.Random, *, force: bool = False
) -> dict[str, Any]:
    """About 1 % of business records break a rule (a different one each time); ``force``: this
    one does."""
    if not force and rng.random() >= 0.01:
        return doc
    if ds == "prescription":
        breaks: list[dict[str, Any]] = [
            {"recipeCategory": "4"},  # R19
            {"auditDoctorCertID": doc["doctorCertID"]},  # R24, R09
            {"doctorSign": None, "caCertSN": None},  # R21
            {"effectivePeriod": 5},  # R25
            {"totalFee": 1.0},  # R34
        ]
        return doc | rng.choice(breaks)
    if ds == "outpatient":
        visit_breaks: list[dict[str, Any]] = [{"visitType": "0"}, {"processDataURL": None}]
        return doc | rng.choice(visit_breaks)
    if ds == "telemedicine":
        return dict(doc, consentFlag="0")
    return doc


def register_partners(conn: psycopg.Connection[Any], world: World) -> None:
    """Register the hospitals the world's telemedicine records invite (R42: both sides of a
    telemedicine record must be institutions the platform knows)."""
    for code in sorted({t["invitedOrgCode"] for t in world["telemedicine"]} - {bi.ORG}):
        conn.execute(
            "INSERT INTO institution (org_code, name, created_at) VALUES (%s, '合作医院', now()) "
            "ON CONFLICT (org_code) DO NOTHING",
            (code,),
        )


#: Business events of a world copy: one day (the sample generator spreads them over 30).
_WORLD_DAYS = 1


def world_of(count: int) -> dict[str, list[dict[str, Any]]]:
    """One sample world (every dataset, ``count`` objects each) for ``--data world``: its
    business events on one day, tomorrow in Beijing — registrations and payments made up to two
    days before their visit are then today or yesterday, so T+1 holds for every record —,
    compliant as generated, then mutated like the sweep's data (~1 % of prescriptions, visits and
    telemedicine records break a rule)."""
    from imsp.standard.sample import generate_all

    day = dt.datetime.now(BEIJING).date() + dt.timedelta(days=1)
    world = generate_all(count, seed=11, org_code=bi.ORG, start=day, span_days=_WORLD_DAYS)
    rng = random.Random(20251130)
    mutated = {code: [mutate(code, doc, rng) for doc in docs] for code, docs in world.items()}
    # a small world may draw no mutation at all: then one, so every copy carries a finding
    if all(mutated[code] == world[code] for code in _MUTABLE):
        code = rng.choice(_MUTABLE)
        i = rng.randrange(len(world[code]))
        mutated[code][i] = mutate(code, world[code][i], rng, force=True)
    return mutated


#: The datasets :func:`mutate` changes.
_MUTABLE: Final = ("prescription", "outpatient", "telemedicine")
