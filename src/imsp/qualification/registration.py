"""Use cases of the applicant side (第五章 第 1–5 步): account allocation, 机构注册 and
submission. Departments and doctors are in ``qualification.roster``.

Every change checks ``workflow.ensure_editable`` first and validates everything before writing, so
a refused request changes nothing. Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import service as auth
from imsp.auth.accounts import Issued, create_account, identity_problems
from imsp.auth.audit import Actor, AuditAction, audit
from imsp.auth.models import Institution, PortalUser
from imsp.errors import BadRequest
from imsp.qualification import fields as F
from imsp.qualification import notify
from imsp.qualification.attachments import KINDS, current_attachments
from imsp.qualification.models import Application, Submission
from imsp.qualification.roster import departments_of, list_records
from imsp.qualification.workflow import ensure_editable, on_application, transition
from imsp.standard.validate import validator_for


async def open_application(
    session: AsyncSession, *, institution_id: int, actor: Actor, now: datetime
) -> Application:
    """The institution's application, opened (state 填报中) if it has none yet."""
    app = await session.scalar(
        select(Application).where(Application.institution_id == institution_id)
    )
    if app is not None:
        return app
    app = Application(
        institution_id=institution_id,
        status="draft",
        version=0,
        profile={},
        created_at=now,
        updated_at=now,
    )
    session.add(app)
    await session.flush()
    await transition(
        session, app=app, action="open", actor=actor.username, role=actor.role, now=now
    )
    return app


async def allocate_applicant(
    session: AsyncSession,
    *,
    actor: Actor,
    org_code: str,
    org_name: str,
    username: str,
    display_name: str,
    now: datetime,
    second: bool = False,
) -> Issued:
    """第二步: the operator allocates an account to an applicant institution (统一社会信用代码 and
    name as submitted to the registration authority) and opens its application. An institution
    that already has an account gets another only with ``second`` (the operator confirmed, after
    seeing the existing ones: ``BadRequest`` with ``data["existing"]`` otherwise)."""
    org_code, org_name = org_code.strip().upper(), org_name.strip()
    errors: dict[str, str] = {}
    # The header block's organID (GB 32100) and organName (≤ 50) rules, via the one validator.
    probe = validator_for("organization", F.standard()).check(
        {"organID": org_code, "organName": org_name}
    )
    for issue in probe.errors:
        if issue.field == "organID" and "org_code" not in errors:
            errors["org_code"] = F.message(issue)
        elif issue.field == "organName" and "org_name" not in errors:
            errors["org_name"] = F.message(issue)
    if errors:  # say everything that is wrong at once, the account's fields too
        errors.update(
            await identity_problems(
                session, username=username.strip(), display_name=display_name.strip()
            )
        )
        raise BadRequest("机构信息有误", data={"errors": errors})
    existing = await applicant_accounts(session, org_code=org_code)
    if existing and not second:
        names = "、".join(f"{u.username}（{u.display_name}）" for u in existing)
        problem = f"该机构已有账号：{names}。如确需再分配一个账号，请勾选确认后再提交"
        raise BadRequest(
            "该机构已有申请机构账号",
            data={"errors": {"org_code": problem}, "existing": [u.username for u in existing]},
        )
    institution = await auth.ensure_institution(session, org_code=org_code, name=org_name, now=now)
    issued = await create_account(
        session,
        actor=actor,
        role="applicant",
        username=username.strip(),
        display_name=display_name.strip(),
        institution=institution,
        now=now,
    )
    await open_application(session, institution_id=institution.id, actor=actor, now=now)
    return issued


async def applicant_accounts(session: AsyncSession, *, org_code: str) -> list[PortalUser]:
    """The applicant accounts of the institution with 组织机构代码 ``org_code``, oldest first."""
    rows = await session.scalars(
        select(PortalUser)
        .join(Institution, Institution.id == PortalUser.institution_id)
        .where(Institution.org_code == org_code, PortalUser.role == "applicant")
        .order_by(PortalUser.id)
    )
    return list(rows)


# --------------------------------------------------------------------------- 机构注册


async def save_profile(
    session: AsyncSession,
    *,
    app: Application,
    institution: Institution,
    raw: Mapping[str, Any],
    now: datetime,
) -> None:
    """Save the 机构注册 form; ``BadRequest`` with ``{"errors": {"entity.areaCode": …}}`` if invalid."""
    ensure_editable(app)
    profile, errors = F.validate_profile(raw, org_code=institution.org_code, today=now.date())
    if errors:
        raise BadRequest("机构信息有误", data={"errors": errors})
    app.profile = profile
    app.updated_at = now


# --------------------------------------------------------------------------- 提交


async def snapshot(session: AsyncSession, *, app: Application) -> dict[str, Any]:
    """Everything a submission freezes: profile, departments, doctors, attachments."""
    deps = await list_records(session, app=app, roster=F.DEPARTMENTS)
    docs = await list_records(session, app=app, roster=F.DOCTORS)
    files = await current_attachments(session, app=app)
    return {
        "profile": dict(app.profile),
        "departments": [dict(d.data) for d in deps],
        "doctors": [dict(d.data) for d in docs],
        "attachments": [
            {
                "id": a.id,
                "kind": a.kind,
                "sha256": a.sha256,
                "size": a.size,
                "mime": a.mime,
                "name": a.original_name,
                "version": a.version,
            }
            for a in files
        ],
    }


async def missing_for_submission(
    session: AsyncSession, *, app: Application, institution: Institution, now: datetime
) -> list[str]:
    """What still prevents submitting (Chinese, one line each); empty when complete."""
    problems: list[str] = []
    if not app.profile:
        problems.append("尚未填写机构注册信息")
    else:
        _, errors = F.validate_profile(app.profile, org_code=institution.org_code, today=now.date())
        if errors:
            problems.append(f"机构注册信息有 {len(errors)} 处需要修改")
    files = await current_attachments(session, app=app)
    for kind, label in KINDS.items():
        if not any(a.kind == kind for a in files):
            problems.append(f"尚未上传{label}")
    departments = await departments_of(session, app)
    if not departments:
        problems.append("尚未登记科室信息")
    docs = await list_records(session, app=app, roster=F.DOCTORS)
    if not docs:
        problems.append("尚未登记人员信息")
    for d in docs:
        dept = d.data.get("deptID")
        if dept not in departments:
            problems.append(
                f"人员 {d.data.get('doctorName') or ''} 的科室编码 {dept} 未在科室信息中登记"
            )
    return problems


async def submit(
    session: AsyncSession,
    *,
    app: Application,
    institution: Institution,
    actor: Actor,
    now: datetime,
    mail: bool = False,
) -> Submission:
    """第 5 步: submit (or, after a rejection, resubmit) the application for review; the
    reviewers get a message (and, with ``mail``, an e-mail) in the same unit of work."""
    action = "submit" if app.status == "draft" else "resubmit"
    ensure_editable(app)
    problems = await missing_for_submission(session, app=app, institution=institution, now=now)
    if problems:
        raise BadRequest("资料尚不完整，无法提交", data={"problems": problems})
    frozen = await snapshot(session, app=app)
    await transition(
        session, app=app, action=action, actor=actor.username, role=actor.role, now=now
    )
    sub = Submission(
        application_id=app.id,
        version=app.version,
        submitted_at=now,
        submitted_by=actor.username,
        snapshot=frozen,
    )
    session.add(sub)
    await audit(
        session,
        actor,
        AuditAction(f"qualification.{action}"),
        now=now,
        **on_application(app),
        detail={"version": app.version},
    )
    await notify.on_submission(session, app=app, action=action, now=now, mail=mail)
    await session.flush()
    return sub


async def withdraw(
    session: AsyncSession, *, app: Application, actor: Actor, now: datetime, mail: bool = False
) -> None:
    """The applicant takes back a submission the reviewer has not decided on yet; the submitted
    version stays on record and the data can be changed and submitted again."""
    await transition(
        session, app=app, action="withdraw", actor=actor.username, role=actor.role, now=now
    )
    await audit(
        session,
        actor,
        AuditAction.QUALIFICATION_WITHDRAW,
        now=now,
        **on_application(app),
        detail={"version": app.version},
    )
    await notify.on_submission(session, app=app, action="withdraw", now=now, mail=mail)
    await session.flush()
