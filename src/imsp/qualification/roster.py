"""Use cases for departments and doctors (科室、人员信息, 第五章 第 5 步): one record at a time
from a form, or many from an Excel import — all rows or none.

Records are the standard's ``department``/``doctor`` datasets without the common header, checked
by ``fields.validate_record``; a doctor's 院内科室编码 must be one of the application's departments.
Every change checks ``workflow.ensure_editable`` first and validates before writing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution
from imsp.clock import format_datetime
from imsp.cpu import offload
from imsp.errors import BadRequest, NotFound
from imsp.qualification import fields as F
from imsp.qualification.models import Application, Department, Doctor
from imsp.qualification.spreadsheet import CellProblem, SheetError, read_rows
from imsp.qualification.workflow import ensure_editable


async def _get(
    session: AsyncSession, roster: F.Roster, record_id: int
) -> Department | Doctor | None:
    if roster.dataset == "department":
        return await session.get(Department, record_id)
    return await session.get(Doctor, record_id)


async def list_records(
    session: AsyncSession, *, app: Application, roster: F.Roster
) -> list[Department] | list[Doctor]:
    if roster.dataset == "department":
        deps = await session.scalars(
            select(Department)
            .where(Department.application_id == app.id)
            .order_by(Department.dept_code)
        )
        return list(deps)
    docs = await session.scalars(
        select(Doctor).where(Doctor.application_id == app.id).order_by(Doctor.id)
    )
    return list(docs)


async def count_records(session: AsyncSession, *, app: Application, roster: F.Roster) -> int:
    if roster.dataset == "department":
        query = select(func.count()).where(Department.application_id == app.id)
    else:
        query = select(func.count()).where(Doctor.application_id == app.id)
    return int(await session.scalar(query) or 0)


async def departments_of(session: AsyncSession, app: Application) -> dict[str, str]:
    """院内科室编码 → 科室名称 of the application's departments."""
    rows = await session.scalars(select(Department).where(Department.application_id == app.id))
    return {d.dept_code: str(d.data.get("deptName") or "") for d in rows}


def _check_record(
    roster: F.Roster,
    raw: Mapping[str, Any],
    *,
    institution: Institution,
    departments: Mapping[str, str],
    now: datetime,
) -> tuple[dict[str, Any], dict[str, str]]:
    raw = dict(raw)
    if roster.dataset == "doctor":
        dept = str(raw.get("deptID") or "").strip()
        if dept in departments and not str(raw.get("deptName") or "").strip():
            raw["deptName"] = departments[dept]
    record, errors = F.validate_record(
        roster,
        raw,
        org_code=institution.org_code,
        org_name=institution.name,
        updated=format_datetime(now),
    )
    if roster.dataset == "doctor" and "deptID" not in errors:
        ref = record.get("deptID")
        if ref and ref not in departments:
            errors["deptID"] = f"科室编码 {ref} 未在本机构科室信息中登记，请先添加该科室"
    return record, errors


async def save_record(
    session: AsyncSession,
    *,
    app: Application,
    institution: Institution,
    roster: F.Roster,
    raw: Mapping[str, Any],
    now: datetime,
    record_id: int | None = None,
) -> Department | Doctor:
    """Add (``record_id`` None) or change one department/doctor. ``BadRequest`` with field errors."""
    ensure_editable(app)
    existing = None
    if record_id is not None:
        existing = await get_record(session, app=app, roster=roster, record_id=record_id)
    departments = await departments_of(session, app)
    record, errors = _check_record(
        roster, raw, institution=institution, departments=departments, now=now
    )
    key = record.get(roster.key)
    if roster.key not in errors and isinstance(key, str):
        clash = await _find(session, app, roster, key)
        if clash is not None and clash is not existing:
            errors[roster.key] = f"{roster.field(roster.key).name} {_shown(roster, key)} 已登记"
    if errors:
        raise BadRequest(f"{roster.title}信息有误", data={"errors": errors})
    assert isinstance(key, str)
    row = existing or _new(roster, app)
    _assign(row, key, record, now)
    session.add(row)
    app.updated_at = now
    await session.flush()
    return row


def _shown(roster: F.Roster, key: str) -> str:
    return F.mask_id(key) if roster.key in roster.personal else key


def _new(roster: F.Roster, app: Application) -> Department | Doctor:
    if roster.dataset == "department":
        return Department(application_id=app.id, dept_code="", data={})
    return Doctor(application_id=app.id, cert_id="", data={})


def _assign(row: Department | Doctor, key: str, record: dict[str, Any], now: datetime) -> None:
    if isinstance(row, Department):
        row.dept_code = key
    else:
        row.cert_id = key
    row.data = record
    row.updated_at = now


async def _find(
    session: AsyncSession, app: Application, roster: F.Roster, key: str
) -> Department | Doctor | None:
    if roster.dataset == "department":
        return await session.scalar(
            select(Department).where(
                Department.application_id == app.id, Department.dept_code == key
            )
        )
    return await session.scalar(
        select(Doctor).where(Doctor.application_id == app.id, Doctor.cert_id == key)
    )


async def get_record(
    session: AsyncSession, *, app: Application, roster: F.Roster, record_id: int
) -> Department | Doctor:
    """One record of ``app`` (scoped: another application's id is 'not found')."""
    row = await _get(session, roster, record_id)
    if row is None or row.application_id != app.id:
        raise NotFound(f"{roster.title}记录不存在")
    return row


async def delete_record(
    session: AsyncSession, *, app: Application, roster: F.Roster, record_id: int, now: datetime
) -> None:
    ensure_editable(app)
    row = await get_record(session, app=app, roster=roster, record_id=record_id)
    await session.delete(row)
    app.updated_at = now


@dataclass(frozen=True, slots=True)
class Imported:
    added: int
    updated: int


async def import_records(
    session: AsyncSession,
    *,
    app: Application,
    institution: Institution,
    roster: F.Roster,
    content: bytes,
    now: datetime,
) -> Imported:
    """Import a filled-in template: all rows or none. Existing records with the same business key
    are replaced. On any problem raises ``BadRequest`` with ``data={"problems": [CellProblem]}``."""
    ensure_editable(app)
    try:
        sheet = await offload(read_rows, roster, content)
    except SheetError as exc:
        raise BadRequest(str(exc), data={"problems": [CellProblem(0, "", "", str(exc))]}) from exc
    if not sheet.rows:
        msg = "文件中没有可导入的数据行（示例行会被忽略）"
        raise BadRequest(msg, data={"problems": [CellProblem(0, "", "", msg)]})
    departments = await departments_of(session, app)
    problems: list[CellProblem] = []
    seen: dict[str, int] = {}
    checked: list[tuple[str, dict[str, Any]]] = []
    for row in sheet.rows:
        record, errors = _check_record(
            roster, row.values, institution=institution, departments=departments, now=now
        )
        key = record.get(roster.key)
        if roster.key not in errors and isinstance(key, str):
            if key in seen:
                errors[roster.key] = f"与第 {seen[key]} 行重复"
            seen.setdefault(key, row.row)
        for code, msg in errors.items():
            f = roster.field(code)
            problems.append(CellProblem(row.row, sheet.letters.get(code, ""), f.name, msg))
        if not errors and isinstance(key, str):
            checked.append((key, record))
    if problems:
        raise BadRequest(
            f"导入失败：{len(problems)} 处问题，未导入任何数据", data={"problems": problems}
        )
    added = updated = 0
    for key, record in checked:
        row_obj = await _find(session, app, roster, key)
        if row_obj is None:
            row_obj = _new(roster, app)
            added += 1
        else:
            updated += 1
        _assign(row_obj, key, record, now)
        session.add(row_obj)
    app.updated_at = now
    await session.flush()
    return Imported(added, updated)
