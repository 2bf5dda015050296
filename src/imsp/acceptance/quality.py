"""Data quality of one institution's uploads on one channel, per dataset — what the data part of
the acceptance board measures.

The board depends on :class:`QualitySource` only. :class:`LogQuality` is this domain's own
measurement straight from the exchange log and the stored records; the province-wide rollups of
the supervision portal (per institution, dataset and day) can stand in for it behind the same
protocol.

Definitions (each printed in the report):

* *received* / *accepted* / *rejected* — records in processed, non-dry-run uploads (gateway code
  200) on the channel; validity = accepted ÷ received.
* *completeness* — of the recommended fields: the optional fields the platform keys its
  supervision on (the dataset's typed columns in the Data Standard: 证件号码, 就诊流水号, 科室…);
  the share of them filled in the records stored from the channel. A dataset without such fields
  is complete.
* *reference integrity* — the share of stored records whose references resolve to records of the
  same institution: patient (患者), doctor (人员), department (科室), and a prescription item's
  prescription.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.exchange.models import ExchangeLog, Record
from imsp.standard.model import Dataset, Standard
from imsp.supervision.rollup_models import QualityDay

#: Column role → the dataset whose business key it refers to.
_REFERS: dict[str, str] = {
    "patient_id": "patient",
    "doctor_cert_id": "doctor",
    "dept_code": "department",
}


@dataclass(frozen=True, slots=True)
class DatasetQuality:
    dataset: str
    requests: int
    received: int
    accepted: int
    rejected: int
    stored: int  # records currently stored from the channel
    completeness: float | None  # None: nothing stored
    reference_integrity: float | None

    @property
    def validity(self) -> float | None:
        return self.accepted / self.received if self.received else None


class QualitySource(Protocol):
    async def per_dataset(
        self, session: AsyncSession, *, institution_id: int, channel: str
    ) -> dict[str, DatasetQuality]: ...


def recommended_fields(ds: Dataset) -> list[str]:
    """The optional fields supervision keys on (typed columns other than the business time)."""
    required = {f.code for f in ds.fields if f.required == "Y"}
    return [
        code
        for role, code in ds.columns.items()
        if role != "business_time" and code not in required
    ]


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


class LogQuality:
    """Quality measured from ``exchange_log`` and ``record`` (this domain's own measurement)."""

    def __init__(self, std: Standard) -> None:
        self.std = std

    async def per_dataset(
        self, session: AsyncSession, *, institution_id: int, channel: str
    ) -> dict[str, DatasetQuality]:
        counts = (
            await session.execute(
                select(
                    ExchangeLog.dataset,
                    func.count(),
                    func.coalesce(func.sum(ExchangeLog.total), 0),
                    func.coalesce(func.sum(ExchangeLog.success), 0),
                    func.coalesce(func.sum(ExchangeLog.fail), 0),
                )
                .where(
                    ExchangeLog.institution_id == institution_id,
                    ExchangeLog.channel == channel,
                    ExchangeLog.dataset.is_not(None),
                    ExchangeLog.code == 200,
                    ExchangeLog.dry_run.is_(False),
                )
                .group_by(ExchangeLog.dataset)
            )
        ).all()
        stored = (
            await session.execute(
                select(
                    Record.dataset,
                    Record.key,
                    Record.patient_id,
                    Record.doctor_cert_id,
                    Record.dept_code,
                    Record.data,
                )
                .join(ExchangeLog, ExchangeLog.id == Record.exchange_id)
                .where(Record.institution_id == institution_id, ExchangeLog.channel == channel)
            )
        ).all()
        keys: dict[str, set[str]] = defaultdict(set)
        for row in stored:
            keys[row.dataset].add(row.key)
        filled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        resolved: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in stored:
            ds = self.std.datasets.get(row.dataset)
            if ds is None:
                continue
            rec = row.data
            for code in recommended_fields(ds):
                filled[ds.code][1] += 1
                filled[ds.code][0] += _filled(rec.get(code))
            ok = True
            for role, target in _REFERS.items():
                value = getattr(row, role)
                if ds.code != target and value and value not in keys[target]:
                    ok = False
            if ds.code == "prescription_item":
                recipe = rec.get("recipeID")
                ok = ok and bool(recipe) and str(recipe) in keys["prescription"]
            resolved[ds.code][1] += 1
            resolved[ds.code][0] += ok
        out: dict[str, DatasetQuality] = {}
        for dataset, requests, received, accepted, rejected in counts:
            if dataset is None:
                continue
            n = resolved[dataset][1]
            f = filled[dataset]
            out[dataset] = DatasetQuality(
                dataset=dataset,
                requests=int(requests),
                received=int(received),
                accepted=int(accepted),
                rejected=int(rejected),
                stored=n,
                completeness=(f[0] / f[1] if f[1] else 1.0) if n else None,
                reference_integrity=resolved[dataset][0] / n if n else None,
            )
        return out


class RollupQuality:
    """The same figures read from the supervision portal's daily data-quality rollups
    (``quality_day`` rows of the channel, summed over days). Counts agree with
    :class:`LogQuality` once the rollups are refreshed; completeness there covers every optional
    field and reference integrity only records with a checked reference, so the board keeps
    :class:`LogQuality` by default (see ``ARCHITECTURE.md``)."""

    async def per_dataset(
        self, session: AsyncSession, *, institution_id: int, channel: str
    ) -> dict[str, DatasetQuality]:
        q = QualityDay
        rows = await session.execute(
            select(
                q.dataset,
                func.sum(q.requests),
                func.sum(q.received),
                func.sum(q.accepted),
                func.sum(q.rejected),
                func.sum(q.stored),
                func.sum(q.optional_filled),
                func.sum(q.optional_total),
                func.sum(q.refs_resolved),
                func.sum(q.refs_checked),
            )
            .where(q.institution_id == institution_id, q.channel == channel, q.dataset != "")
            .group_by(q.dataset)
        )
        out: dict[str, DatasetQuality] = {}
        for ds, req, rec, acc, rej, stored, filled, total, resolved, checked in rows.all():
            n = int(stored or 0)
            out[ds] = DatasetQuality(
                dataset=ds,
                requests=int(req or 0),
                received=int(rec or 0),
                accepted=int(acc or 0),
                rejected=int(rej or 0),
                stored=n,
                completeness=(int(filled) / int(total) if total else 1.0) if n else None,
                reference_integrity=(int(resolved) / int(checked) if checked else 1.0)
                if n
                else None,
            )
        return out
