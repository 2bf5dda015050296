"""Reads of the supervision domain, with access scoping: a hospital sees only its own findings.

The portal pages (findings queue, finding detail, rule catalogue) call these; ``institution_id``
is the scope of a hospital account (None for the regulator, who sees every institution).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from imsp.exchange.models import ExchangeLog, Record
from imsp.supervision.findings import load_finding
from imsp.supervision.models import Finding, FindingEvent, PendingCheck
from imsp.supervision.workflow import OPEN_STATES

__all__ = [
    "FindingDetail",
    "FindingFilter",
    "FindingPage",
    "count_open",
    "count_open_by_rule",
    "count_pending",
    "finding_detail",
    "list_findings",
    "on_channel",
]


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Filters of the findings queue; every field optional. ``since``/``until`` bound the
    evaluated record's business time; ``status="open"`` means every open state."""

    institution_id: int | None = None
    rule_id: str | None = None
    severity: str | None = None
    status: str | None = None
    doctor_cert_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Findings on records of this exchange channel only; test-channel data (联调数据, 接入确认)
    #: never counts in the province's queue. ``None``: both.
    channel: str | None = "production"


def on_channel(channel: str) -> ColumnElement[bool]:
    """Findings whose record's current version came on ``channel`` (a purged record was test
    data: records are otherwise never deleted)."""
    stored = exists(
        select(1)
        .select_from(Record)
        .join(ExchangeLog, ExchangeLog.id == Record.exchange_id)
        .where(Record.id == Finding.record_id, ExchangeLog.channel == channel)
    )
    if channel == "test":
        return stored | ~exists(select(1).where(Record.id == Finding.record_id))
    return stored


def record_on_channel(channel: str) -> ColumnElement[bool]:
    """Records whose current version came on ``channel`` (test data never counts for the
    province: issue 14)."""
    return exists(
        select(1).where(ExchangeLog.id == Record.exchange_id, ExchangeLog.channel == channel)
    )


@dataclass(frozen=True, slots=True)
class FindingPage:
    rows: list[Finding]
    total: int


@dataclass(frozen=True, slots=True)
class FindingDetail:
    finding: Finding
    events: list[FindingEvent]  # oldest first


def _filtered(stmt: Select[Any], f: FindingFilter) -> Select[Any]:
    if f.institution_id is not None:
        stmt = stmt.where(Finding.institution_id == f.institution_id)
    if f.rule_id:
        stmt = stmt.where(Finding.rule_id == f.rule_id)
    if f.severity:
        stmt = stmt.where(Finding.severity == f.severity)
    if f.status == "open":
        stmt = stmt.where(Finding.status.in_(sorted(OPEN_STATES)))
    elif f.status:
        stmt = stmt.where(Finding.status == f.status)
    if f.doctor_cert_id:
        stmt = stmt.where(Finding.doctor_cert_id == f.doctor_cert_id)
    if f.since is not None:
        stmt = stmt.where(Finding.business_time >= f.since)
    if f.until is not None:
        stmt = stmt.where(Finding.business_time < f.until)
    if f.channel is not None:
        stmt = stmt.where(on_channel(f.channel))
    return stmt


async def list_findings(
    session: AsyncSession, *, filters: FindingFilter, limit: int = 50, offset: int = 0
) -> FindingPage:
    """Findings matching ``filters``, newest first, with the total count for paging."""
    rows = (
        await session.scalars(
            _filtered(select(Finding), filters)
            .order_by(Finding.first_seen.desc(), Finding.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    total = await session.scalar(_filtered(select(func.count()).select_from(Finding), filters))
    return FindingPage(rows=list(rows), total=int(total or 0))


async def finding_detail(
    session: AsyncSession, *, finding_id: int, institution_id: int | None = None
) -> FindingDetail:
    """One finding with its full history; NotFound outside the caller's scope."""
    finding = await load_finding(session, finding_id=finding_id, institution_id=institution_id)
    events = (
        await session.scalars(
            select(FindingEvent)
            .where(FindingEvent.finding_id == finding.id)
            .order_by(FindingEvent.at, FindingEvent.id)
        )
    ).all()
    return FindingDetail(finding=finding, events=list(events))


async def count_open_by_rule(
    session: AsyncSession, *, institution_id: int | None = None
) -> dict[str, int]:
    """Open findings per rule id (the rule catalogue page's column)."""
    stmt = select(Finding.rule_id, func.count()).where(
        Finding.status.in_(sorted(OPEN_STATES)), on_channel("production")
    )
    if institution_id is not None:
        stmt = stmt.where(Finding.institution_id == institution_id)
    rows = (await session.execute(stmt.group_by(Finding.rule_id))).all()
    return {rule: int(n) for rule, n in rows}


async def count_pending(session: AsyncSession, *, institution_id: int | None = None) -> int:
    """Records whose rules wait for a referenced record (待关联; one row per record)."""
    stmt = select(func.count()).select_from(PendingCheck)
    if institution_id is not None:
        stmt = stmt.where(PendingCheck.institution_id == institution_id)
    return int(await session.scalar(stmt) or 0)


async def count_open(
    session: AsyncSession, *, institution_id: int, channel: str, severity: str | None = None
) -> int:
    """Open findings of one institution on one channel (the acceptance board's data part asks
    for the test channel's open violations)."""
    stmt = (
        select(func.count())
        .select_from(Finding)
        .where(
            Finding.institution_id == institution_id,
            Finding.status.in_(sorted(OPEN_STATES)),
            on_channel(channel),
        )
    )
    if severity is not None:
        stmt = stmt.where(Finding.severity == severity)
    return int(await session.scalar(stmt) or 0)
