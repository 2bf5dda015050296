"""The registration authority's pages (登记机关, 第五章 第 6 步) — also the regulator's read-only
view — and the attachment viewer shared with the applicant.

The reviewer sees exactly what was submitted (the version's snapshot), the field-level diff
against the rejected version before it, the previous decision and the timeline, and decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends
from starlette.responses import FileResponse, Response

from imsp.acceptance.service import confirmation_of
from imsp.auth import audit_log
from imsp.clock import format_datetime
from imsp.cpu import offload
from imsp.errors import BadRequest, NotFound
from imsp.portal.edge import (
    PER_PAGE,
    Pager,
    Rerender,
    Visit,
    checked_form,
    errors_of,
    page_number,
    pager,
    render,
    see_other,
    visitor,
)
from imsp.portal.export import MAX_ROWS, xlsx_response
from imsp.portal.roster import cells, roster_of
from imsp.qualification import disclosure, filing, queries
from imsp.qualification import fields as F
from imsp.qualification.attachments import KINDS, TYPE_LABELS
from imsp.qualification.diff import record_label
from imsp.qualification.review import decide, reason_targets
from imsp.qualification.workflow import ACTION_LABELS, STATES, allowed_actions

router = APIRouter()
readers = visitor("reviewer", "regulator")
#: The newest audit events shown on an application's page.
TRAIL = 50
#: Submitted versions are also shown to their own applicant (scoped by ``queries``).
version_readers = visitor("reviewer", "regulator", "applicant")
FILTERS = {
    "submitted": "待审核",
    "rejected": "审核驳回",
    "approved": "审核通过",
    "draft": "填报中",
    "withdrawn": "已撤回",
}


def _queue_filter(v: Visit) -> tuple[str, str]:
    """``?status=`` (one of FILTERS or all) and ``?q=`` (name or code, at most 50 characters)."""
    status = v.request.query_params.get("status", "submitted")
    status = status if status in FILTERS or status == "all" else "submitted"
    return status, v.request.query_params.get("q", "").strip()[:50]


@router.get("/review")
async def queue(v: Visit = Depends(readers)) -> Response:  # noqa: B008
    status, q = _queue_filter(v)
    rows, total = await queries.queue(
        v.db,
        actor=v.actor,
        status=None if status == "all" else status,
        offset=(page_number(v.request) - 1) * PER_PAGE,
        limit=PER_PAGE,
        q=q,
    )
    return render(
        v.request,
        "review_queue.html",
        visit=v,
        rows=[(r, queue_cells(r)) for r in rows],
        total=total,
        pager=pager(v.request, total),
        current=status,
        q=q,
        export=f"/review/export.xlsx?{urlencode({'status': status, 'q': q})}",
        filters=FILTERS,
        states=STATES,
    )


QUEUE_HEADERS = ("申请机构", "组织机构代码", "状态", "版本", "最近提交", "最近更新")


def queue_cells(row: queries.QueueRow) -> list[str]:
    """One application as the list page shows it."""
    return [
        row.institution.name,
        row.institution.org_code,
        STATES[row.app.status].label,
        f"第 {row.app.version} 版" if row.app.version else "—",
        format_datetime(row.submitted_at) if row.submitted_at else "",
        format_datetime(row.app.updated_at),
    ]


@router.get("/review/export.xlsx")
async def queue_export(v: Visit = Depends(readers)) -> Response:  # noqa: B008
    status, q = _queue_filter(v)
    rows, _ = await queries.queue(
        v.db,
        actor=v.actor,
        status=None if status == "all" else status,
        offset=0,
        limit=MAX_ROWS,
        q=q,
    )
    title = FILTERS.get(status, "全部申请")
    return await xlsx_response(
        title, f"资质申请-{title}.xlsx", QUEUE_HEADERS, [queue_cells(r) for r in rows]
    )


def _profile_rows(profile: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """Sections of the submitted 机构注册 form: (section, title, [(path, label, value)])."""
    out = []
    for section, title in F.SECTIONS.items():
        values = profile.get(section) or {}
        out.append(
            (
                section,
                title,
                [
                    (f"{section}.{f.code}", f.name, F.show_value(f, values.get(f.code)))
                    for f in F.institution_fields()
                ],
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Listed:
    """One page of a submitted list: (index in the snapshot, shown cells), and its pager."""

    rows: list[tuple[int, list[str]]]
    pager: Pager
    total: int


def _listed(v: Visit, roster: F.Roster, records: list[dict[str, Any]], param: str) -> Listed:
    page = pager(v.request, len(records), param=param)
    shown = records[page.offset : page.offset + PER_PAGE]
    rows = [(page.offset + i, cells(roster, r)) for i, r in enumerate(shown)]
    return Listed(rows, page, len(records))


async def _application_page(
    v: Visit,
    app_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    version = v.request.query_params.get("version")
    view = await queries.review_view(
        v.db,
        actor=v.actor,
        app_id=app_id,
        version=int(version) if version and version.isdigit() else None,
    )
    snap: dict[str, Any] = view.current.snapshot if view.current else {}
    profile = snap.get("profile", {})
    latest = view.current is not None and view.current.version == view.app.version
    deciding = latest and v.user.role in queries.READERS
    actions = allowed_actions(view.app.status, v.user.role) if deciding else []
    trail: list[audit_log.Row] = []
    if v.user.role in queries.READERS:  # the application's own audit trail (its institution's)
        where = audit_log.Filter(institution_id=view.app.institution_id)
        trail, _ = await audit_log.events(v.db, where=where, offset=0, limit=TRAIL)
    return render(
        v.request,
        "review_application.html",
        visit=v,
        view=view,
        app=view.app,
        inst=view.institution,
        state=STATES[view.app.status],
        snapshot=snap,
        kind_value=F.show_value(F.type_field(), profile.get(F.TYPE_FIELD)),
        sections=_profile_rows(profile),
        departments=_listed(v, F.DEPARTMENTS, snap.get("departments", []), "dpage"),
        dept_headers=[F.DEPARTMENTS.field(c).name for c in F.DEPARTMENTS.columns],
        doctors=_listed(v, F.DOCTORS, snap.get("doctors", []), "ppage"),
        doc_headers=[F.DOCTORS.field(c).name for c in F.DOCTORS.columns],
        attachments=snap.get("attachments", []),
        kinds=KINDS,
        type_labels=TYPE_LABELS,
        actions=actions,
        action_labels=ACTION_LABELS,
        names=await queries.actor_names(v.db, view.timeline),
        trail=trail,
        states=STATES,
        targets=reason_targets(),
        acceptance=await confirmation_of(v.db, institution_id=view.institution.id),
        changed={c.code for c in view.diff.profile} if view.diff else set(),
        errors=errors or {},
        values=values or {},
        status=status,
    )


@router.get("/applications/{app_id}")
async def application(app_id: int, v: Visit = Depends(version_readers)) -> Response:  # noqa: B008
    return await _application_page(v, app_id)


@router.get("/applications/{app_id}/v{version}/{kind}/{index}")
async def record_detail(
    app_id: int,
    version: int,
    kind: str,
    index: int,
    v: Visit = Depends(version_readers),  # noqa: B008
) -> Response:
    """One submitted department or doctor in full (ID numbers unmasked — an audited view)."""
    roster = roster_of(kind)
    app = await queries.application_for(v.db, actor=v.actor, app_id=app_id)
    sub = await queries.submission(v.db, app=app, version=version)
    records = sub.snapshot.get(roster.kind, [])
    if not 0 <= index < len(records):
        raise NotFound(f"{roster.title}记录不存在")
    record = records[index]
    if roster.personal & {k for k, val in record.items() if val}:
        await disclosure.view_person(
            v.db, actor=v.actor, app=app, roster=roster, record=record, now=v.now, where="review"
        )
    rows = [(f.name, F.show_value(f, record.get(f.code))) for f in roster.fields]
    return render(
        v.request,
        "review_record.html",
        visit=v,
        app=app,
        version=version,
        roster=roster,
        label=record_label(roster, record),
        rows=rows,
    )


@router.post("/applications/{app_id}/{action}")
async def decision(app_id: int, action: str, v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    """Approve or reject. Every role may post here; the transition table decides who may act."""
    if action not in ("approve", "reject"):
        raise NotFound("页面不存在")
    await checked_form(v)
    await queries.application_for(v.db, actor=v.actor, app_id=app_id)
    field_reasons: dict[str, str] = {}
    for target, text in zip(v.texts("field"), v.texts("field_reason"), strict=False):
        if target and text.strip():
            field_reasons[target] = text.strip()
    reason = v.text("reason")
    try:
        await decide(
            v.db,
            app_id=app_id,
            action=action,
            actor=v.actor,
            now=v.now,
            reason=reason,
            field_reasons=field_reasons,
            mail=v.settings.smtp.enabled,
        )
    except BadRequest as exc:
        values = {
            "reason": reason,
            "fields": list(zip(v.texts("field"), v.texts("field_reason"), strict=False)),
        }
        page = await _application_page(
            v, app_id, errors=errors_of(exc.data), values=values, status=400
        )
        raise Rerender(page) from exc
    return see_other(
        f"/applications/{app_id}?ok={'approved' if action == 'approve' else 'rejected'}"
    )


# --------------------------------------------------------------------------- 备案登记表


@router.get("/applications/{app_id}/filing.pdf")
async def filing_pdf(app_id: int, v: Visit = Depends(visitor("applicant", "reviewer"))) -> Response:  # noqa: B008
    """The filing record of an approved application, as PDF (rendered off the event loop)."""
    record = await disclosure.filing_record(v.db, actor=v.actor, app_id=app_id, now=v.now)
    pdf = await offload(filing.render_pdf_sync, record, printed_at=v.now)
    name = quote(f"备案登记表-{record.institution}-第{record.version}版.pdf")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Cache-Control": "private, no-store",
        },
    )


# --------------------------------------------------------------------------- attachments


async def _serve(v: Visit, attachment_id: int, *, download: bool) -> Response:
    row, path = await disclosure.open_attachment(
        v.db,
        actor=v.actor,
        attachment_id=attachment_id,
        data_dir=v.settings.data_dir,
        now=v.now,
        download=download,
    )
    return FileResponse(
        path,
        media_type=row.mime,
        filename=row.original_name,
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "private, no-store"},
    )


attachment_viewers = visitor("applicant", "reviewer", "regulator")


@router.get("/attachments/{attachment_id}")
async def attachment_view(attachment_id: int, v: Visit = Depends(attachment_viewers)) -> Response:  # noqa: B008
    return await _serve(v, attachment_id, download=False)


@router.get("/attachments/{attachment_id}/download")
async def attachment_download(
    attachment_id: int,
    v: Visit = Depends(attachment_viewers),  # noqa: B008
) -> Response:
    return await _serve(v, attachment_id, download=True)
