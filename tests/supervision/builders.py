"""Builders of the supervision tests: a sample world (``imsp.standard.sample``) uploaded through
the real ingest path (validator + writer of the database under test), then evaluated.

A world is one institution's mutually consistent records of every dataset. Each rule's test
mutates a fresh copy to break exactly that rule.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import select

from imsp.auth.service import ensure_institution
from imsp.clock import BEIJING
from imsp.config import Settings
from imsp.exchange.ingest import Receipt, ingest
from imsp.exchange.pg_writer import PgWriter
from imsp.exchange.sqlite_writer import SqliteWriter
from imsp.exchange.tokens import Grant
from imsp.exchange.writer import LogEntry, Writer
from imsp.standard.model import load_standard
from imsp.standard.sample import generate_all
from imsp.storage.db import Database
from imsp.supervision.engine import Stats
from imsp.supervision.facts import as_time
from imsp.supervision.incremental import Change, evaluate_changes, evaluate_due
from imsp.supervision.models import Finding, PendingCheck
from imsp.supervision.sweep import sweep

T = TypeVar("T")

ORG = "12130000MB1A2B3C4R"
SEED = 4
COUNT = 6
#: Evaluation time: two weeks after the generated month of business (June 2025).
NOW = datetime(2025, 7, 15, 9, 0, tzinfo=BEIJING)
GRACE = timedelta(hours=48)
#: Institutions a sample world's telemedicine records invite (registered for R42).
PARTNERS_NAME = "远程医疗合作机构"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@lru_cache(maxsize=8)
def _world(count: int, seed: int, org: str) -> dict[str, list[dict[str, Any]]]:
    return generate_all(count, seed=seed, org_code=org)


def world(count: int = COUNT, seed: int = SEED, org: str = ORG) -> dict[str, list[dict[str, Any]]]:
    """A fresh (mutable) copy of the sample world, compliant with every rule as generated."""
    return copy.deepcopy(_world(count, seed, org))


def received_at(dataset: str, doc: dict[str, Any]) -> datetime:
    """When a punctual hospital uploads a record: one hour after its business time (T+0)."""
    field = load_standard().datasets[dataset].columns.get("business_time")
    t = as_time(doc.get(field)) if field else None
    if t is None:
        return NOW - timedelta(days=60)
    return t.replace(tzinfo=BEIJING) + timedelta(hours=1)


class Platform:
    """The platform's database seen by a test: upload through the real ingest, evaluate, read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.writer: Writer = (
            PgWriter(settings.sqlalchemy_url)
            if self.db.dialect == "postgresql"
            else SqliteWriter(self.db)
        )
        self.grants: dict[str, Grant] = {}

    async def close(self) -> None:
        await self.writer.close()
        await self.db.dispose()

    async def institution(self, org: str = ORG, name: str = "河北省互联网医疗示范医院") -> Grant:
        if org not in self.grants:
            async with self.db.session() as s:
                inst = await ensure_institution(s, org_code=org, name=name, now=NOW)
            self.grants[org] = Grant(inst.id, org, "app-" + org[-6:], NOW + timedelta(days=3650))
        return self.grants[org]

    async def upload(
        self, dataset: str, docs: list[dict[str, Any]], *, at: datetime, org: str = ORG
    ) -> Receipt:
        grant = await self.institution(org)
        ds = load_standard().datasets[dataset]
        entry = LogEntry(
            id=uuid.uuid4(), at=at.astimezone(UTC), institution_id=grant.institution_id,
            app_id=grant.app_id, service=ds.service, dataset=ds.code, client_addr="127.0.0.1",
            size=0, sha256=None, code=200, body=b"[]",
        )  # fmt: skip
        receipt = await ingest(
            self.writer, dataset=ds, records=docs, grant=grant, dry_run=False, atomic=False,
            entry=entry, started=time.perf_counter(),
        )  # fmt: skip
        bad = [r for r in receipt.data["results"] if r["msgCode"] not in (200, 201)]
        assert not bad, bad
        return receipt

    async def upload_world(
        self,
        w: dict[str, list[dict[str, Any]]],
        *,
        org: str = ORG,
        partners: bool = True,
        delay: dict[str, timedelta] | None = None,
    ) -> list[Change]:
        """Every record, each received one hour after its business time (plus ``delay`` for
        the business keys named in it); returns the changes."""
        grant = await self.institution(org)
        if partners:
            for t in w.get("telemedicine", []):
                for code in (t["applyOrgCode"], t["invitedOrgCode"]):
                    if code != org:
                        await self.institution(code, PARTNERS_NAME)
        changes: list[Change] = []
        for ds, docs in w.items():
            key = load_standard().datasets[ds].key
            for doc in docs:
                bkey = "|".join(str(doc[k]) for k in key)
                late = (delay or {}).get(bkey, timedelta(0))
                await self.upload(ds, [doc], at=received_at(ds, doc) + late, org=org)
                changes.append((grant.institution_id, ds, bkey))
        return changes

    async def sweep(self, *, now: datetime = NOW, rules: Iterable[str] | None = None) -> Stats:
        return await sweep(
            self.db, now=now, grace=GRACE, rule_ids=set(rules) if rules is not None else None
        )

    async def changes(self, changes: list[Change], *, now: datetime = NOW) -> Stats:
        async with self.db.session() as s:
            stats = await evaluate_changes(s, changes, now=now, grace=GRACE)
            stats.add(await evaluate_due(s, now=now, grace=GRACE))
            return stats

    async def findings(self, rule_id: str | None = None) -> list[Finding]:
        async with self.db.session() as s:
            stmt = select(Finding).order_by(Finding.rule_id, Finding.dataset, Finding.key)
            if rule_id is not None:
                stmt = stmt.where(Finding.rule_id == rule_id)
            return list((await s.scalars(stmt)).all())

    async def pending(self) -> list[PendingCheck]:
        async with self.db.session() as s:
            return list((await s.scalars(select(PendingCheck))).all())

    async def tamper(
        self, dataset: str, key: str, received: datetime | None = None, **changes: Any
    ) -> None:
        """Change a stored record's document behind the validator's back, as if it had been
        accepted under an earlier version of the standard (R30, R33, R46); ``received`` moves
        its first receipt (R46 re-validates records received before the standard took effect)."""
        from imsp.exchange.models import Record

        async with self.db.session() as s:
            rec = await s.scalar(select(Record).where(Record.dataset == dataset, Record.key == key))
            assert rec is not None
            rec.data = {**rec.data, **changes}
            rec.version += 1
            if received is not None:
                rec.created_at = received

    async def work(self, *, now: datetime = NOW, rounds: int = 1000) -> int:
        """Run worker rounds at ``now`` until the change feed is empty; returns changes done."""
        from imsp.clock import FrozenClock
        from imsp.supervision.worker import run_once

        done = 0
        for _ in range(rounds):
            r = await run_once(self.db, settings=self.settings, clock=FrozenClock(now), worker="t")
            if r.claimed == 0:
                return done
            done += r.claimed
        raise AssertionError("the change feed did not drain")


def key_of(dataset: str, doc: dict[str, Any]) -> str:
    return "|".join(str(doc[k]) for k in load_standard().datasets[dataset].key)
