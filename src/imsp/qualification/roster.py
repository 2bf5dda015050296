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
from typing import Any, cast

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

RosterRow = Department | Doctor


async def list_records(
    session: AsyncSession, *, app: Application, roster: F.Roster
) -> list[RosterRow]:
    model = roster.model
    rows = await session.scalars(
        select(model)
        .where(model.application_id == app.id)
        .order_by(getattr(model, roster.sort_column))
    )
    return [cast(RosterRow, r) for r in rows]


async def count_records(session: AsyncSession, *, app: Application, roster: F.Roster) -> int:
    query = select(func.count()).where(roster.model.application_id == app.id)
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
    also: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, str]]:
    """One record checked by the standard, and against the application's departments (plus
    ``also``: the departments of the same import file)."""
    raw = dict(raw)
    ref = roster.department_ref
    if ref is not None:
        dept = str(raw.get(ref[0]) or "").strip()
        if dept in departments and not str(raw.get(ref[1]) or "").strip():
            raw[ref[1]] = departments[dept]
    record, errors = F.validate_record(
        roster,
        raw,
        org_code=institution.org_code,
        org_name=institution.name,
        updated=format_datetime(now),
    )
    if ref is not None and ref[0] not in errors:
        dept_code = record.get(ref[0])
        if dept_code and dept_code not in departments:
            errors[ref[0]] = f"科室编码 {dept_code} 未在本机构科室信息中登记，请先添加该科室"
    parent = roster.parent
    if parent is not None and parent not in errors and record.get(parent):
        code = record[parent]
        if code == record.get(roster.key):
            errors[parent] = "上级科室不能是本科室"
        elif code not in departments and code not in also:
            errors[parent] = f"上级科室编码 {code} 未在本机构科室信息中登记，请先添加上级科室"
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
) -> RosterRow:
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
            errors[roster.key] = f"{roster.field(roster.key).name} {roster.shown_key(key)} 已登记"
    if errors:
        raise BadRequest(f"{roster.title}信息有误", data={"errors": errors})
    assert isinstance(key, str)
    row = existing or _new(roster, app)
    _assign(roster, row, key, record, now)
    session.add(row)
    app.updated_at = now
    await session.flush()
    return row


def _new(roster: F.Roster, app: Application) -> RosterRow:
    return roster.model(application_id=app.id, data={})


def _assign(
    roster: F.Roster, row: RosterRow, key: str, record: dict[str, Any], now: datetime
) -> None:
    setattr(row, roster.key_column, key)
    row.data = record
    row.updated_at = now


async def _find(
    session: AsyncSession, app: Application, roster: F.Roster, key: str
) -> RosterRow | None:
    model = roster.model
    row = await session.scalar(
        select(model).where(
            model.application_id == app.id, getattr(model, roster.key_column) == key
        )
    )
    return cast(RosterRow | None, row)


async def get_record(
    session: AsyncSession, *, app: Application, roster: F.Roster, record_id: int
) -> RosterRow:
    """One record of ``app`` (scoped: another application's id is 'not found')."""
    row = cast(RosterRow | None, await session.get(roster.model, record_id))
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
    if not content:
        msg = "请选择要导入的 Excel 文件（.xlsx）"
        raise BadRequest(msg, data={"problems": [CellProblem(0, "", "", msg)]})
    try:
        sheet = await offload(read_rows, roster, content)
    except SheetError as exc:
        raise BadRequest(str(exc), data={"problems": [CellProblem(0, "", "", str(exc))]}) from exc
    if not sheet.rows:
        msg = "文件中没有可导入的数据行（示例行会被忽略）"
        raise BadRequest(msg, data={"problems": [CellProblem(0, "", "", msg)]})
    departments = await departments_of(session, app)
    in_file = frozenset(str(r.values.get(roster.key) or "").strip() for r in sheet.rows)
    problems: list[CellProblem] = []
    seen: dict[str, int] = {}
    checked: list[tuple[str, dict[str, Any]]] = []
    for row in sheet.rows:
        record, errors = _check_record(
            roster,
            row.values,
            institution=institution,
            departments=departments,
            now=now,
            also=in_file if roster.parent else frozenset(),
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
        _assign(roster, row_obj, key, record, now)
        session.add(row_obj)
    app.updated_at = now
    await session.flush()
    return Imported(added, updated)
