"""Exchange-side endpoint of 接入确认: ``GET /acceptance/status`` — the hospital's own acceptance
board, for ``imsp acceptance status`` in the hospital kit. Authorised by the hospital's access
token (either channel); it sees only its own institution."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from imsp.acceptance import service
from imsp.acceptance.workflow import STATES
from imsp.exchange.openapi import ERRORS
from imsp.exchange.tokens import TokenService
from imsp.web import JsonResponse, client_addr, ctx


def _bearer(request: Request) -> str | None:
    token = request.headers.get("accesstoken")
    if token:
        return token.strip()
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


async def status(request: Request) -> Response:
    """接入确认看板：三部分验收项、阈值、实测值与缺项。"""
    c = ctx(request)
    tokens: TokenService = request.app.state.tokens
    grant = await tokens.verify(c.db.engine, _bearer(request), client_addr(request))
    deps = service.Deps(cfg=c.settings.acceptance)
    async with c.db.session() as session:
        board = await service.board_of(session, institution_id=grant.institution_id, deps=deps)
        case = await service.case_of(
            session, institution_id=grant.institution_id, now=c.clock.now()
        )
        state = None if case.status == "new" else case.status
        reports = await service.reports_of(session, institution_id=grant.institution_id)
    data = board.as_json()
    data["status"] = state or "none"
    data["statusLabel"] = STATES[state].label
    data["channel"] = grant.channel
    data["reports"] = [
        {"number": r.number, "sha256": r.sha256, "revoked": r.revoked_at is not None}
        for r in reports
    ]
    return JsonResponse(
        {"code": 200, "msg": "成功", "data": data}, headers={"Cache-Control": "no-store"}
    )


def install(app: FastAPI) -> None:
    app.add_api_route(
        "/acceptance/status",
        status,
        methods=["GET"],
        tags=["接入确认"],
        summary="接入确认看板（本机构）",
        description="用访问令牌查询本机构的验收看板：HTTP 接口、数据、问诊视频三部分，"
        "每项的要求、实测值、是否达标与缺项；以及接入确认的状态。",
        response_model=None,
        responses={
            200: {"description": "看板与接入确认状态"},
            **{code: ERRORS[code] for code in (400, 401, 429, 503)},
        },
        openapi_extra={
            "parameters": [
                {
                    "name": "accessToken",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "本机构的访问令牌（测试或正式通道）",
                }
            ]
        },
    )
