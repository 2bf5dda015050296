"""科室、人员信息 (第五章 第 5 步): lists, forms and Excel import for the applicant.

``/my/departments`` and ``/my/doctors`` share these pages; the fields come from the standard's
``department`` and ``doctor`` datasets. ID numbers are masked in lists; opening a doctor's form
(which shows the full number) is an audited view of personal data.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.auth.models import Institution
from imsp.errors import BadRequest, NotFound
from imsp.portal.applicant import mine, rejection_notes
from imsp.portal.edge import (
    PER_PAGE,
    Rerender,
    Visit,
    checked_form,
    errors_of,
    keep_form,
    pager,
    render,
    see_other,
    visitor,
)
from imsp.portal.widgets import record_inputs
from imsp.qualification import disclosure
from imsp.qualification import fields as F
from imsp.qualification import roster as records
from imsp.qualification.models import Application
from imsp.qualification.spreadsheet import CellProblem, template
from imsp.qualification.workflow import STATES, is_editable
from imsp.standard.mask import mask

router = APIRouter()
applicant = visitor("applicant")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def roster_of(kind: str) -> F.Roster:
    roster = F.ROSTERS.get(kind)
    if roster is None:
        raise NotFound("页面不存在")
    return roster


def cells(roster: F.Roster, record: dict[str, Any]) -> list[str]:
    """A record's list columns as shown: codes with names, ID numbers masked."""
    return [
        mask(record.get(code))
        if code in roster.personal
        else F.show_value(roster.field(code), record.get(code))
        for code in roster.columns
    ]


async def _list_page(
    v: Visit,
    roster: F.Roster,
    *,
    problems: list[CellProblem] | None = None,
    summary: str = "",
    status: int = 200,
) -> Response:
    app, inst = await mine(v)
    rows = await records.list_records(v.db, app=app, roster=roster)
    page = pager(v.request, len(rows))
    shown = rows[page.offset : page.offset + PER_PAGE]
    notes = await rejection_notes(v, app)
    return render(
        v.request,
        "roster_list.html",
        visit=v,
        app=app,
        inst=inst,
        state=STATES[app.status],
        editable=is_editable(app.status),
        roster=roster,
        headers=[roster.field(c).name for c in roster.columns],
        rows=[(r.id, cells(roster, r.data)) for r in shown],
        total=len(rows),
        pager=page,
        problems=problems or [],
        summary=summary,
        note=notes.get(roster.kind, ""),
        imported=v.request.query_params.get("imported", ""),
        status=status,
    )


@router.get("/my/{kind}")
async def record_list(kind: str, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    return await _list_page(v, roster_of(kind))


@router.get("/my/{kind}/template.xlsx")
async def record_template(kind: str, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    roster = roster_of(kind)
    filename = f"{roster.title}信息导入模板.xlsx"
    return Response(
        template(roster),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{roster.kind}-template.xlsx"; '
            f"filename*=UTF-8''{quote(filename)}"
        },
    )


@router.post("/my/{kind}/import")
async def record_import(kind: str, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    roster = roster_of(kind)
    await checked_form(v)
    app, inst = await mine(v)
    upload = v.file("file")
    content = await upload.read() if upload is not None else b""
    try:
        done = await records.import_records(
            v.db, app=app, institution=inst, roster=roster, content=content, now=v.now
        )
    except BadRequest as exc:
        problems = exc.data.get("problems", []) if isinstance(exc.data, dict) else []
        page = await _list_page(v, roster, problems=problems, summary=exc.msg, status=400)
        raise Rerender(page) from exc
    return see_other(f"/my/{roster.kind}?imported={done.added}-{done.updated}")


def _form_page(
    v: Visit,
    roster: F.Roster,
    app: Application,
    inst: Institution,
    values: dict[str, Any],
    errors: dict[str, str],
    record_id: int | None,
    status: int = 200,
    failure: str = "",
) -> Response:
    return render(
        v.request,
        "roster_form.html",
        visit=v,
        app=app,
        inst=inst,
        state=STATES[app.status],
        editable=is_editable(app.status),
        roster=roster,
        inputs=record_inputs(roster, values, errors),
        errors=errors,
        record_id=record_id,
        status=status,
        failure=failure,
    )


def _raw(v: Visit, roster: F.Roster) -> dict[str, Any]:
    return {f.code: v.texts(f.code) if f.multi else v.text(f.code) for f in roster.fields}


@router.get("/my/{kind}/new")
async def record_new(kind: str, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    roster = roster_of(kind)
    app, inst = await mine(v)
    return _form_page(v, roster, app, inst, {}, {}, None)


@router.post("/my/{kind}/new")
async def record_add(kind: str, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    return await _save(v, roster_of(kind), None)


@router.get("/my/{kind}/{record_id}")
async def record_edit(kind: str, record_id: int, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    roster = roster_of(kind)
    app, inst = await mine(v)
    row = await records.get_record(v.db, app=app, roster=roster, record_id=record_id)
    if roster.personal & {k for k, val in row.data.items() if val}:
        await disclosure.view_person(
            v.db, actor=v.actor, app=app, roster=roster, record=row.data, now=v.now, where="form"
        )
    return _form_page(v, roster, app, inst, dict(row.data), {}, row.id)


@router.post("/my/{kind}/{record_id}")
async def record_update(kind: str, record_id: int, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    return await _save(v, roster_of(kind), record_id)


async def _save(v: Visit, roster: F.Roster, record_id: int | None) -> Response:
    await checked_form(v)
    app, inst = await mine(v)
    raw = _raw(v, roster)
    try:
        await records.save_record(
            v.db,
            app=app,
            institution=inst,
            roster=roster,
            raw=raw,
            now=v.now,
            record_id=record_id,
        )
    except BadRequest as exc:
        page = _form_page(v, roster, app, inst, raw, errors_of(exc.data), record_id, status=400)
        raise Rerender(page) from exc

    async def again(problem: str) -> Response:
        app, inst = await mine(v)
        return _form_page(v, roster, app, inst, raw, {}, record_id, 503, problem)

    keep_form(v, again)
    return see_other(f"/my/{roster.kind}?ok=saved")


@router.post("/my/{kind}/{record_id}/delete")
async def record_delete(kind: str, record_id: int, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    roster = roster_of(kind)
    await checked_form(v)
    app, _ = await mine(v)
    await records.delete_record(v.db, app=app, roster=roster, record_id=record_id, now=v.now)
    return see_other(f"/my/{roster.kind}?ok=removed")
