"""What every portal page shares: who is visiting, CSRF checks, rendering, redirects, paging.

Pages stay thin (STYLE §2): parse the form, call one domain function, render or redirect.
Sign-in state comes from the session cookie (``imsp.auth.login``); a visitor without a live
session is sent to the login page, one who must change the initial password to ``/password``.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Scope

from imsp import web
from imsp.auth.audit import Actor, as_actor
from imsp.auth.login import csrf_ok, csrf_token, resolve_session
from imsp.auth.models import PortalUser
from imsp.auth.service import ROLES
from imsp.clock import format_datetime
from imsp.config import Settings
from imsp.errors import CommitFailed, Forbidden
from imsp.notify.queries import unread_count
from imsp.portal.tables import rows_html
from imsp.qualification.attachments import size_label, too_large
from imsp.web import UnitOfWork, client_addr, ctx, trusted_networks

PLATFORM = "河北省互联网医疗服务监管平台"
SYSTEM = "资质管理系统"
SESSION_COOKIE = "imsp_session"
SECURE_SESSION_COOKIE = "__Host-imsp_session"
LOGIN_COOKIE = "imsp_login"
CSRF_FIELD = "csrf_token"
CSRF_PROBLEM = (
    "表单校验失败：页面已过期或请求并非来自本系统的页面（CSRF 令牌无效）。"
    "本次操作未生效，请返回上一页，刷新后重新提交。"
)
PER_PAGE: Final = 20

NAV: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "operator": (
        ("/accounts", "账号管理"),
        ("/accounts/new", "分配账号"),
        ("/video/endpoints", "视频服务登记"),
        ("/monitor", "接入监控"),
        ("/audit", "审计日志"),
    ),
    "applicant": (
        ("/my", "申请概览"),
        ("/my/institution", "机构注册"),
        ("/my/attachments", "附件材料"),
        ("/my/departments", "科室信息"),
        ("/my/doctors", "人员信息"),
        ("/my/progress", "审核进度查询"),
        ("/my/acceptance", "接入确认"),
        ("/my/findings", "监管发现"),
        ("/video/search", "视频调阅"),
        ("/video/endpoints", "视频服务登记"),
    ),
    "reviewer": (("/review", "待审核"), ("/review?status=all", "全部申请")),
    "regulator": (
        ("/supervision", "监管总览"),
        ("/supervision/findings", "监管发现"),
        ("/supervision/rules", "监管规则"),
        ("/review?status=all", "申请列表"),
        ("/video/search", "视频调阅"),
        ("/video/audit", "调阅记录"),
        ("/audit", "审计日志"),
    ),
    "centre": (("/centre", "接入确认"),),
}
HOME: Final[dict[str, str]] = {
    "centre": "/centre",
    "operator": "/accounts",
    "applicant": "/my",
    "reviewer": "/review",
    "regulator": "/supervision",
}
#: Fixed confirmation messages after a redirect (``?ok=saved``) — never user-supplied text.
FLASH: Final[dict[str, str]] = {
    "saved": "已保存",
    "applied": "已申请接入确认，请等待统计信息中心审核",
    "decided": "已处理",
    "uploaded": "附件已上传",
    "removed": "已删除",
    "submitted": "已提交，请等待登记机关审核",
    "withdrawn": "已撤回提交，可修改后重新提交",
    "approved": "已审核通过",
    "rejected": "已驳回，申请机构将看到驳回原因",
    "password": "密码已修改",
    "account": "账号状态已更新",
    "unlocked": "账号已解锁",
    "read": "已标为已读",
    "email": "邮件通知地址已保存",
    "logout": "已退出登录",
}

templates = Environment(
    loader=PackageLoader("imsp.portal", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["dt"] = lambda v: format_datetime(v) if isinstance(v, datetime) else ""
templates.filters["size"] = size_label
templates.filters["too_large"] = too_large
templates.globals["table_rows"] = rows_html


class Redirect(Exception):
    """Raised by a dependency to send the visitor elsewhere (login, password change)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class Rerender(Exception):
    """Raised by a page with the response to show (a form with its errors). Raising — instead of
    returning — lets the exception pass the unit of work, which rolls back whatever the use case
    may have written before it refused; the page is rendered before that, while data is loaded."""

    def __init__(self, response: Response) -> None:
        super().__init__("rerender")
        self.response = response


def is_https(scope: Scope, trusted_proxies: str) -> bool:
    """Whether the browser reached the portal over HTTPS: the connection's own scheme, or
    ``X-Forwarded-Proto: https`` — believed only from a configured trusted proxy
    (``Settings.trusted_proxies``, comma-separated addresses or networks)."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not trusted_proxies or not client:
        return False
    try:
        peer = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if not any(peer in net for net in trusted_networks(trusted_proxies)):
        return False
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


def secure_cookies(request: Request) -> bool:
    """Cookies get ``Secure`` (and the session cookie its ``__Host-`` name) over HTTPS, or always
    when ``portal.secure_cookies`` is set."""
    settings = ctx(request).settings
    return settings.portal.secure_cookies or is_https(request.scope, settings.trusted_proxies)


def session_cookie_name(request: Request) -> str:
    return SECURE_SESSION_COOKIE if secure_cookies(request) else SESSION_COOKIE


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        session_cookie_name(request),
        token,
        max_age=ctx(request).settings.portal.session_ttl_seconds,
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        session_cookie_name(request),
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="lax",
    )


@dataclass
class Visit:
    """A signed-in visitor's request: the user, the unit of work, the CSRF token, the time."""

    request: Request
    db: AsyncSession
    user: PortalUser
    token: str
    settings: Settings
    now: datetime
    csrf: str = ""
    form: FormData | None = field(default=None, repr=False)
    unread: int = 0  # unread messages (消息中心), shown in the header

    @property
    def actor(self) -> Actor:
        return as_actor(self.user, client_addr(self.request))

    def text(self, name: str) -> str:
        """A text field of the checked form ("" if absent)."""
        assert self.form is not None
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def texts(self, name: str) -> list[str]:
        assert self.form is not None
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    def file(self, name: str) -> UploadFile | None:
        assert self.form is not None
        value = self.form.get(name)
        return value if isinstance(value, UploadFile) else None


async def _visit(request: Request, db: UnitOfWork) -> AsyncIterator[Visit]:
    c = ctx(request)
    now = c.clock.now()
    token = request.cookies.get(session_cookie_name(request), "")
    user = await resolve_session(db, token=token, now=now)
    if user is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise Redirect("/login" if request.method != "GET" else f"/login?next={quote(target)}")
    if user.must_change_password and request.url.path not in ("/password", "/logout"):
        raise Redirect("/password")
    visit = Visit(request, db, user, token, c.settings, now, csrf=csrf_token(token))
    if not user.must_change_password:
        visit.unread = await unread_count(db, user_id=user.id)
    try:
        yield visit
    finally:
        if visit.form is not None:  # uploaded files are spooled to temporary files
            await visit.form.close()


def keep_form(v: Visit, page: Callable[[str], Awaitable[Response]]) -> None:
    """Should this POST's unit of work fail to commit, answer with ``await page(problem)`` — the
    form with what was submitted — instead of a bare error page (see ``imsp.web.session``).
    ``page`` runs after the rollback: it loads again what it shows (the visitor is reloaded
    here)."""

    async def again(problem: str) -> Response:
        await v.db.refresh(v.user)
        return await page(problem)

    web.keep_form(v.request, again)


def visitor(*roles: str) -> Callable[..., Awaitable[Visit]]:
    """A dependency: the signed-in visitor, who must have one of ``roles`` (any role if none)."""

    async def dependency(v: Visit = Depends(_visit, scope="function")) -> Visit:  # noqa: B008
        if roles and v.user.role not in roles:
            raise Forbidden("当前账号无权访问此页面")
        return v

    return dependency


async def checked_form(v: Visit) -> Visit:
    """Read the POSTed form and verify its CSRF token (constant time). A missing or forged token
    ends the request with a clear error page before anything changes."""
    v.form = form = await v.request.form(max_files=4, max_fields=400)
    presented = form.get(CSRF_FIELD)
    if not csrf_ok(v.token, presented if isinstance(presented, str) else None):
        raise Forbidden(CSRF_PROBLEM)
    return v


def _active(nav: tuple[tuple[str, str], ...], path: str, full: str) -> str:
    """The navigation entry of the current page (longest matching path; query links exactly)."""
    best = ""
    for href, _ in nav:
        if "?" in href:
            if full == href or full.startswith(href + "&"):
                return href
        elif (path == href or path.startswith(href + "/")) and len(href) > len(best):
            best = href
    return best


def render(
    request: Request,
    name: str,
    *,
    visit: Visit | None = None,
    status: int = 200,
    failure: str = "",
    **context: Any,
) -> HTMLResponse:
    """Render page ``name``. ``failure``: why the submitted form shown again was not saved."""
    user = visit.user if visit else None
    flash = FLASH.get(request.query_params.get("ok", ""), "")
    problem = context.pop("problem", None)
    if problem is None:
        problem = problem_of(request)
    nav = NAV.get(user.role, ()) if user and not user.must_change_password else ()
    path = request.url.path
    full = path + ("?" + request.url.query if request.url.query else "")
    body = templates.get_template(name).render(
        platform=PLATFORM,
        system=SYSTEM,
        user=user,
        unread=visit.unread if visit else 0,
        role_label=ROLES.get(user.role, "") if user else "",
        nav=nav,
        active=_active(nav, path, full),
        path=path,
        csrf=visit.csrf if visit else context.pop("csrf", ""),
        csrf_field=CSRF_FIELD,
        flash="" if failure else flash,
        failure=failure,
        failure_code=CommitFailed.code,
        problem=problem,
        upload_limit=request.app.state.ctx.settings.portal.max_upload_bytes,
        **context,
    )
    return HTMLResponse(body, status_code=status)


#: ``?problem=`` after a redirect back to the form: a fixed message, never user-supplied text.
TOO_LARGE: Final = "too_large"


def problem_of(request: Request) -> str:
    """The message of a refusal that happened before the page saw the request (an upload over
    the size limit is stopped at the door and sent back to its form)."""
    if request.query_params.get("problem") == TOO_LARGE:
        return too_large(request.app.state.ctx.settings.portal.max_upload_bytes)
    return ""


def see_other(location: str) -> RedirectResponse:
    """Post/redirect/get."""
    return RedirectResponse(location, status_code=303)


def safe_next(target: str | None, default: str) -> str:
    """A same-site path to return to after sign-in (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    total: int
    base: str  # the URL without the page parameter, ending in ? or &
    param: str = "page"

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def url(self, page: int) -> str:
        return f"{self.base}{self.param}={page}"


def page_number(request: Request, param: str = "page") -> int:
    try:
        return max(1, min(100_000, int(request.query_params.get(param, "1"))))
    except ValueError:
        return 1


def pager(request: Request, total: int, *, per_page: int = PER_PAGE, param: str = "page") -> Pager:
    """Paging links for a list of ``total`` items; the current page comes from ``?<param>=``
    (pages with two lists page them independently)."""
    page = page_number(request, param)
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in (param, "ok")]
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
    base = request.url.path + "?" + (query + "&" if query else "")
    return Pager(page, per_page, total, base, param)


def errors_of(data: Any) -> dict[str, str]:
    """Field errors carried by a ``BadRequest`` raised by a domain use case."""
    if isinstance(data, Mapping):
        errs = data.get("errors")
        if isinstance(errs, Mapping):
            return {str(k): str(v) for k, v in errs.items()}
    return {}
