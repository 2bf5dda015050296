"""账号管理 for the platform operator (第五章 第二步: 为申请机构分配资质管理系统登录帐号)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.auth import accounts
from imsp.auth.service import ROLES
from imsp.errors import BadRequest
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
from imsp.portal.signin import throttle_of
from imsp.qualification.registration import allocate_applicant

router = APIRouter()
operator = visitor("operator")


@router.get("/accounts")
async def account_list(v: Visit = Depends(operator)) -> Response:  # noqa: B008
    role = v.request.query_params.get("role", "")
    role = role if role in accounts.MANAGED_ROLES else ""
    rows, total = await accounts.list_accounts(
        v.db, role=role or None, offset=(page_number(v.request) - 1) * PER_PAGE, limit=PER_PAGE
    )
    return render(
        v.request,
        "accounts.html",
        visit=v,
        rows=rows,
        pager=pager(v.request, total),
        role=role,
        roles=ROLES,
        managed=accounts.MANAGED_ROLES,
        now=v.now,
    )


def _new_page(
    v: Visit, values: dict[str, str], errors: dict[str, str], status: int = 200, failure: str = ""
) -> Response:
    return render(
        v.request,
        "account_new.html",
        visit=v,
        values=values,
        errors=errors,
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
    values = {k: v.text(k) for k in ("role", "username", "display_name", "org_code", "org_name")}
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
    except BadRequest as exc:
        raise Rerender(_new_page(v, values, errors_of(exc.data), status=400)) from exc

    async def again(problem: str) -> Response:
        return _new_page(v, values, {}, status=503, failure=problem)

    keep_form(v, again)
    org = values if issued.user.role == "applicant" else None
    return _issued_page(v, issued, org=org, reset=False)


@router.post("/accounts/{user_id}/reset")
async def account_reset(user_id: int, v: Visit = Depends(operator)) -> Response:  # noqa: B008
    await checked_form(v)
    issued = await accounts.reset_password(v.db, actor=v.actor, user_id=user_id, now=v.now)
    throttle_of(v.request).forget(issued.user.username)  # the explicit unlock
    return _issued_page(v, issued, org=None, reset=True)


def _issued_page(
    v: Visit, issued: accounts.Issued, *, org: dict[str, str] | None, reset: bool
) -> Response:
    """The one-time password of a new or reset account, shown once."""
    role_name = ROLES[issued.user.role]
    return render(
        v.request, "account_issued.html", visit=v, issued=issued, role_name=role_name, org=org,
        reset=reset,
    )  # fmt: skip


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
