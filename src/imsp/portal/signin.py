"""Sign-in, sign-out and password change (资质管理系统登录, 图 1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from imsp.auth import login
from imsp.auth.passwords import POLICY
from imsp.errors import Forbidden
from imsp.portal.edge import (
    CSRF_PROBLEM,
    HOME,
    LOGIN_COOKIE,
    Visit,
    checked_form,
    clear_session_cookie,
    render,
    safe_next,
    see_other,
    session_cookie_name,
    set_session_cookie,
    visitor,
)
from imsp.web import UnitOfWork, client_addr, ctx

router = APIRouter()


def _login_page(
    request: Request, secret: str, *, username: str = "", problem: str = "", status: int = 200
) -> Response:
    response = render(
        request,
        "login.html",
        csrf=login.csrf_token(secret),
        username=username,
        problem=problem,
        next=safe_next(request.query_params.get("next"), ""),
        status=status,
    )
    s = ctx(request).settings
    response.set_cookie(
        LOGIN_COOKIE,
        secret,
        max_age=3600,
        path="/login",
        secure=s.portal.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def login_form(request: Request, db: UnitOfWork) -> Response:
    c = ctx(request)
    token = request.cookies.get(session_cookie_name(c.settings))
    user = await login.resolve_session(db, token=token, now=c.clock.now())
    if user is not None:
        return see_other(HOME[user.role])
    secret = request.cookies.get(LOGIN_COOKIE) or login.new_secret()
    return _login_page(request, secret)


@router.post("/login")
async def login_submit(request: Request, db: UnitOfWork) -> Response:
    c = ctx(request)
    form = await request.form(max_files=0, max_fields=10)
    secret = request.cookies.get(LOGIN_COOKIE, "")
    presented = form.get("csrf_token")
    if not login.csrf_ok(secret, presented if isinstance(presented, str) else None):
        raise Forbidden(CSRF_PROBLEM)
    username = str(form.get("username") or "").strip()[:50]
    password = str(form.get("password") or "")[:200]
    if not username or not password:
        return _login_page(request, secret, username=username, problem="请输入用户名和密码")
    p = c.settings.portal
    result = await login.sign_in(
        db,
        username=username,
        password=password,
        policy=login.LoginPolicy(
            p.login_failures_before_lock, p.lock_minutes, p.session_ttl_seconds
        ),
        now=c.clock.now(),
        client_addr=client_addr(request),
    )
    if not result.ok or result.user is None or result.token is None:
        return _login_page(
            request, login.new_secret(), username=username, problem=result.problem or "", status=401
        )
    user = result.user
    if user.must_change_password:
        target = "/password"
    else:
        target = safe_next(str(form.get("next") or ""), HOME[user.role])
    response = see_other(target)
    set_session_cookie(response, c.settings, result.token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    await checked_form(v)
    await login.sign_out(
        v.db, token=v.token, user=v.user, now=v.now, client_addr=v.actor.client_addr
    )
    response = see_other("/login")
    clear_session_cookie(response, v.settings)
    return response


@router.get("/password")
async def password_form(v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    return render(v.request, "password.html", visit=v, errors={}, policy=POLICY)


@router.post("/password")
async def password_submit(v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    await checked_form(v)
    assert v.form is not None
    errors = await login.change_password(
        v.db,
        user=v.user,
        current=str(v.form.get("current") or ""),
        new=str(v.form.get("new") or ""),
        confirm=str(v.form.get("confirm") or ""),
        now=v.now,
        client_addr=v.actor.client_addr,
    )
    if errors:
        return render(v.request, "password.html", visit=v, errors=errors, policy=POLICY, status=400)
    token = await login.open_session(
        v.db,
        user=v.user,
        now=v.now,
        ttl_seconds=v.settings.portal.session_ttl_seconds,
        client_addr=v.actor.client_addr,
    )
    response = see_other(
        HOME[v.user.role] + ("&" if "?" in HOME[v.user.role] else "?") + "ok=password"
    )
    set_session_cookie(response, v.settings, token)
    return response


@router.get("/")
async def home(v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    return see_other(HOME[v.user.role])
