"""Tables of the daily rollups (data quality and volume) that the supervision pages read.

One row per (channel, institution, dataset, Beijing day): the portal's overview and per-hospital
pages sum a few hundred of these rows instead of counting the record table (issue 10: 10,000,000
records, < 300 ms). Every figure is stored as additive counts (the page divides), except the
timeliness quantiles, which are exact for their row. ``dataset`` is ``""`` for requests that carry
no dataset (the token service), so a day with only a token request is "contacted, nothing to
report", not a silent day.

``channel`` is part of the key so that test-channel uploads (issue 14) can be kept out of the
province's figures by a filter; until the exchange log records a channel every row is
``production``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base

#: Columns the overview sums, carried in the covering index.
COVERED = [
    "requests", "received", "accepted", "rejected", "stored", "optional_filled",
    "optional_total", "refs_checked", "refs_resolved", "delay_p95_s",
]  # fmt: skip


class QualityDay(Base):
    """Volume and data quality of one institution's dataset on one day (Beijing date)."""

    __tablename__ = "quality_day"
    __table_args__ = (
        # The overview's scans read only this index on PostgreSQL (index-only scans).
        Index(
            "ix_quality_day_covering",
            "channel",
            "day",
            "institution_id",
            "dataset",
            postgresql_include=COVERED,
        ),
    )

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(String(30), primary_key=True)
    # From the exchange log (by the day the request arrived).
    requests: Mapped[int]
    received: Mapped[int]  # records in the requests' bodies
    accepted: Mapped[int]
    rejected: Mapped[int]
    rejected_by_code: Mapped[dict[str, Any]]  # receipt msgCode → records
    # From the stored records (by the day each record first arrived).
    stored: Mapped[int]  # distinct records first stored this day
    optional_filled: Mapped[int]  # recommended (optional) fields filled …
    optional_total: Mapped[int]  # … out of those the records could have filled
    delay_median_s: Mapped[float | None]  # first upload − business time
    delay_p95_s: Mapped[float | None]
    refs_checked: Mapped[int]  # records with at least one checked reference …
    refs_resolved: Mapped[int]  # … whose references all resolve
    computed_at: Mapped[datetime]


class _Sums:
    """The additive figures of ``quality_day`` (and the day's worst p95), summed further."""

    requests: Mapped[int]
    received: Mapped[int]
    accepted: Mapped[int]
    rejected: Mapped[int]
    stored: Mapped[int]
    optional_filled: Mapped[int]
    optional_total: Mapped[int]
    refs_checked: Mapped[int]
    refs_resolved: Mapped[int]
    delay_p95_s: Mapped[float | None]


class QualityInstitutionDay(_Sums, Base):
    """``quality_day`` summed over datasets: one row per institution and day (the overview's
    trend, institutions and silent days read these — 17 times fewer rows)."""

    __tablename__ = "quality_institution_day"
    # The hospital page reads one institution's days (the primary key leads with the day).
    __table_args__ = (
        Index("ix_quality_institution_day_institution_id", "channel", "institution_id", "day"),
    )

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)


class QualityDatasetDay(_Sums, Base):
    """``quality_day`` summed over institutions: one row per dataset and day."""

    __tablename__ = "quality_dataset_day"

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(String(30), primary_key=True)


class FindingDay(Base):
    """Findings first seen on one day (Beijing date), per institution, rule, severity and their
    current status — the overview's "findings by rule and severity" and hospital ranking."""

    __tablename__ = "finding_day"
    __table_args__ = (Index("ix_finding_day_day_institution_id", "day", "institution_id"),)

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    severity: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    findings: Mapped[int]
    computed_at: Mapped[datetime]


class QualityInstitutionMonth(_Sums, Base):
    """``quality_institution_day`` summed over one Beijing calendar month (``month`` = its first
    day; production rows, as the day sums): a year's overview reads 12 rows per institution
    instead of 365 (:mod:`imsp.supervision.months`). ``active_days`` holds the month's days with
    any request as bits (bit 0 = the 1st), all the silent-day check needs;
    ``rejected_by_code`` merges the month's ``quality_day`` codes (the hospital page's 拒收原因)."""

    __tablename__ = "quality_institution_month"

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    active_days: Mapped[int]
    rejected_by_code: Mapped[dict[str, Any]]


class FindingInstitutionMonth(Base):
    """``finding_day`` summed over one Beijing month per institution and current status."""

    __tablename__ = "finding_institution_month"

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    findings: Mapped[int]


class FindingRuleMonth(Base):
    """``finding_day`` summed over one Beijing month and every institution, per rule, severity
    and current status (the overview's "findings by rule and severity")."""

    __tablename__ = "finding_rule_month"

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    severity: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    findings: Mapped[int]


class FindingTotalDay(Base):
    """``finding_day`` summed over institutions, rules and statuses: the province's findings
    first seen on one day (the overview's daily trend)."""

    __tablename__ = "finding_total_day"

    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    findings: Mapped[int]


class RollupState(Base):
    """Where the incremental refresh got to (one row per rollup kind)."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    watermark: Mapped[datetime]
