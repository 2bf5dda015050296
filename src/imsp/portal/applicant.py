"""The applicant institution's pages (申请机构, 第五章 第 3–7 步): overview and submission,
机构注册, attachments, progress. Departments and doctors are in ``portal.roster``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.datastructures import UploadFile
from starlette.responses import Response

from imsp.acceptance.service import confirmation_of
from imsp.auth.models import Institution
from imsp.errors import BadRequest, Forbidden
from imsp.portal.edge import (
    Rerender,
    Visit,
    checked_form,
    errors_of,
    keep_form,
    problem_of,
    render,
    see_other,
    visitor,
)
from imsp.portal.widgets import institution_inputs
from imsp.qualification import fields as F
from imsp.qualification import queries, registration
from imsp.qualification import roster as records
from imsp.qualification.attachments import (
    ACCEPTED,
    KINDS,
    TYPE_LABELS,
    Upload,
    add_attachment,
    current_attachments,
    remove_attachment,
)
from imsp.qualification.models import Application
from imsp.qualification.review import reason_targets
from imsp.qualification.workflow import ACTION_LABELS, STATES, is_editable

router = APIRouter()
applicant = visitor("applicant")


async def mine(v: Visit) -> tuple[Application, Institution]:
    """The visitor's own application (opened on first visit) and institution."""
    if v.user.institution_id is None:
        raise Forbidden("账号未关联申请机构，请联系平台实施方")
    inst = await v.db.get(Institution, v.user.institution_id)
    assert inst is not None
    app = await registration.open_application(
        v.db, institution_id=inst.id, actor=v.actor, now=v.now
    )
    return app, inst


async def rejection_notes(v: Visit, app: Application) -> dict[str, str]:
    """Field-level reasons of the last rejection, while the applicant must act on them."""
    if app.status != "rejected":
        return {}
    decision = await queries.last_decision(v.db, app=app)
    if decision is None or decision.action != "reject":
        return {}
    return {str(k): str(val) for k, val in decision.field_reasons.items()}


def _common(app: Application, inst: Institution) -> dict[str, Any]:
    return {
        "app": app,
        "inst": inst,
        "state": STATES[app.status],
        "editable": is_editable(app.status),
    }


async def _overview(v: Visit, problems: list[str] | None = None, status: int = 200) -> Response:
    app, inst = await mine(v)
    files = await current_attachments(v.db, app=app)
    missing = (
        problems
        if problems is not None
        else await registration.missing_for_submission(v.db, app=app, institution=inst, now=v.now)
    )
    decision = await queries.last_decision(v.db, app=app)
    return render(
        v.request,
        "my_home.html",
        visit=v,
        **_common(app, inst),
        missing=missing,
        files={k: sum(1 for a in files if a.kind == k) for k in KINDS},
        kinds=KINDS,
        departments=await records.count_records(v.db, app=app, roster=F.DEPARTMENTS),
        doctors=await records.count_records(v.db, app=app, roster=F.DOCTORS),
        decision=decision,
        targets=reason_targets(),
        acceptance=await confirmation_of(v.db, institution_id=inst.id),
        status=status,
    )


@router.get("/my")
async def overview(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    return await _overview(v)


@router.post("/my/submit")
async def submit(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    await checked_form(v)
    app, inst = await mine(v)
    try:
        await registration.submit(
            v.db,
            app=app,
            institution=inst,
            actor=v.actor,
            now=v.now,
            mail=v.settings.smtp.enabled,
        )
    except BadRequest as exc:
        problems = exc.data.get("problems") if isinstance(exc.data, dict) else None
        raise Rerender(await _overview(v, problems or [exc.msg], status=400)) from exc
    return see_other("/my/progress?ok=submitted")


@router.post("/my/withdraw")
async def withdraw(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    await checked_form(v)
    app, _ = await mine(v)
    await registration.withdraw(
        v.db, app=app, actor=v.actor, now=v.now, mail=v.settings.smtp.enabled
    )
    return see_other("/my?ok=withdrawn")


# --------------------------------------------------------------------------- 机构注册


def _institution_page(
    v: Visit,
    app: Application,
    inst: Institution,
    values: dict[str, Any],
    errors: dict[str, str],
    notes: dict[str, str],
    status: int = 200,
    failure: str = "",
) -> Response:
    kind, sections = institution_inputs(values, errors, notes, org_code=inst.org_code)
    return render(
        v.request,
        "my_institution.html",
        visit=v,
        **_common(app, inst),
        kind=kind,
        sections=sections,
        titles=F.SECTIONS,
        errors=errors,
        status=status,
        failure=failure,
    )


@router.get("/my/institution")
async def institution_form(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    app, inst = await mine(v)
    values: dict[str, Any] = dict(app.profile) or {"entity": {"organName": inst.name}}
    return _institution_page(v, app, inst, values, {}, await rejection_notes(v, app))


@router.post("/my/institution")
async def institution_save(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    await checked_form(v)
    app, inst = await mine(v)
    raw: dict[str, Any] = {F.TYPE_FIELD: v.text(F.TYPE_FIELD)}
    for section in F.SECTIONS:
        raw[section] = {f.code: v.text(f"{section}.{f.code}") for f in F.institution_fields()}
    notes = await rejection_notes(v, app)
    try:
        await registration.save_profile(v.db, app=app, institution=inst, raw=raw, now=v.now)
    except BadRequest as exc:
        page = _institution_page(v, app, inst, raw, errors_of(exc.data), notes, status=400)
        raise Rerender(page) from exc

    async def again(problem: str) -> Response:
        app, inst = await mine(v)
        return _institution_page(v, app, inst, raw, {}, notes, 503, failure=problem)

    keep_form(v, again)
    return see_other("/my/attachments?ok=saved")


# --------------------------------------------------------------------------- 附件


async def _attachments_page(
    v: Visit, errors: dict[str, str] | None = None, kind: str = "", status: int = 200
) -> Response:
    app, inst = await mine(v)
    files = await current_attachments(v.db, app=app)
    return render(
        v.request,
        "my_attachments.html",
        visit=v,
        **_common(app, inst),
        files=files,
        kinds=KINDS,
        type_labels=TYPE_LABELS,
        accepted=ACCEPTED,
        errors=errors or {"file": problem_of(v.request)},
        problem="",  # shown beside the file field
        kind=kind,
        notes=await rejection_notes(v, app),
        status=status,
    )


@router.get("/my/attachments")
async def attachments(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    return await _attachments_page(v)


async def read_upload(file: UploadFile | None) -> Upload:
    if file is None:
        return Upload("", b"")
    content = await file.read()
    return Upload(file.filename or "", content)


@router.post("/my/attachments")
async def attachment_upload(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    await checked_form(v)
    app, _ = await mine(v)
    kind = v.text("kind")
    try:
        await add_attachment(
            v.db,
            app=app,
            kind=kind,
            upload=await read_upload(v.file("file")),
            uploader=v.user.username,
            data_dir=v.settings.data_dir,
            max_bytes=v.settings.portal.max_upload_bytes,
            now=v.now,
        )
    except BadRequest as exc:
        page = await _attachments_page(v, errors_of(exc.data), kind=kind, status=400)
        raise Rerender(page) from exc
    return see_other("/my/attachments?ok=uploaded")


@router.post("/my/attachments/{attachment_id}/remove")
async def attachment_remove(attachment_id: int, v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    await checked_form(v)
    app, _ = await mine(v)
    await remove_attachment(v.db, app=app, attachment_id=attachment_id, now=v.now)
    return see_other("/my/attachments?ok=removed")


# --------------------------------------------------------------------------- 审核进度查询


@router.get("/my/progress")
async def progress(v: Visit = Depends(applicant)) -> Response:  # noqa: B008
    app, inst = await mine(v)
    steps = await queries.timeline(v.db, app=app)
    return render(
        v.request,
        "progress.html",
        visit=v,
        **_common(app, inst),
        steps=steps,
        names=await queries.actor_names(v.db, steps),
        states=STATES,
        actions=ACTION_LABELS,
        targets=reason_targets(),
    )
