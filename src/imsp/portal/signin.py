"""Sign-in, sign-out and password change (资质管理系统登录, 图 1)."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from imsp.auth import login
from imsp.auth.passwords import POLICY
from imsp.auth.throttle import Allowance, LoginThrottle
from imsp.config import Settings
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
    secure_cookies,
    see_other,
    session_cookie_name,
    set_session_cookie,
    visitor,
)
from imsp.shared_state import SharedState
from imsp.web import UnitOfWork, client_addr, ctx

router = APIRouter()


def throttle_of(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def new_throttle(settings: Settings, shared: SharedState) -> LoginThrottle:
    """The portal's sign-in throttle, from ``settings.portal``, counting in the shared state."""
    p = settings.portal
    cap = float(p.login_max_delay_seconds)
    return LoginThrottle(
        delays=shared.delays,
        per_address=Allowance(free=p.login_free_failures_per_address, base=1.0, cap=cap),
        per_pair=Allowance(free=p.login_free_failures_per_account, base=1.0, cap=cap),
        per_account=Allowance(free=10 * p.login_free_failures_per_account, base=1.0, cap=cap),
    )


def _login_page(
    request: Request,
    secret: str,
    *,
    username: str = "",
    problem: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
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
    response.headers.update(headers or {})
    response.set_cookie(
        LOGIN_COOKIE,
        secret,
        max_age=3600,
        path="/login",
        secure=secure_cookies(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def login_form(request: Request, db: UnitOfWork) -> Response:
    c = ctx(request)
    token = request.cookies.get(session_cookie_name(request))
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
    now = c.clock.now()
    addr = client_addr(request)
    throttle = throttle_of(request)
    wait = await throttle.attempt(username=username, addr=addr, now=now.timestamp())
    if wait > 0:  # refused before any password is hashed; the same for every username
        # Answer slowly (holding no database connection and no CPU): a client that keeps
        # hammering gets at most one answer per tarpit period on each connection, so a flood
        # of refused attempts costs the server next to nothing.
        held = min(wait, c.settings.portal.login_tarpit_seconds)
        await asyncio.sleep(held)
        wait = max(1, math.ceil(wait - held))
        return _login_page(
            request,
            secret,
            username=username,
            problem=f"登录失败次数过多，请 {wait} 秒后再试",
            status=429,
            headers={"Retry-After": str(wait)},
        )
    result = await login.sign_in(
        db,
        username=username,
        password=password,
        policy=login.LoginPolicy(c.settings.portal.session_ttl_seconds),
        now=now,
        client_addr=addr,
    )
    if not result.ok or result.user is None or result.token is None:
        return _login_page(
            request, login.new_secret(), username=username, problem=result.problem or "", status=401
        )
    await throttle.succeeded(username=username, addr=addr)
    user = result.user
    if user.must_change_password:
        target = "/password"
    else:
        target = safe_next(str(form.get("next") or ""), HOME[user.role])
    response = see_other(target)
    set_session_cookie(response, request, result.token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    await checked_form(v)
    await login.sign_out(
        v.db, token=v.token, user=v.user, now=v.now, client_addr=v.actor.client_addr
    )
    response = see_other("/login")
    clear_session_cookie(response, v.request)
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
    set_session_cookie(response, v.request, token)
    return response


@router.get("/")
async def home(v: Visit = Depends(visitor())) -> Response:  # noqa: B008
    return see_other(HOME[v.user.role])
