"""视频调阅 pages: search a hospital's videos, play one through the platform, the viewing audit,
and the registration of an institution's video service.

Stable link for other pages (a stored prescription or visit links "调阅视频" to it)::

    /video/search?org=<organID>&visitNo=<就诊流水号>     (also patientName=, idCardNo=)

The browser only ever talks to this server: ``/video/stream/<lease>`` passes its Range request to
the hospital and streams the answer back; the hospital's URL and token stay on the platform.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.background import BackgroundTask
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from imsp.auth.login import resolve_session
from imsp.errors import BadRequest, Forbidden, ImspError, NotFound
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
    session_cookie_name,
    templates,
    visitor,
)
from imsp.standard import video as P
from imsp.video import queries, service
from imsp.video.client import PeerError, TokenCache
from imsp.video.playback import Playback, clean_range, open_playback
from imsp.video.sealing import SecretKeyError
from imsp.web import client_addr, ctx

router = APIRouter()
searchers = visitor("regulator", "operator", "applicant")
registrars = visitor("operator", "applicant")


def tokens_of(request: Request) -> TokenCache:
    """The process's cache of hospitals' tokens (one per app)."""
    cache = getattr(request.app.state, "video_tokens", None)
    if cache is None:
        cache = request.app.state.video_tokens = TokenCache()
    return cache


def viewer_of(v: Visit) -> service.Viewer:
    return service.Viewer(
        v.user.id, v.user.username, v.user.role, v.user.institution_id, client_addr(v.request)
    )


def search_link(org_code: str, **index: str) -> str:
    """The stable link to a search (``index``: visitNo / patientName / idCardNo)."""
    return "/video/search?" + urlencode({"org": org_code, **{k: v for k, v in index.items() if v}})


# --------------------------------------------------------------------------- search


@router.get("/video/search")
async def search_page(v: Visit = Depends(searchers)) -> Response:  # noqa: B008
    params = v.request.query_params
    query = {k: params.get(k, "").strip() for k in (*P.INDEXES, P.START_DATE, P.END_DATE)}
    viewer = viewer_of(v)
    choices = [(i, e) for i, e in await queries.institutions(v.db) if e is not None]
    if viewer.role not in service.ALL_INSTITUTIONS:
        choices = [(i, e) for i, e in choices if i.id == viewer.institution_id]
    org = params.get("org", "").strip()
    if not org and len(choices) == 1:
        org = choices[0][0].org_code
    context: dict[str, Any] = {
        "query": query,
        "org": org,
        "choices": choices,
        "titles": P.INDEX_TITLES,
        "result": None,
        "problem": "",
        "errors": {},
    }
    if any(query[k] for k in P.INDEXES):
        inst = await queries.institution_by_code(v.db, org) if org else None
        if inst is None:
            context["errors"] = {"org": "请选择已登记视频服务的机构"}
        else:
            try:
                context["result"] = await service.search(
                    v.db,
                    settings=v.settings,
                    tokens=tokens_of(v.request),
                    institution=inst,
                    query=query,
                    viewer=viewer,
                    now=v.now,
                )
            except BadRequest as exc:
                context["errors"] = errors_of(exc.data)
            except (PeerError, SecretKeyError) as exc:
                context["problem"] = f"调阅失败：{exc}"
            except NotFound as exc:
                context["problem"] = exc.msg
    return render(v.request, "video_search.html", visit=v, **context)


# --------------------------------------------------------------------------- play


@router.get("/video/watch/{lease_id}")
async def watch_page(lease_id: str, v: Visit = Depends(searchers)) -> Response:  # noqa: B008
    """The player. Before showing it, the platform asks the hospital for the first byte, so a
    broken service gets a clear message here instead of a silent black player."""
    viewer = viewer_of(v)
    lease = await service.lease_of(v.db, lease_id=lease_id, viewer=viewer)
    problem = ""
    try:
        playback = await open_playback(
            v.db,
            settings=v.settings,
            tokens=tokens_of(v.request),
            lease=lease,
            range_header="bytes=0-0",
        )
        await playback.close()
    except (PeerError, SecretKeyError) as exc:
        problem = f"无法播放：{exc}"
        if isinstance(exc, PeerError):
            await service.record_error(v.db, viewer=viewer, now=v.now, error=exc, during="play",
                                       institution_id=lease.institution_id, lease_id=lease.id)  # fmt: skip
    if not problem:
        await service.record_play(v.db, lease=lease, viewer=viewer, now=v.now)
    meta = dict(lease.meta)
    meta[P.ID_CARD_NO] = P.mask_id_card(str(meta.get(P.ID_CARD_NO) or ""))
    return render(v.request, "video_watch.html", visit=v, lease=lease, meta=meta, problem=problem)


@router.get("/video/stream/{lease_id}")
async def stream(lease_id: str, request: Request) -> Response:
    """The video bytes, Range passed through. Uses its own short unit of work (not the page's),
    so no database transaction stays open while the video streams."""
    c = ctx(request)
    now = c.clock.now()
    async with c.db.session() as db:
        user = await resolve_session(
            db, token=request.cookies.get(session_cookie_name(c.settings), ""), now=now
        )
        if user is None or user.must_change_password:
            return PlainTextResponse("请先登录", status_code=401)
        viewer = service.Viewer(
            user.id, user.username, user.role, user.institution_id, client_addr(request)
        )
        try:
            lease = await service.lease_of(db, lease_id=lease_id, viewer=viewer)
        except ImspError as exc:
            return PlainTextResponse(exc.msg, status_code=exc.http_status)
        try:
            playback = await open_playback(
                db,
                settings=c.settings,
                tokens=tokens_of(request),
                lease=lease,
                range_header=clean_range(request.headers.get("range")),
            )
        except PeerError as exc:
            await service.record_error(db, viewer=viewer, now=now, error=exc, during="stream",
                                       institution_id=lease.institution_id, lease_id=lease.id)  # fmt: skip
            return PlainTextResponse(f"视频服务异常：{exc.msg}", status_code=502)
        institution_id = lease.institution_id
    up = playback.upstream

    async def body() -> Any:
        failure: PeerError | None = None
        try:
            async for chunk in up.body:
                yield chunk
        except PeerError as exc:
            failure = exc
        finally:
            await _account(request, viewer, lease_id, institution_id, playback, failure)

    return StreamingResponse(
        body(),
        status_code=up.status,
        headers={**up.headers, "Cache-Control": "no-store"},
        media_type=None,
        background=BackgroundTask(playback.close),
    )


async def _account(
    request: Request,
    viewer: service.Viewer,
    lease_id: str,
    institution_id: int,
    playback: Playback,
    failure: PeerError | None,
) -> None:
    """After a stream: add the bytes served to the lease; audit a misbehaving peer."""
    await playback.close()
    c = ctx(request)
    up = playback.upstream
    if failure is None and up.overrun:
        failure = PeerError(
            "overrun", f"视频服务发送的数据超过声明的长度，平台已在 {up.served} 字节处截断"
        )
    async with c.db.session() as db:
        await service.add_bytes(db, lease_id=lease_id, served=up.served)
        if failure is not None:
            await service.record_error(db, viewer=viewer, now=c.clock.now(), error=failure,
                                       during="stream", institution_id=institution_id,
                                       lease_id=lease_id)  # fmt: skip


# --------------------------------------------------------------------------- audit


@router.get("/video/audit")
async def audit_page(v: Visit = Depends(visitor("regulator", "operator", "applicant"))) -> Response:  # noqa: B008
    rows, total = await queries.viewing_log(
        v.db, viewer=viewer_of(v), offset=(page_number(v.request) - 1) * PER_PAGE, limit=PER_PAGE
    )
    return render(v.request, "video_audit.html", visit=v, rows=rows, pager=pager(v.request, total))


# --------------------------------------------------------------------------- registration


@router.get("/video/endpoints")
async def endpoints_page(v: Visit = Depends(registrars)) -> Response:  # noqa: B008
    rows = await queries.institutions(v.db)
    if v.user.role == "applicant":
        mine = [i for i, _ in rows if i.id == v.user.institution_id]
        if not mine:
            raise NotFound("当前账号未关联机构")
        return see_other(f"/video/endpoints/{mine[0].org_code}")
    return render(v.request, "video_endpoints.html", visit=v, rows=rows)


async def _institution_for(v: Visit, org: str) -> Any:
    inst = await queries.institution_by_code(v.db, org)
    if inst is None:
        raise NotFound("机构不存在")
    if v.user.role == "applicant" and inst.id != v.user.institution_id:
        raise Forbidden("当前账号无权登记该机构的视频服务")
    return inst


@router.get("/video/endpoints/{org}")
async def endpoint_form(org: str, v: Visit = Depends(registrars)) -> Response:  # noqa: B008
    inst = await _institution_for(v, org)
    row = await service.endpoint_of(v.db, inst.id)
    checks = await queries.checks_of(v.db, inst.id)
    values = {
        "base_url": row.base_url if row else "",
        "app_id": row.app_id if row else "",
        "ca_bundle": row.ca_bundle if row else "",
    }
    return render(v.request, "video_endpoint_form.html", visit=v, inst=inst, row=row,
                  values=values, errors={}, checks=checks)  # fmt: skip


@router.post("/video/endpoints/{org}")
async def endpoint_save(org: str, v: Visit = Depends(registrars)) -> Response:  # noqa: B008
    await checked_form(v)
    inst = await _institution_for(v, org)
    values = {k: v.text(k) for k in ("base_url", "app_id", "ca_bundle")}
    try:
        await service.register_endpoint(
            v.db,
            settings=v.settings,
            institution_id=inst.id,
            app_secret=v.text("app_secret"),
            actor=viewer_of(v),
            now=v.now,
            **values,
        )
    except BadRequest as exc:
        row = await service.endpoint_of(v.db, inst.id)
        raise Rerender(
            render(
                v.request,
                "video_endpoint_form.html",
                visit=v,
                inst=inst,
                row=row,
                values=values,
                errors=errors_of(exc.data),
                checks=[],
                status=400,
            )
        ) from exc
    return see_other(f"/video/endpoints/{inst.org_code}?ok=saved")


def format_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    if size < 1024:
        return f"{n} B"
    for unit in ("KB", "MB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} GB"


def seconds(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    m, s = divmod(int(value), 60)
    return f"{m}:{s:02d}"


templates.filters["bytes"] = format_bytes
templates.filters["seconds"] = seconds
