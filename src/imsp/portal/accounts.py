"""账号管理 for the platform operator (第五章 第二步: 为申请机构分配资质管理系统登录帐号)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.auth import accounts
from imsp.auth.models import PortalUser
from imsp.auth.service import ROLES
from imsp.clock import format_datetime
from imsp.errors import BadRequest
from imsp.notify import service as notify_service
from imsp.portal.edge import (
    PER_PAGE,
    Rerender,
    Visit,
    checked_form,
    errors_of,
    keep_form,
    page_number,
    pager,
    render,
    see_other,
    visitor,
)
from imsp.portal.export import MAX_ROWS, xlsx_response
from imsp.portal.signin import throttle_of
from imsp.qualification.registration import allocate_applicant, applicant_accounts

router = APIRouter()
operator = visitor("operator")


ACCOUNT_HEADERS = (
    "用户名", "姓名/说明", "角色", "所属机构", "组织机构代码", "状态", "创建时间", "最近登录",
)  # fmt: skip
#: account state → (label, badge tone)
_STATES = {
    "inactive": ("已停用", "neutral"),
    "locked": ("已锁定", "bad"),
    "initial": ("待修改初始密码", "pending"),
    "ok": ("正常", "ok"),
}


def account_state(user: PortalUser, now: datetime) -> tuple[str, str]:
    if not user.active:
        return _STATES["inactive"]
    if user.locked_until is not None and user.locked_until > now:
        return _STATES["locked"]
    return _STATES["initial"] if user.must_change_password else _STATES["ok"]


def account_cells(row: accounts.AccountRow, now: datetime) -> list[str]:
    """One account as the list page shows it."""
    u, inst = row.user, row.institution
    return [
        u.username,
        u.display_name,
        ROLES[u.role],
        inst.name if inst else "",
        inst.org_code if inst else "",
        account_state(u, now)[0],
        format_datetime(u.created_at),
        format_datetime(u.last_login_at) if u.last_login_at else "",
    ]


def _account_filter(v: Visit) -> tuple[str, str]:
    role = v.request.query_params.get("role", "")
    role = role if role in accounts.MANAGED_ROLES else ""
    return role, v.request.query_params.get("q", "").strip()[:50]


@router.get("/accounts/export.xlsx")
async def account_export(v: Visit = Depends(operator)) -> Response:  # noqa: B008
    role, q = _account_filter(v)
    rows, _ = await accounts.list_accounts(v.db, role=role or None, offset=0, limit=MAX_ROWS, q=q)
    title = ROLES.get(role, "全部账号")
    return await xlsx_response(
        title, f"账号-{title}.xlsx", ACCOUNT_HEADERS, [account_cells(r, v.now) for r in rows]
    )


@router.get("/accounts")
async def account_list(v: Visit = Depends(operator)) -> Response:  # noqa: B008
    role, q = _account_filter(v)
    rows, total = await accounts.list_accounts(
        v.db,
        role=role or None,
        offset=(page_number(v.request) - 1) * PER_PAGE,
        limit=PER_PAGE,
        q=q,
    )
    return render(
        v.request,
        "accounts.html",
        visit=v,
        rows=[(r, account_cells(r, v.now), account_state(r.user, v.now)[1]) for r in rows],
        total=total,
        q=q,
        export=f"/accounts/export.xlsx?{urlencode({'role': role, 'q': q})}",
        pager=pager(v.request, total),
        role=role,
        roles=ROLES,
        managed=accounts.MANAGED_ROLES,
        now=v.now,
    )


def _new_page(
    v: Visit,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    existing: list[str] | None = None,
    failure: str = "",
) -> Response:
    return render(
        v.request,
        "account_new.html",
        visit=v,
        values=values,
        errors=errors,
        existing=existing or [],
        roles={r: ROLES[r] for r in accounts.MANAGED_ROLES},
        status=status,
        failure=failure,
    )


@router.get("/accounts/new")
async def account_new(v: Visit = Depends(operator)) -> Response:  # noqa: B008
    return _new_page(v, {"role": "applicant"}, {})


@router.post("/accounts/new")
async def account_create(v: Visit = Depends(operator)) -> Response:  # noqa: B008
    await checked_form(v)
    fields = ("role", "username", "display_name", "org_code", "org_name", "email")
    values = {k: v.text(k) for k in fields}
    try:
        if values["role"] == "applicant":
            issued = await allocate_applicant(
                v.db,
                actor=v.actor,
                org_code=values["org_code"],
                org_name=values["org_name"],
                username=values["username"],
                display_name=values["display_name"],
                now=v.now,
                second=v.text("second") == "1",
            )
        else:
            issued = await accounts.create_account(
                v.db,
                actor=v.actor,
                role=values["role"],
                username=values["username"],
                display_name=values["display_name"],
                now=v.now,
            )
        if values["email"]:
            # in the same unit of work: a refused address rolls the new account back (Rerender)
            await notify_service.set_email(v.db, user=issued.user, address=values["email"])
    except BadRequest as exc:
        existing = exc.data.get("existing") if isinstance(exc.data, dict) else None
        page = _new_page(v, values, errors_of(exc.data), status=400, existing=existing)
        raise Rerender(page) from exc

    async def again(problem: str) -> Response:
        return _new_page(v, values, {}, status=503, failure=problem)

    keep_form(v, again)
    org = values if issued.user.role == "applicant" else None
    others: list[PortalUser] = []
    if org is not None:
        found = await applicant_accounts(v.db, org_code=values["org_code"].strip().upper())
        others = [u for u in found if u.id != issued.user.id]
    return _issued_page(v, issued, org=org, reset=False, others=others)


@router.post("/accounts/{user_id}/reset")
async def account_reset(user_id: int, v: Visit = Depends(operator)) -> Response:  # noqa: B008
    await checked_form(v)
    issued = await accounts.reset_password(v.db, actor=v.actor, user_id=user_id, now=v.now)
    await throttle_of(v.request).forget(issued.user.username)  # the explicit unlock
    return _issued_page(v, issued, org=None, reset=True)


def _issued_page(
    v: Visit,
    issued: accounts.Issued,
    *,
    org: dict[str, str] | None,
    reset: bool,
    others: list[PortalUser] | None = None,
) -> Response:
    """The one-time password of a new or reset account, shown once (with the institution's other
    accounts, if it has any)."""
    role_name = ROLES[issued.user.role]
    return render(
        v.request, "account_issued.html", visit=v, issued=issued, role_name=role_name, org=org,
        reset=reset, others=others or [],
    )  # fmt: skip


@router.post("/accounts/{user_id}/unlock")
async def account_unlock(user_id: int, v: Visit = Depends(operator)) -> Response:  # noqa: B008
    await checked_form(v)
    await accounts.unlock(v.db, actor=v.actor, user_id=user_id, now=v.now)
    return see_other("/accounts?ok=unlocked")


@router.post("/accounts/{user_id}/active")
async def account_active(user_id: int, v: Visit = Depends(operator)) -> Response:  # noqa: B008
    await checked_form(v)
    await accounts.set_active(
        v.db,
        actor=v.actor,
        user_id=user_id,
        active=v.text("active") == "1",
        now=v.now,
    )
    return see_other("/accounts?ok=account")
