"""Migration 0018 backfills the month rollups from the day rollups already stored: the rows it
writes are those the refresh's own month re-sum writes (both databases); its downgrade drops
them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from alembic import command
from sqlalchemy import create_engine, delete, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.config import Settings
from imsp.storage import migrate
from imsp.supervision import months, quality
from imsp.supervision.rollup_models import (
    FindingInstitutionMonth,
    FindingRuleMonth,
    FindingTotalDay,
    QualityInstitutionMonth,
)
from tests.support.database import run

AT = datetime(2026, 1, 1, tzinfo=UTC)
MONTH_TABLES = (
    QualityInstitutionMonth, FindingInstitutionMonth, FindingRuleMonth, FindingTotalDay,
)  # fmt: skip
#: (institution, day, dataset, requests, received, rejected, p95): March 31 and April 1 sides.
QUALITY = [
    (1, "2026-03-01", "patient", 2, 10, 1, 120.0),
    (1, "2026-03-31", "patient", 1, 5, 0, None),
    (1, "2026-03-31", "", 1, 0, 0, None),
    (1, "2026-04-01", "prescription", 0, 7, 2, -30.0),
    (2, "2026-04-02", "patient", 3, 4, 4, 600.0),
]
FINDINGS = [
    (1, "2026-03-31", "R01", "violation", "pending_review", 3),
    (1, "2026-04-01", "R01", "violation", "confirmed", 1),
    (2, "2026-04-01", "R19", "risk", "pending_review", 2),
    (2, "2026-04-30", "R19", "risk", "pending_review", 5),
]


def _fill_previous_head(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(migrate.alembic_config(settings), "0017")
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        for i in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO institution (id, org_code, name, created_at)"
                    " VALUES (:id, :org, :name, :at)"
                ),
                {"id": i, "org": f"9113000{i}MIGRATE", "name": f"医院{i}", "at": AT},
            )
        for inst, day, dataset, requests, received, rejected, p95 in QUALITY:
            conn.execute(
                text(
                    "INSERT INTO quality_day (channel, institution_id, day, dataset, requests,"
                    " received, accepted, rejected, rejected_by_code, stored, optional_filled,"
                    " optional_total, delay_median_s, delay_p95_s, refs_checked, refs_resolved,"
                    " computed_at) VALUES ('production', :inst, :day, :ds, :req, :rec, :acc, :rej,"
                    " :codes, :acc, 1, 2, NULL, :p95, :acc, 0, :at)"
                ),
                {
                    "inst": inst, "day": date.fromisoformat(day), "ds": dataset, "req": requests,
                    "rec": received + rejected, "acc": received, "rej": rejected,
                    "codes": f'{{"required": {rejected}}}' if rejected else "{}", "p95": p95,
                    "at": AT,
                },
            )  # fmt: skip
        sums = ", ".join(f"sum({c})" for c in quality.SUMMED) + ", max(delay_p95_s)"
        cols = ", ".join(quality.SUMMED) + ", delay_p95_s"
        conn.execute(
            text(
                f"INSERT INTO quality_institution_day (channel, day, institution_id, {cols})"
                f" SELECT channel, day, institution_id, {sums} FROM quality_day GROUP BY 1, 2, 3"
            )
        )
        for inst, day, rule, severity, status, n in FINDINGS:
            conn.execute(
                text(
                    "INSERT INTO finding_day (channel, institution_id, day, rule_id, severity,"
                    " status, findings, computed_at) VALUES ('production', :inst, :day, :rule,"
                    " :sev, :status, :n, :at)"
                ),
                {
                    "inst": inst, "day": date.fromisoformat(day), "rule": rule, "sev": severity,
                    "status": status, "n": n, "at": AT,
                },
            )  # fmt: skip
    engine.dispose()


async def _rows(s: AsyncSession) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for table in MONTH_TABLES:
        for row in (await s.scalars(select(table))).all():
            values = {c.key: getattr(row, c.key) for c in table.__table__.columns}
            out.append((table.__tablename__, *sorted(values.items(), key=lambda kv: kv[0])))
    return sorted(out, key=repr)


def test_month_rollups_are_backfilled_as_the_refresh_writes_them(unmigrated: Settings) -> None:
    _fill_previous_head(unmigrated)
    command.upgrade(migrate.alembic_config(unmigrated), "0018")
    migrated = run(unmigrated, _rows)
    # per table: (institution, month) × 3, (institution, month, status) × 3,
    # (month, rule, severity, status) × 3, days with findings × 3
    assert len(migrated) == 3 + 3 + 3 + 3
    quality_rows = [dict(r[1:]) for r in migrated if r[0] == "quality_institution_month"]
    (march,) = [r for r in quality_rows if r["month"] == date(2026, 3, 1)]
    assert march["active_days"] == 1 | 1 << 30  # March 1st and 31st had requests
    assert (march["received"], march["rejected_by_code"]) == (16, {"required": 1})

    async def resum(s: AsyncSession) -> list[tuple[Any, ...]]:
        for table in MONTH_TABLES:
            await s.execute(delete(table))
        pairs = {(r[0], date.fromisoformat(r[1])) for r in [*QUALITY, *FINDINGS]}
        await quality.resum(s, pairs)
        await months.resum_findings(s, pairs)
        return await _rows(s)

    assert run(unmigrated, resum) == migrated
    command.downgrade(migrate.alembic_config(unmigrated), "0017")
    engine = create_engine(unmigrated.sync_url)
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert not names & {t.__tablename__ for t in MONTH_TABLES} and "quality_day" in names
