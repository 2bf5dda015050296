"""Upload receipts: references missing at upload time (warning -95 关联数据不存在).

An upload is never rejected because a record it refers to has not arrived: hospitals upload in
any order, and supervision waits (R43). The receipt only *warns*, naming the missing dataset and
key, so the hospital sees at once what it still has to send. The lookup is ONE query per batch
(by business key, and by visit number for follow-up records), run alongside the write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import String, and_, any_, bindparam, cast, or_, select
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncEngine

from imsp.exchange.models import Record
from imsp.standard.issues import Issue

__all__ = ["REFERENCE_MISSING", "missing_references", "wanted_references"]

#: Issue code of the warning (``warnings[].code``; business code -95 in the protocol catalogue).
REFERENCE_MISSING: Final = "reference_missing"

_NAMES: Final = {
    "patient": "患者信息", "doctor": "人员信息", "department": "科室信息",
    "organization": "机构信息", "prescription": "处方信息", "inspection": "检查检验申请",
    "outpatient": "门诊病历", "consult": "在线咨询",
}  # fmt: skip

#: dataset → (field, target datasets, how): "key" = the target's business key; "visit" = a
#: follow-up record (门诊病历 by visit number, or an online consultation by its key).
_REFS: Final[dict[str, tuple[tuple[str, tuple[str, ...], str], ...]]] = {}
_BASE = (
    ("patientId", ("patient",), "key"),
    ("doctorCertID", ("doctor",), "key"),
    ("deptID", ("department",), "key"),
    ("organID", ("organization",), "key"),
)
for _ds in ("register", "inspection", "outpatient", "consult", "appraise"):
    _REFS[_ds] = _BASE
_REFS["prescription"] = (*_BASE, ("bussID", ("outpatient", "consult"), "visit"))
_REFS["telemedicine"] = (
    ("patientId", ("patient",), "key"),
    ("applyDoctorCertID", ("doctor",), "key"),
    ("organID", ("organization",), "key"),
)
_REFS["payment"] = (
    ("patientId", ("patient",), "key"),
    ("organID", ("organization",), "key"),
    ("recipeID", ("prescription",), "key"),
    ("applyId", ("inspection",), "key"),
)
_REFS["prescription_item"] = (("recipeID", ("prescription",), "key"),)
for _ds in ("lis", "pacs"):
    _REFS[_ds] = (
        ("patientId", ("patient",), "key"),
        ("applyDoctorCertID", ("doctor",), "key"),
        ("applyDeptID", ("department",), "key"),
        ("applyId", ("inspection",), "key"),
    )
for _ds in ("doctor", "department"):
    _REFS[_ds] = (("organID", ("organization",), "key"),)


def _texts(name: str, values: list[str]) -> Any:
    """``CAST(:name AS VARCHAR[])``: a list bound as one PostgreSQL array."""
    return cast(bindparam(name, values, type_=pg.ARRAY(String)), pg.ARRAY(String))


def wanted_references(
    dataset: str, records: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[tuple[int, str, tuple[str, ...], str, str]]:
    """(index, field, target datasets, how, value) of every reference the records make."""
    out = []
    for index, rec in records:
        for field, targets, how in _REFS.get(dataset, ()):
            value = rec.get(field)
            if isinstance(value, str) and value:
                out.append((index, field, targets, how, value))
    return out


async def missing_references(
    engine: AsyncEngine,
    *,
    institution_id: int,
    dataset: str,
    records: Sequence[tuple[int, Mapping[str, Any]]],
) -> dict[int, list[Issue]]:
    """Warnings (index → issues) for references of ``records`` (index, stored document) to
    records the institution has not uploaded. One query."""
    wanted = wanted_references(dataset, records)
    if not wanted:
        return {}
    keys = {
        (t, v)
        for _, _, targets, how, v in wanted
        for t in targets
        if how == "key" or t == "consult"
    }
    visits = {v for _, _, _, how, v in wanted if how == "visit"}
    datasets = sorted({t for t, _ in keys})
    values = sorted({v for _, v in keys})
    if engine.dialect.name == "postgresql":
        # one array parameter each: an IN list is rendered anew, parameter by parameter, for
        # every batch (up to 2,000 of them — ~7% of an upload's server CPU)
        conds = [and_(Record.dataset == any_(_texts("ref_ds", datasets)),
                      Record.key == any_(_texts("ref_keys", values)))]  # fmt: skip
        if visits:
            conds.append(
                and_(
                    Record.dataset == "outpatient",
                    Record.visit_no == any_(_texts("ref_visits", sorted(visits))),
                )
            )
    else:
        conds = [and_(Record.dataset.in_(datasets), Record.key.in_(values))]
        if visits:
            conds.append(and_(Record.dataset == "outpatient", Record.visit_no.in_(sorted(visits))))
    stmt = select(Record.dataset, Record.key, Record.visit_no).where(
        Record.institution_id == institution_id, Record.voided.is_(False), or_(*conds)
    )
    async with engine.connect() as conn:
        # one statement, read only: no BEGIN and ROLLBACK round trips around it
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        rows = (await auto.execute(stmt)).all()
    have = {(ds, k) for ds, k, _ in rows} | {(ds, vn) for ds, _, vn in rows if vn}
    out: dict[int, list[Issue]] = {}
    for index, field, targets, _, value in wanted:
        if any((t, value) in have for t in targets):
            continue
        names = "或".join(_NAMES.get(t, t) for t in targets)
        out.setdefault(index, []).append(
            Issue(
                field,
                REFERENCE_MISSING,
                f"关联数据不存在（-95）：{names}（{'/'.join(targets)}）{field}={value} 尚未上传；"
                "记录已受理，监管规则待关联数据到达后评估",
                "warning",
            )
        )
    return out
