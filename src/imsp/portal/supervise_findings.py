"""Findings pages: the regulator's queue (filters, bulk confirm/dismiss, Excel) and a finding's
detail with its workflow actions; the hospital's own findings, where it answers with evidence.

Every state change goes through ``imsp.supervision.findings.act`` (the transition table); pages
only parse forms and show what the table allows. Evidence files reuse the qualification domain's
attachment checks and content-addressed storage (``imsp.qualification.attachments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import anyio.to_thread
from fastapi import APIRouter, Depends
from starlette.responses import FileResponse, Response

from imsp.auth.service import audit
from imsp.clock import BEIJING
from imsp.errors import BadRequest, NotFound
from imsp.exchange.mask import mask
from imsp.portal.edge import (
    PER_PAGE,
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
from imsp.portal.supervise import _xlsx
from imsp.qualification.attachments import Upload, check_upload, clean_name, path_for, store_file
from imsp.standard.ruleset import SEVERITY_LABELS, load_rules
from imsp.supervision import dashboard, findings, queue, workflow
from imsp.supervision import queries as finding_queries
from imsp.supervision.workflow import ACTION_LABELS, STATES, TRANSITIONS

router = APIRouter()
regulator = visitor("regulator")
hospital = visitor("applicant")
either = visitor("regulator", "applicant")
EXPORT_LIMIT: Final = 10_000
QUEUE_HEADERS: Final = (
    "编号", "规则编号", "规则名称", "级别", "状态", "医疗机构", "数据集", "业务主键",
    "首次发现", "整改期限",
)  # fmt: skip
#: The workflow actions a page may post (system actions such as ``expire`` are not among them).
PAGE_ACTIONS: Final = frozenset(
    a for (_, a), step in TRANSITIONS.items() if workflow.SYSTEM not in step.roles
) | frozenset(workflow.NOTES)


def _fmt(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if value else ""


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 12 else None


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"日期格式应为 yyyy-MM-dd：{name}") from None


def queue_filter(v: Visit, *, own: bool) -> queue.QueueFilter:
    q = v.request.query_params
    rule = q.get("rule", "").strip().upper()
    severity = q.get("severity", "")
    status = q.get("status", "")
    doctor = q.get("doctor", "")
    return queue.QueueFilter(
        institution_id=v.user.institution_id if own else _int(q.get("hospital")),
        rule_id=rule if rule in load_rules() else None,
        severity=severity if severity in SEVERITY_LABELS else None,
        status=status if status in STATES or status == "open" else None,
        doctor_finding=_int(doctor[1:]) if doctor.startswith("f") else None,
        start=_day(q.get("start"), "start"),
        end=_day(q.get("end"), "end"),
    )


def queue_rows(rows: list[queue.QueueRow]) -> list[list[Any]]:
    catalogue = load_rules()
    out = []
    for r in rows:
        f = r.finding
        out.append(
            [
                f.id,
                f.rule_id,
                catalogue[f.rule_id].name if f.rule_id in catalogue else f.rule_id,
                SEVERITY_LABELS.get(f.severity, f.severity),
                STATES[f.status].label if f.status in STATES else f.status,
                r.institution,
                dashboard.dataset_name(f.dataset),
                mask(f.key) if f.dataset == "doctor" else f.key,
                _fmt(f.first_seen),
                _fmt(f.due_at),
            ]
        )
    return out


async def _queue_page(v: Visit, *, own: bool) -> Response:
    filters = queue_filter(v, own=own)
    rows, total = await queue.page(
        v.db, filters=filters, limit=PER_PAGE, offset=(page_number(v.request) - 1) * PER_PAGE
    )
    query = v.request.url.query
    base = "/my/findings" if own else "/supervision/findings"
    return render(
        v.request,
        "supervision_findings.html",
        visit=v,
        own=own,
        base=base,
        rows=rows,
        table_rows=queue_rows(rows),
        headers=QUEUE_HEADERS,
        pager=pager(v.request, total),
        filters=filters,
        rules=list(load_rules()),
        severities=SEVERITY_LABELS,
        states=STATES,
        hospitals=[] if own else await dashboard.hospitals_reporting(v.db),
        export=f"{base}/export.xlsx" + (f"?{query}" if query else ""),
        q=v.request.query_params,
        back=base + (f"?{query}" if query else ""),
    )


@router.get("/supervision/findings")
async def regulator_queue(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _queue_page(v, own=False)


@router.get("/my/findings")
async def hospital_queue(v: Visit = Depends(hospital)) -> Response:  # noqa: B008
    return await _queue_page(v, own=True)


async def _export(v: Visit, *, own: bool) -> Response:
    rows, _ = await queue.page(v.db, filters=queue_filter(v, own=own), limit=EXPORT_LIMIT)
    return await _xlsx("findings", "监管发现清单", QUEUE_HEADERS, queue_rows(rows))


@router.get("/supervision/findings/export.xlsx")
async def regulator_export(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _export(v, own=False)


@router.get("/my/findings/export.xlsx")
async def hospital_export(v: Visit = Depends(hospital)) -> Response:  # noqa: B008
    return await _export(v, own=True)


@router.post("/supervision/findings/bulk")
async def bulk(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    """Bulk confirm or dismiss the checked findings: all or nothing."""
    await checked_form(v)
    action = v.text("action")
    if action not in ("confirm", "dismiss"):
        raise BadRequest("请选择批量操作")
    ids = [int(i) for i in v.texts("finding") if i.isdigit()]
    await findings.bulk_act(
        v.db,
        finding_ids=ids,
        action=action,
        actor=v.user.username,
        role=workflow.REGULATOR,
        now=v.now,
        text=v.text("reason"),
        client_addr=v.actor.client_addr,
    )
    back = v.text("back")
    back = back if back.startswith("/supervision/findings") else "/supervision/findings"
    return see_other(back + ("&" if "?" in back else "?") + "ok=saved")


# --------------------------------------------------------------------------- detail


@dataclass(frozen=True, slots=True)
class Attached:
    sha256: str
    mime: str
    name: str


def attachment_ref(sha256: str, mime: str, name: str) -> str:
    return f"{sha256}:{mime}:{name}"[:500]


def parse_ref(ref: str | None) -> Attached | None:
    if not ref or ref.count(":") < 2:
        return None
    sha, mime, name = ref.split(":", 2)
    return Attached(sha, mime, name)


async def _detail(
    v: Visit, finding_id: int, *, own: bool, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    scope = v.user.institution_id if own else None
    if own and scope is None:
        raise NotFound("监管发现不存在")
    detail = await finding_queries.finding_detail(v.db, finding_id=finding_id, institution_id=scope)
    f = detail.finding
    rule = {r.id: r for r in load_rules()}.get(f.rule_id)
    ids = await queue.record_ids(v.db, institution_id=f.institution_id, refs=f.records)
    role = workflow.HOSPITAL if own else workflow.REGULATOR
    names = {h.id: h.name for h in await dashboard.hospitals_reporting(v.db)}
    return render(
        v.request,
        "supervision_finding.html",
        visit=v,
        own=own,
        f=f,
        rule=rule,
        institution=names.get(f.institution_id, str(f.institution_id)),
        severity=SEVERITY_LABELS.get(f.severity, f.severity),
        state=STATES.get(f.status),
        events=detail.events,
        records=[
            (
                r,
                ids.get((str(r.get("dataset")), str(r.get("key")))),
                dashboard.dataset_name(str(r.get("dataset"))),
            )
            for r in f.records
        ],
        actions=workflow.allowed_actions(f.status, role),
        labels=ACTION_LABELS,
        states=STATES,
        parse_ref=parse_ref,
        fmt=_fmt,
        base="/my/findings" if own else "/supervision/findings",
        errors=errors or {},
        status=status,
    )


@router.get("/supervision/findings/{finding_id}")
async def regulator_detail(finding_id: int, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _detail(v, finding_id, own=False)


@router.get("/my/findings/{finding_id}")
async def hospital_detail(finding_id: int, v: Visit = Depends(hospital)) -> Response:  # noqa: B008
    return await _detail(v, finding_id, own=True)


def _due(raw: str) -> datetime | None:
    """A rectification deadline given as a Beijing date: the end of that day."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            "整改期限格式应为 yyyy-MM-dd",
            data={"errors": {"due_at": "整改期限格式应为 yyyy-MM-dd"}},
        ) from None
    return datetime.combine(day + timedelta(days=1), time(), BEIJING) - timedelta(seconds=1)


async def _act(v: Visit, finding_id: int, action: str, *, own: bool) -> Response:
    if action not in PAGE_ACTIONS:
        raise NotFound("页面不存在")
    await checked_form(v)
    base = "/my/findings" if own else "/supervision/findings"
    try:
        attachment = None
        upload = v.file("file")
        if own and upload is not None and upload.filename:
            content = await upload.read()
            mime = check_upload(
                Upload(upload.filename, content), max_bytes=v.settings.portal.max_upload_bytes
            )
            digest = await anyio.to_thread.run_sync(store_file, v.settings.data_dir, content)
            attachment = attachment_ref(digest, mime, clean_name(upload.filename))
        await findings.act(
            v.db,
            finding_id=finding_id,
            action=action,
            actor=v.user.username,
            role=workflow.HOSPITAL if own else workflow.REGULATOR,
            now=v.now,
            text=v.text("text"),
            due_at=_due(v.text("due_at")),
            attachment=attachment,
            assignee=v.text("assignee") or None,
            institution_id=v.user.institution_id if own else None,
            client_addr=v.actor.client_addr,
        )
    except BadRequest as exc:
        errors = errors_of(exc.data) or {"form": exc.msg}
        page = await _detail(v, finding_id, own=own, errors=errors, status=400)
        raise Rerender(page) from exc
    return see_other(f"{base}/{finding_id}?ok=saved")


@router.post("/supervision/findings/{finding_id}/{action}")
async def regulator_act(finding_id: int, action: str, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _act(v, finding_id, action, own=False)


@router.post("/my/findings/{finding_id}/{action}")
async def hospital_act(finding_id: int, action: str, v: Visit = Depends(hospital)) -> Response:  # noqa: B008
    return await _act(v, finding_id, action, own=True)


@router.get("/findings/{finding_id}/events/{event_id}/attachment")
async def event_attachment(finding_id: int, event_id: int, v: Visit = Depends(either)) -> Response:  # noqa: B008
    """A rectification evidence file: the regulator, or the finding's own hospital (audited)."""
    own = v.user.role == "applicant"
    detail = await finding_queries.finding_detail(
        v.db, finding_id=finding_id, institution_id=v.user.institution_id if own else None
    )
    event = next((e for e in detail.events if e.id == event_id), None)
    found = parse_ref(event.attachment if event else None)
    if found is None:
        raise NotFound("附件不存在")
    path = path_for(v.settings.data_dir, found.sha256)
    if not path.exists():
        raise NotFound("附件不存在")
    await audit(
        v.db,
        now=v.now,
        actor=v.user.username,
        actor_kind="user",
        action="finding_attachment_view",
        target=f"finding:{finding_id}/event:{event_id}",
        institution_id=detail.finding.institution_id,
        client_addr=v.actor.client_addr,
    )
    return FileResponse(
        path,
        media_type=found.mime,
        filename=found.name,
        content_disposition_type="attachment",
        headers={"Cache-Control": "private, no-store"},
    )
