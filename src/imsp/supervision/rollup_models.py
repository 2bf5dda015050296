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


class QualityDay(Base):
    """Volume and data quality of one institution's dataset on one day (Beijing date)."""

    __tablename__ = "quality_day"
    __table_args__ = (Index("ix_quality_day_day_institution_id", "day", "institution_id"),)

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


class RollupState(Base):
    """Where the incremental refresh got to (one row per rollup kind)."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    watermark: Mapped[datetime]
