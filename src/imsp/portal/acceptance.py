"""接入确认 pages: the acceptance board (institution, operator, centre), applying, the centre's
decision, the reports, and the operator's connection monitor (接入监控) with its drill-down.

Thin: each page parses, calls one function of ``imsp.acceptance`` and renders. Identifiers in
example records and archived requests are masked; opening an archived request is audited.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.acceptance import monitor, service
from imsp.acceptance.board import Board, pct
from imsp.acceptance.service import Deps, Who
from imsp.acceptance.workflow import ACTION_LABELS, STATES, allowed_actions
from imsp.auth.audit import AuditAction, audit
from imsp.auth.models import Institution
from imsp.errors import BadRequest, Forbidden, NotFound
from imsp.portal.edge import Rerender, Visit, checked_form, errors_of, render, see_other, visitor
from imsp.standard.model import load_standard

router = APIRouter()
operators = visitor("operator")
board_readers = visitor("operator", "centre")
centre = visitor("centre")
applicants = visitor("applicant")
report_readers = visitor("operator", "centre", "applicant")


def deps_of(v: Visit) -> Deps:
    return Deps(cfg=v.settings.acceptance)


def who_of(v: Visit) -> Who:
    return Who(v.user.username, v.user.role, v.user.institution_id)


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


async def _board_page(
    v: Visit,
    inst: Institution,
    *,
    error: str = "",
    errors: dict[str, str] | None = None,
    issued: service.Decision | None = None,
    status: int = 200,
) -> Response:
    deps = deps_of(v)
    board: Board = await service.board_of(v.db, institution_id=inst.id, deps=deps)
    case = await service.case_of(v.db, institution_id=inst.id, now=v.now)
    state = None if case.status == "new" else case.status
    return render(
        v.request,
        "acceptance_board.html",
        visit=v,
        inst=inst,
        board=board,
        case=case,
        state=STATES[state],
        actions=allowed_actions(state, v.user.role),
        action_labels=ACTION_LABELS,
        timeline=await service.timeline(v.db, institution_id=inst.id),
        states=STATES,
        reports=await service.reports_of(v.db, institution_id=inst.id),
        visits=await service.test_visits(v.db, institution_id=inst.id)
        if v.user.role == "operator"
        else [],
        std=deps.std,
        scope=service.services_of(case, deps.std),
        error=error,
        errors=errors or {},
        issued=issued,
        status=status,
    )


async def _institution(v: Visit, org: str) -> Institution:
    if v.user.role == "applicant":
        if v.user.institution_id is None:
            raise NotFound("机构不存在")
        inst = await service.institution_of(v.db, v.user.institution_id)
        if inst.org_code != org:
            raise NotFound("机构不存在")
        return inst
    return await service.institution_by_code(v.db, org)


# --------------------------------------------------------------------------- board pages


@router.get("/my/acceptance")
async def my_board(v: Visit = Depends(applicants)) -> Response:  # noqa: B008
    if v.user.institution_id is None:
        raise NotFound("账号未关联机构")
    return await _board_page(v, await service.institution_of(v.db, v.user.institution_id))


@router.get("/acceptance/{org}")
async def board_page(org: str, v: Visit = Depends(board_readers)) -> Response:  # noqa: B008
    return await _board_page(v, await _institution(v, org))


@router.post("/acceptance/{org}/apply")
async def apply(org: str, v: Visit = Depends(applicants)) -> Response:  # noqa: B008
    await checked_form(v)
    inst = await _institution(v, org)
    try:
        await service.apply(
            v.db,
            institution_id=inst.id,
            who=who_of(v),
            now=v.now,
            deps=deps_of(v),
            internet_hospital=v.text("internet_hospital"),
            vendor=v.text("vendor"),
        )
    except (BadRequest, Forbidden) as exc:
        page = await _board_page(
            v, inst, error=exc.msg, errors=errors_of(exc.data), status=exc.http_status
        )
        raise Rerender(page) from exc
    return see_other("/my/acceptance?ok=applied")


@router.post("/acceptance/{org}/decide")
async def decide(org: str, v: Visit = Depends(centre)) -> Response:  # noqa: B008
    await checked_form(v)
    inst = await _institution(v, org)
    action = v.text("action")
    try:
        decision = await service.decide(
            v.db,
            institution_id=inst.id,
            action=action,
            who=who_of(v),
            now=v.now,
            deps=deps_of(v),
            reason=v.text("reason"),
        )
    except (BadRequest, Forbidden) as exc:
        page = await _board_page(
            v, inst, error=exc.msg, errors=errors_of(exc.data), status=exc.http_status
        )
        raise Rerender(page) from exc
    if decision.credential is not None:  # the production secret is shown exactly once
        return await _board_page(v, inst, issued=decision)
    return see_other(f"/acceptance/{inst.org_code}?ok=decided")


@router.get("/centre")
async def centre_queue(v: Visit = Depends(centre)) -> Response:  # noqa: B008
    rows = await monitor.connections(v.db)
    return render(v.request, "acceptance_centre.html", visit=v, rows=rows, states=STATES)


@router.get("/acceptance/reports/{report_id}.{fmt}")
async def report_file(report_id: int, fmt: str, v: Visit = Depends(report_readers)) -> Response:  # noqa: B008
    row = await service.report_by_id(v.db, report_id)
    if v.user.role == "applicant" and row.institution_id != v.user.institution_id:
        raise NotFound("验收报告不存在")
    name = f"acceptance-report-{row.id}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "pdf":
        return Response(row.pdf, media_type="application/pdf", headers=disposition)
    if fmt == "json":
        body = dict(row.content, sha256OfPdf=row.sha256)
        if row.revoked_at is not None:
            body["revoked"] = {"at": row.revoked_at.isoformat(), "reason": row.revoked_reason}
        return Response(
            orjson.dumps(body, option=orjson.OPT_INDENT_2),
            media_type="application/json",
            headers=disposition,
        )
    raise NotFound("验收报告不存在")


# --------------------------------------------------------------------------- operator's tools


@router.post("/acceptance/{org}/scope")
async def scope(org: str, v: Visit = Depends(operators)) -> Response:  # noqa: B008
    await checked_form(v)
    inst = await _institution(v, org)
    try:
        await service.set_scope(
            v.db,
            institution_id=inst.id,
            services=v.texts("services"),
            who=who_of(v),
            now=v.now,
            std=load_standard(),
        )
    except BadRequest as exc:
        raise Rerender(await _board_page(v, inst, error=exc.msg, status=400)) from exc
    return see_other(f"/acceptance/{inst.org_code}?ok=saved")


@router.post("/acceptance/{org}/video")
async def video_check(org: str, v: Visit = Depends(operators)) -> Response:  # noqa: B008
    await checked_form(v)
    inst = await _institution(v, org)
    try:
        await service.check_video(
            v.db,
            settings=v.settings,
            institution_id=inst.id,
            visit_no=v.text("visit_no"),
            who=who_of(v),
            now=v.now,
        )
    except (BadRequest, NotFound) as exc:
        raise Rerender(await _board_page(v, inst, error=exc.msg, status=400)) from exc
    return see_other(f"/acceptance/{inst.org_code}?ok=saved")


@router.post("/acceptance/{org}/purge")
async def purge(org: str, v: Visit = Depends(operators)) -> Response:  # noqa: B008
    await checked_form(v)
    inst = await _institution(v, org)
    await service.purge_test_data(v.db, institution_id=inst.id, who=who_of(v), now=v.now)
    return see_other(f"/monitor/{inst.org_code}?ok=removed")


@router.get("/monitor")
async def monitor_page(v: Visit = Depends(operators)) -> Response:  # noqa: B008
    rows = await monitor.connections(v.db)
    return render(v.request, "monitor.html", visit=v, rows=rows, pct=pct)


@router.get("/monitor/{org}")
async def monitor_detail(org: str, v: Visit = Depends(operators)) -> Response:  # noqa: B008
    detail = await monitor.detail(v.db, org_code=org, std=load_standard())
    if detail is None:
        raise NotFound("机构不存在或尚无接入记录")
    if detail.errors:  # example records are patient data, masked but still audited
        await audit(
            v.db,
            v.actor,
            AuditAction("exchange.view"),
            v.now,
            target=org,
            institution_id=detail.connection.institution_id,
            detail={"masked": True, "where": "monitor", "examples": len(detail.errors)},
        )
    return render(
        v.request,
        "monitor_detail.html",
        visit=v,
        d=detail,
        c=detail.connection,
        pct=pct,
        pretty=_pretty,
    )


@router.get("/monitor/exchange/{exchange_id}")
async def exchange_request(exchange_id: str, v: Visit = Depends(operators)) -> Response:  # noqa: B008
    try:
        xid = uuid.UUID(exchange_id)
    except ValueError:
        raise NotFound("交换记录不存在") from None
    found = await monitor.masked_request(v.db, exchange_id=xid, std=load_standard())
    if found is None:
        raise NotFound("交换记录不存在")
    row, records, intact = found
    await audit(
        v.db,
        v.actor,
        AuditAction("exchange.view"),
        v.now,
        target=str(xid),
        detail={"masked": True, "where": "monitor"},
    )
    return render(
        v.request,
        "monitor_request.html",
        visit=v,
        row=row,
        records=[_pretty(r) for r in records],
        intact=intact,
    )
