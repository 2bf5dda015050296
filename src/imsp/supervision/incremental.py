"""Incremental evaluation after uploads: which records a stored change may affect.

A changed record is re-evaluated itself, and so is every record whose rules read it (order of
upload must not matter — a rule that was pending on this record now decides):

* the other records of the same visit (业务号 ``visit_no``/``bussID``: 门诊病历, 处方, 检查检验,
  缴费, 评价, 检验/检查报告 …);
* a patient → records of that patient; a doctor → records of that doctor (and prescriptions
  that doctor reviewed); a department → records of that department;
* a prescription item ↔ its prescription;
* an organization → every record of the institution for the rules that read it (R01, R05, R06,
  R43) and every telemedicine record for R42; an agreement → outpatient records for R17.

:func:`evaluate_changes` does this for a batch of changes (the worker's claimed changes: leaving
out the affected records whose own change is still queued, unclaimed — they are evaluated when it
is claimed), then
:func:`evaluate_due` decides the pending checks whose grace period has ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import BigInteger, ColumnElement, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.exchange.models import Record, RecordChange
from imsp.supervision.engine import Stats, evaluate_records
from imsp.supervision.facts import Rec
from imsp.supervision.loading import (
    VISIT_DATASETS,
    VISIT_READS,
    BaseCache,
    among,
    chunk_size,
    chunks,
    load_by_keys,
    load_items_of,
    load_records,
)
from imsp.supervision.models import PendingCheck

__all__ = ["Change", "evaluate_changes", "evaluate_due", "expand"]

#: (institution id, dataset, business key) of a stored record that changed.
Change = tuple[int, str, str]

#: Rules re-run over a whole institution when its organization / agreements change.
ORGAN_RULES: Final = frozenset({"R01", "R05", "R06", "R43"})
AGREEMENT_RULES: Final = frozenset({"R17"})
_VISIT_KEYED: Final = frozenset({"consult", "register", "telemedicine"})


async def _others(
    session: AsyncSession,
    inst: int,
    known: AbstractSet[int],
    found: dict[int, Rec],
    cond: ColumnElement[bool],
) -> list[Rec]:
    """Records of ``inst`` matching ``cond``, other than those of ids ``known`` (the changed
    records, whose documents are decoded already); added to ``found``. (The known ids are
    left out here, not in the statement: ``NOT id = ANY(array)`` was tested element by element
    on every row of a prepared statement's generic plan.)"""
    loaded = [
        rec
        for rec in await load_records(session, Record.institution_id == inst, cond)
        if rec.id not in known
    ]
    for rec in loaded:
        found.setdefault(rec.id, rec)
    return loaded


async def expand(
    session: AsyncSession, changed: Sequence[Rec], cache: BaseCache | None = None
) -> list[Rec]:
    """``changed`` and every record whose rules read one of them (organ-wide effects excluded).

    With ``cache`` (the round's), what was read here by visit number and by a prescription's
    business time is remembered as the answer to the same questions ``load_index`` asks next
    (the records of a visit, the items of that time): asked once per round, not twice."""
    found: dict[int, Rec] = {r.id: r for r in changed}
    by_inst: dict[int, list[Rec]] = {}
    for r in changed:
        by_inst.setdefault(r.institution_id, []).append(r)
    size = chunk_size(session)
    for inst, recs in by_inst.items():
        # the changed records themselves are loaded already (their documents decoded): not again
        known = {r.id for r in recs}

        # visit number → the datasets of this round's records in it
        arrived: dict[str, set[str]] = {}
        for r in recs:
            for number in (r.visit_no, r["bussID"], r.key if r.dataset in _VISIT_KEYED else ""):
                if number:
                    arrived.setdefault(number, set()).add(r.dataset)
        for part in chunks(sorted(arrived), size):
            loaded = [
                rec
                for rec in await load_records(
                    session, Record.institution_id == inst, among(session, Record.visit_no, part)
                )
                if rec.id not in known
            ]
            # a record of the visit is evaluated again only if its rules read one of the
            # datasets that arrived (a registration reads none: a prescription of its visit
            # arriving does not evaluate it again)
            for rec in loaded:
                reads = VISIT_READS.get(rec.dataset)
                if (
                    reads is not None
                    and rec.visit_no is not None
                    and not reads.isdisjoint(arrived.get(rec.visit_no, ()))
                ):
                    found.setdefault(rec.id, rec)
            if cache is not None:
                asked = set(part)
                mine = [r for r in recs if r.visit_no in asked]
                cache.remember_visits(
                    [inst], part, [r for r in (*loaded, *mine) if r.dataset in VISIT_DATASETS]
                )
        for ds, column in (
            ("patient", Record.patient_id),
            ("doctor", Record.doctor_cert_id),
            ("department", Record.dept_code),
        ):
            keys = sorted({r.key for r in recs if r.dataset == ds})
            for part in chunks(keys, size):
                await _others(session, inst, known, found, among(session, column, part))
        reviewers = sorted({r.key for r in recs if r.dataset == "doctor"})
        for part in chunks(reviewers, size):
            await _others(
                session,
                inst,
                known,
                found,
                (Record.dataset == "prescription") & among(session, Record.reviewer_cert_id, part),
            )
        # a prescription's items, by key (``loading.load_items_of``); remembered as the
        # answer ``load_index`` asks for next
        prescribed = sorted({(inst, r.key) for r in recs if r.dataset == "prescription"})
        items = [found.setdefault(r.id, r) for r in await load_items_of(session, prescribed)]
        if cache is not None:
            cache.remember_items(prescribed, items)
        recipes = {r["recipeID"] for r in recs if r.dataset == "prescription_item"}
        if recipes:
            for rec in await load_by_keys(session, [inst], {"prescription": recipes}):
                found.setdefault(rec.id, rec)
    return list(found.values())


#: How far past a round's newest change :func:`_queued` looks for the queued changes of the
#: records the round affects (ids of the feed). The feed has no index by record (one would cost
#: every upload), so the question is a range of its primary key: without a bound it read the
#: whole feed every round — ~25 ms a round with 100,000 changes queued, a worker's backlog
#: making every round slower. Records whose change is further on are evaluated now and again
#: when it comes (the same result); a stream's related records are stored close together (a
#: copy of the realistic stream spans ~10,000 changes).
QUEUED_WINDOW: Final = 20_000


async def _queued(session: AsyncSession, ids: list[int], horizon: int | None = None) -> set[int]:
    """Of the records ``ids``, those with a change in the feed that no worker has claimed yet.

    Such a record need not be evaluated now: whoever claims its change evaluates it then, and
    reads it and what it refers to after that claim — so after everything committed before
    this round, the changes of this round included. (A change another worker holds is not
    skipped: that worker may have read before this round's records were stored.) A backlog
    (uploads while the worker was down, a hospital's catch-up) is mostly such records: a
    patient's change would otherwise re-evaluate every record of that patient still queued,
    each evaluated again when its own change comes.

    ``horizon`` (the round's newest change id): only changes of ids ``horizon + 1`` to
    ``horizon + QUEUED_WINDOW`` are looked at. An unclaimed change of a lower id (one whose
    upload committed after the claim) is not found, so its record is evaluated now: a subset
    of what may be left is always safe."""
    out: set[int] = set()
    postgres = session.get_bind().dialect.name == "postgresql"
    for part in chunks(ids, chunk_size(session)):
        stmt = select(RecordChange.record_id).where(RecordChange.claimed_until.is_(None))
        if postgres:
            # the ids as a set joined (hashed), not ``= ANY(array)``: a prepared statement's
            # generic plan tests an array parameter element by element for every feed row
            wanted = (
                func.unnest(bindparam(None, part, type_=ARRAY(BigInteger)))
                .table_valued("rid")
                .render_derived(name="wanted")
            )
            stmt = stmt.join(wanted, RecordChange.record_id == wanted.c.rid)
        else:
            stmt = stmt.where(RecordChange.record_id.in_(part))
        if horizon is not None:
            stmt = stmt.where(RecordChange.id > horizon, RecordChange.id <= horizon + QUEUED_WINDOW)
        rows = await session.execute(stmt)
        out.update(rows.scalars())
    return out


async def evaluate_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    now: datetime,
    grace: timedelta,
    batch: int = 500,
    claimed: bool = False,
    horizon: int | None = None,
) -> Stats:
    """Re-evaluate every record a batch of stored changes may affect (see the module doc).
    ``claimed``: the changes were claimed from the feed (the worker), so the rest of the feed
    will be too — affected records whose own change waits there are left to it (those of the
    ``QUEUED_WINDOW`` changes after ``horizon``, the newest claimed change id, when given)."""
    stats = Stats()
    wanted: dict[int, dict[str, set[str]]] = {}
    for inst, ds, key in changes:
        wanted.setdefault(inst, {}).setdefault(ds, set()).add(key)
    changed: list[Rec] = []
    for inst, by_ds in wanted.items():
        changed += await load_by_keys(session, [inst], by_ds)
    # one cache for the round: what ``expand`` read, and base data read for one part of the
    # subjects, are not read again for the next (all within this unit of work)
    cache = BaseCache(items_of={})
    subjects = await expand(session, changed, cache)
    if claimed:
        mine = {r.id for r in changed}
        queued = await _queued(session, [r.id for r in subjects if r.id not in mine], horizon)
        if queued:
            subjects = [r for r in subjects if r.id not in queued]
    for part in chunks(subjects, batch):
        stats.add(await evaluate_records(session, part, now=now, grace=grace, cache=cache))
    from imsp.supervision.sweep import sweep_in_session

    # an organization or agreement re-runs rules over a whole institution: once per round and
    # institution, however many of its records of that kind the round holds (a hospital's
    # agreements usually come together — one sweep each was hundreds of sweeps a round)
    organs = sorted({r.institution_id for r in changed if r.dataset == "organization"})
    agreements = sorted({r.institution_id for r in changed if r.dataset == "agreement"})
    for inst in organs:
        stats.add(
            await sweep_in_session(
                session, now=now, grace=grace, rule_ids=ORGAN_RULES, institution_id=inst
            )
        )
    if organs:  # a telemedicine record of any institution may invite this one (R42)
        stats.add(await sweep_in_session(session, now=now, grace=grace, rule_ids={"R42"}))
    for inst in agreements:
        stats.add(
            await sweep_in_session(
                session, now=now, grace=grace, rule_ids=AGREEMENT_RULES, institution_id=inst
            )
        )
    return stats


async def evaluate_due(
    session: AsyncSession, *, now: datetime, grace: timedelta, limit: int = 1000
) -> Stats:
    """Decide pending checks whose grace period has ended (R43, R44 become findings)."""
    rows = (
        await session.execute(
            select(PendingCheck.institution_id, PendingCheck.dataset, PendingCheck.key)
            .where(PendingCheck.due_at <= now)
            .order_by(PendingCheck.due_at)
            .limit(limit)
        )
    ).all()
    if not rows:
        return Stats()
    return await evaluate_changes(session, [(i, d, k) for i, d, k in rows], now=now, grace=grace)
