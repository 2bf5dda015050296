"""Evaluating rules over stored records and keeping findings in step with the data.

* :func:`evaluate` — pure: every selected rule on every record of a loaded :class:`Index`.
* :func:`apply` — turns verdicts into findings: a new problem raises a finding (待核实); the same
  problem seen again updates it (evidence, last seen, version); a record that no longer breaks
  the rule closes its open finding as 已整改-重新上传, linking the violating and the corrected
  versions; a rule waiting for a referenced record is kept in ``supervision_pending``.
* :func:`evaluate_records` — load + evaluate + apply for a batch of records (sweeps, the worker).

Everything is idempotent: evaluating the same data twice changes nothing but ``last_seen``, so
a batch that is retried after a crash never duplicates a finding.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.standard.model import load_standard
from imsp.standard.ruleset import load_rules
from imsp.supervision import bulk, workflow
from imsp.supervision.facts import Index, Rec, Verdict
from imsp.supervision.loading import BaseCache, among, chunk_size, chunks, load_index
from imsp.supervision.models import Finding, FindingEvent, PendingCheck
from imsp.supervision.predicates import PREDICATES

__all__ = [
    "Outcome",
    "Stats",
    "apply",
    "evaluate",
    "evaluate_records",
    "rules_for",
    "try_rule",
    "without_gc",
]


class Outcome(NamedTuple):
    """One rule's verdict on one record (a tuple: a batch makes ~16,000 of these)."""

    rule_id: str
    verdict: Verdict

    @property
    def subject(self) -> Rec:
        return self.verdict.subject


@dataclass(slots=True)
class Stats:
    """What a run did; ``seconds``/``checks`` per rule feed the sweep benchmark."""

    records: int = 0
    raised: int = 0
    updated: int = 0
    rectified: int = 0
    pending: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)

    def add(self, other: Stats) -> None:
        self.records += other.records
        self.raised += other.raised
        self.updated += other.updated
        self.rectified += other.rectified
        self.pending += other.pending
        for k, v in other.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v
        for k, n in other.checks.items():
            self.checks[k] = self.checks.get(k, 0) + n


@contextmanager
def without_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a batch (a sweep's, a worker round's): a batch
    allocates tens of thousands of small objects (decoded documents, verdicts) that die by
    reference counting, and the collector's repeated passes over them cost as much as the
    evaluation itself. What a batch leaves for the collector is collected after it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def rules_for(dataset: str, rule_ids: Collection[str] | None = None) -> list[str]:
    """Ids of the rules evaluated on records of ``dataset`` (restricted to ``rule_ids``)."""
    return [
        rid
        for rid, p in PREDICATES.items()
        if dataset in p.subjects and (rule_ids is None or rid in rule_ids)
    ]


def evaluate(
    subjects: Sequence[Rec],
    idx: Index,
    *,
    rule_ids: Collection[str] | None = None,
    stats: Stats | None = None,
    compliant: bool = True,
) -> list[Outcome]:
    """Every selected rule on every subject (a voided record breaks no rule). With
    ``compliant`` False only the outcomes that found something (problems, missing references,
    a pending decision) are returned: the engine's own batches know which rules ran on which
    records (:func:`rules_for`), and most outcomes are compliant."""
    out: list[Outcome] = []
    timer = time.perf_counter
    groups: dict[str, list[Rec]] = {}
    for rec in subjects:
        groups.setdefault(rec.dataset, []).append(rec)
    for dataset, recs in groups.items():
        # a rule checks into a scratch verdict, moved from record to record while it stays
        # empty; one it leaves empty is not kept: the outcome (if compliant ones are asked for)
        # shares the record's one empty verdict instead (most verdicts are empty, and a sweep
        # would otherwise keep one per rule and record). Verdicts are never changed once kept.
        empty = [Verdict(rec) for rec in recs] if compliant else []
        for rid in sorted(rules_for(dataset, rule_ids)):
            check = PREDICATES[rid].check
            t0 = timer()
            v = Verdict(recs[0])
            for i, rec in enumerate(recs):
                if rec.voided:
                    if compliant:
                        out.append(Outcome(rid, empty[i]))
                    continue
                v.subject = rec
                check(rec, idx, v)
                if v.problems or v.missing or v.due is not None:
                    out.append(Outcome(rid, v))
                    v = Verdict(rec)
                    continue
                if v.involved:  # records compared with: only kept beside problems
                    v.involved.clear()
                if compliant:
                    out.append(Outcome(rid, empty[i]))
            if stats is not None:
                stats.seconds[rid] = stats.seconds.get(rid, 0.0) + timer() - t0
                stats.checks[rid] = stats.checks.get(rid, 0) + len(recs)
    return out


#: dataset → the field naming its doctor (数据标准 columns.doctor_cert_id), for per-doctor views.
_DOCTOR_FIELD: Final[dict[str, str]] = {
    ds.code: ds.columns["doctor_cert_id"]
    for ds in load_standard().datasets.values()
    if "doctor_cert_id" in ds.columns
}


def _doctor_of(rec: Rec) -> str | None:
    f = _DOCTOR_FIELD.get(rec.dataset)
    return (rec[f] or None) if f else None


def _records_of(v: Verdict) -> list[dict[str, Any]]:
    others = sorted(v.involved.values(), key=lambda r: (r.dataset, r.key))
    return [v.subject.ref()] + [r.ref() for r in others if r is not v.subject]


#: Columns of an existing finding that :func:`apply` reads (plain rows, no ORM objects).
_FT = cast(Table, Finding.__table__)
_PT = cast(Table, PendingCheck.__table__)
_ET = cast(Table, FindingEvent.__table__)
_F = _FT.c
_P = _PT.c
_FINDING_COLS = (
    _F.id,
    _F.rule_id,
    _F.institution_id,
    _F.dataset,
    _F.key,
    _F.status,
    _F.record_version,
    _F.severity,
    _F.resolution,
    _F.resolved_version,
)
_PENDING_COLS = (_P.institution_id, _P.dataset, _P.key, _P.checks, _P.due_at)

#: Statements run once per batch with many parameter sets (executemany).
_SEEN = update(Finding).where(_F.id == bindparam("_id"))
_DROP_PENDING = delete(PendingCheck).where(
    _P.institution_id == bindparam("_inst"),
    _P.dataset == bindparam("_ds"),
    _P.key == bindparam("_key"),
)
Key = tuple[str, int, str, str]  # rule, institution, dataset, business key
Subject = tuple[int, str, str]  # institution, dataset, business key


def _system_event(
    f: dict[str, Any], action: str, now: datetime, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The event row of a system transition of finding ``f`` (a plain dict, updated in place)."""
    step = workflow.step_for(f["status"], action, workflow.SYSTEM)
    event = {
        "finding_id": f["id"],
        "at": now,
        "action": action,
        "from_status": f["status"],
        "to_status": step.target,
        "actor": "system",
        "actor_role": workflow.SYSTEM,
        "text": "",
        "attachment": None,
        "data": dict(data or {}),
    }
    f["status"] = step.target
    return event


async def _existing(
    session: AsyncSession, subjects: Sequence[Rec]
) -> tuple[dict[Key, dict[str, Any]], dict[Subject, tuple[dict[str, Any], datetime | None]]]:
    """The findings (as dicts) and pending rows (record → (checks, due_at)) of the evaluated
    records: one query each per batch, plain rows. (Institutions, datasets and keys are matched
    separately: rows of other records may come back, and are ignored by :func:`apply`.)"""
    insts = sorted({r.institution_id for r in subjects})
    datasets = sorted({r.dataset for r in subjects})
    keys = sorted({r.key for r in subjects})
    conn = await session.connection()
    findings: dict[Key, dict[str, Any]] = {}
    pending: dict[Subject, tuple[dict[str, Any], datetime | None]] = {}
    for part in chunks(keys, chunk_size(session)):
        rows = await conn.execute(
            select(*_FINDING_COLS).where(
                _F.institution_id.in_(insts), _F.dataset.in_(datasets), among(session, _F.key, part)
            )
        )
        for row in rows.mappings():
            f = dict(row)
            findings[(f["rule_id"], f["institution_id"], f["dataset"], f["key"])] = f
        rows = await conn.execute(
            select(*_PENDING_COLS).where(
                _P.institution_id.in_(insts), _P.dataset.in_(datasets), among(session, _P.key, part)
            )
        )
        pending.update(((r[0], r[1], r[2]), (r[3], r[4])) for r in rows)
    return findings, pending


#: The pending-check upsert of :func:`_pending_insert` on PostgreSQL (``bulk.insert_rows``).
_PG_PENDING_TAIL: Final = (
    "ON CONFLICT (institution_id, dataset, key) "
    "DO UPDATE SET checks = excluded.checks, due_at = excluded.due_at"
)


def _pending_insert(session: AsyncSession) -> Any:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of pending checks (a check another worker
    created meanwhile is updated, not duplicated); ``since`` of an existing check is kept."""
    stmt: Any = (
        pg_insert(PendingCheck)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite_insert(PendingCheck)
    )
    # RETURNING makes SQLAlchemy send the rows as multi-row VALUES ("insertmanyvalues", ~1,000
    # a statement) instead of one statement per row
    return stmt.on_conflict_do_update(
        index_elements=[_P.institution_id, _P.dataset, _P.key],
        set_={"checks": stmt.excluded.checks, "due_at": stmt.excluded.due_at},
    ).returning(_P.key)


def _pending_changes(
    pending: Mapping[Subject, tuple[dict[str, Any], datetime | None]],
    evaluated: Mapping[Subject, AbstractSet[str]],
    waiting: Mapping[Subject, dict[str, list[dict[str, str]]]],
    dues: Mapping[Subject, datetime],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows to delete, rows to upsert) of ``supervision_pending`` for the evaluated records.

    A record's row keeps the waiting rules this batch did not evaluate (a sweep of some rules
    only), with its earlier ``due_at`` (at worst the record is evaluated once more at that time);
    the rules evaluated now replace theirs. An unchanged row is not written again."""
    drop: list[dict[str, Any]] = []
    upsert: list[dict[str, Any]] = []
    for subject, rules in evaluated.items():
        old_checks, old_due = pending.get(subject, ({}, None))
        kept = {r: m for r, m in old_checks.items() if r not in rules}
        checks = dict(sorted((kept | waiting.get(subject, {})).items()))
        if not checks:
            if subject in pending:
                drop.append({"_inst": subject[0], "_ds": subject[1], "_key": subject[2]})
            continue
        due = dues.get(subject)
        if kept and old_due is not None:
            due = old_due if due is None else min(due, old_due)
        if subject in pending and checks == old_checks and due == old_due:
            continue
        # new: inserted with ``since`` = now; existing: checks and due_at updated
        upsert.append(
            {"institution_id": subject[0], "dataset": subject[1], "key": subject[2],
             "checks": checks, "since": now, "due_at": due}
        )  # fmt: skip
    return drop, upsert


async def apply(
    session: AsyncSession,
    subjects: Sequence[Rec],
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    rule_ids: Collection[str] | None = None,
) -> Stats:
    """Bring findings and pending checks of ``subjects`` in line with ``outcomes`` (see the
    module doc): every selected rule of its dataset was evaluated on each subject, and
    ``outcomes`` holds what they found (a rule with no outcome for a subject found it
    compliant: its open finding, if any, is closed).

    Set-based: the batch's findings and pending checks are read in one query each, and written
    with one statement per kind of change (executemany), whatever the batch's size."""
    ran = {ds: frozenset(rules_for(ds, rule_ids)) for ds in {r.dataset for r in subjects}}
    # per evaluated record: the rules evaluated, and those still waiting (rule → missing)
    evaluated: dict[Subject, frozenset[str]] = {}
    judged: dict[Subject, Rec] = {}
    for r in subjects:
        rules = ran[r.dataset]
        if rules:
            subject = (r.institution_id, r.dataset, r.key)
            evaluated[subject], judged[subject] = rules, r
    stats = Stats(records=len({(ds, key) for _, ds, key in judged}))
    if not judged:
        return stats
    catalogue = load_rules()
    findings, pending = await _existing(session, list(judged.values()))
    new: dict[Key, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []  # findings seen again, status unchanged
    moved: list[dict[str, Any]] = []  # findings whose status a system transition changed
    waiting: dict[Subject, dict[str, list[dict[str, str]]]] = {}
    dues: dict[Subject, datetime] = {}
    answered: set[Key] = set()  # (rule, record) whose outcome found a problem or waits
    for o in outcomes:
        v = o.verdict
        if not v.problems and not v.missing and v.due is None:
            continue  # compliant: see below
        rec = v.subject
        k = (o.rule_id, rec.institution_id, rec.dataset, rec.key)
        f = findings.get(k)
        subject = (rec.institution_id, rec.dataset, rec.key)
        answered.add(k)
        if v.problems:
            records = _records_of(v)
            if f is None:
                new[k] = {
                    "rule_id": o.rule_id,
                    "rule_version": catalogue[o.rule_id].version,
                    "institution_id": rec.institution_id,
                    "dataset": rec.dataset,
                    "key": rec.key,
                    "record_id": rec.id,
                    "record_version": rec.version,
                    "severity": v.severity or "violation",
                    "status": workflow.INITIAL,
                    "records": records,
                    "evidence": v.problems,
                    "business_time": rec.business_time,
                    "doctor_cert_id": _doctor_of(rec),
                    "first_seen": now,
                    "last_seen": now,
                    "updated_at": now,
                    "assignee": None,
                    "due_at": None,
                    "resolution": None,
                    "resolved_version": None,
                }
                continue
            recur = f["status"] == "rectified" and (
                f["resolution"] == "resubmitted"
                or f["resolved_version"] is None
                or rec.version > f["resolved_version"]
            )
            row = {
                "_id": f["id"],
                "rule_version": catalogue[o.rule_id].version,
                "severity": v.severity or f["severity"],
                "evidence": v.problems,
                "records": records,
                "record_id": rec.id,
                "record_version": rec.version,
                "last_seen": now,
                "business_time": rec.business_time,
            }
            f["record_version"] = rec.version
            if recur:
                events.append(_system_event(f, "recur", now, {"version": rec.version}))
                row |= {
                    "status": f["status"],
                    "updated_at": now,
                    "resolution": None,
                    "resolved_version": None,
                }
                f["resolution"] = f["resolved_version"] = None
                moved.append(row)
            else:
                seen.append(row)
            stats.updated += 1
        elif v.missing or v.due is not None:
            stats.pending += 1
            missing = v.missing
            if len(missing) > 1:
                missing = sorted(missing, key=lambda m: (m["dataset"], m["field"], m["key"]))
            waiting.setdefault(subject, {})[o.rule_id] = missing
            if v.due is not None and (subject not in dues or v.due < dues[subject]):
                dues[subject] = v.due
    # compliant now: an open finding of a rule evaluated on its record closes itself
    for k, f in findings.items():
        rule_id, subject = k[0], k[1:]
        if k in answered or rule_id not in evaluated.get(subject, ()):
            continue
        if f["status"] in workflow.OPEN_STATES:
            rec = judged[subject]
            data = {
                "from_version": f["record_version"],
                "to_version": rec.version,
                "records": [rec.ref()],
            }
            events.append(_system_event(f, "resubmitted", now, data))
            f["resolution"], f["resolved_version"] = "resubmitted", rec.version
            moved.append(
                {
                    "_id": f["id"],
                    "status": f["status"],
                    "updated_at": now,
                    "resolution": "resubmitted",
                    "resolved_version": rec.version,
                    "last_seen": now,
                }
            )
            stats.rectified += 1
    drop_pending, upsert_pending = _pending_changes(pending, evaluated, waiting, dues, now)
    conn = await session.connection()
    postgres = conn.dialect.name == "postgresql"
    if drop_pending:
        if postgres:
            await bulk.delete_keys(
                conn,
                _PT,
                [
                    {"institution_id": p["_inst"], "dataset": p["_ds"], "key": p["_key"]}
                    for p in drop_pending
                ],
            )  # fmt: skip
        else:
            await conn.execute(_DROP_PENDING, drop_pending)
    if upsert_pending:
        if postgres:
            await bulk.insert_rows(conn, _PT, upsert_pending, tail=_PG_PENDING_TAIL)
        else:
            await conn.execute(_pending_insert(session), upsert_pending)
    if seen:
        await conn.execute(_SEEN, seen)
    if moved:
        # one statement per shape of parameter set (seen again + recur, or rectified)
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in moved:
            shapes.setdefault(tuple(sorted(row)), []).append(row)
        for rows in shapes.values():
            await conn.execute(_SEEN, rows)
    if new:
        # multi-row INSERT … RETURNING for the batch's new findings (a sweep may raise many);
        # each id comes back with its finding's key, so the rows' order does not matter (an
        # order-preserving RETURNING costs a statement per row on SQLite)
        if postgres:
            returned: Any = await bulk.insert_rows(
                conn, _FT, list(new.values()),
                tail="RETURNING id, rule_id, institution_id, dataset, key",
            )  # fmt: skip
        else:
            returned = await conn.execute(
                insert(Finding).returning(_F.id, _F.rule_id, _F.institution_id, _F.dataset, _F.key),
                list(new.values()),
            )
        for fid, rid, inst, ds, bkey in returned:
            row = new[(rid, inst, ds, bkey)]
            events.append(
                {
                    "finding_id": fid,
                    "at": now,
                    "action": "raise",
                    "from_status": None,
                    "to_status": workflow.INITIAL,
                    "actor": "system",
                    "actor_role": workflow.SYSTEM,
                    "text": "",
                    "attachment": None,
                    "data": {"version": row["record_version"]},
                }
            )
        stats.raised += len(new)
    if events:
        if postgres:
            await bulk.insert_rows(conn, _ET, events)
        else:
            await conn.execute(insert(FindingEvent).returning(FindingEvent.id), events)
    return stats


async def evaluate_records(
    session: AsyncSession,
    subjects: Sequence[Rec],
    *,
    now: datetime,
    grace: timedelta,
    rule_ids: Collection[str] | None = None,
    org_registry: set[str] | None = None,
    cache: BaseCache | None = None,
) -> Stats:
    """Load what ``subjects`` refer to, evaluate the selected rules and apply the outcomes.
    ``cache`` (sweeps only) keeps base data loaded by earlier batches."""
    stats = Stats()
    if not subjects:
        return stats
    idx = await load_index(
        session, subjects, now=now, grace=grace, org_registry=org_registry, cache=cache
    )
    outcomes = evaluate(subjects, idx, rule_ids=rule_ids, stats=stats, compliant=False)
    applied = await apply(session, subjects, outcomes, now=now, rule_ids=rule_ids)
    applied.seconds, applied.checks = stats.seconds, stats.checks
    return applied


def try_rule(
    rule_id: str,
    records: Mapping[str, Sequence[dict[str, Any]]],
    *,
    now: datetime,
    grace: timedelta = timedelta(hours=48),
) -> list[Outcome]:
    """Run one rule against a pasted record set (dataset code → records), without a database:
    the portal's "test this rule" form. Records count as received at ``now``."""
    std = load_standard()
    idx = Index(now=now, grace=grace)
    received = now.astimezone(UTC)
    subjects: list[Rec] = []
    for ds_code, docs in records.items():
        ds = std.dataset(ds_code)
        for i, doc in enumerate(docs):
            key = "|".join(str(doc.get(k, "")) for k in ds.key)
            visit_field = ds.columns.get("visit_no")
            visit = doc.get(visit_field) if visit_field else None
            rec = Rec(
                id=-(i + 1),
                institution_id=0,
                dataset=ds.code,
                key=key,
                version=1,
                created_at=received,
                doc=dict(doc),
                voided=doc.get("operType") == "3",
                visit_no=visit if isinstance(visit, str) and visit else None,
            )
            idx.add(rec)
            subjects.append(rec)
            if ds.code == "organization":
                idx.institution_org.setdefault(0, key)
    predicate = PREDICATES[rule_id]
    mine = [r for r in subjects if r.dataset in predicate.subjects]
    return evaluate(mine, idx, rule_ids={rule_id})
