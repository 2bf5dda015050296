"""审计日志 on screen: the operator and the regulator see who did or viewed what, filtered by
action, person, institution and date, page by page."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.auth import audit_log
from imsp.clock import BEIJING
from imsp.portal.edge import PER_PAGE, Visit, page_number, pager, render, visitor

router = APIRouter()
auditors = visitor("operator", "regulator")

#: Groups of actions offered in the filter besides single actions.
GROUPS = {
    "login.": "登录与退出（全部）",
    "account.": "账号管理（全部）",
    "qualification.": "资质审核（全部）",
    "credential.": "接入凭据（全部）",
}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@router.get("/audit")
async def audit_page(v: Visit = Depends(auditors)) -> Response:  # noqa: B008
    params = v.request.query_params
    action = params.get("action", "")
    action = action if action in audit_log.LABELS or action in GROUPS else ""
    since, until = _day(params.get("since", "")), _day(params.get("until", ""))
    where = audit_log.Filter(
        action=action,
        actor=params.get("actor", "")[:60],
        institution=params.get("institution", "")[:50],
        since=datetime.combine(since, time(), BEIJING) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), BEIJING) if until else None,
    )
    rows, total = await audit_log.events(
        v.db, where=where, offset=(page_number(v.request) - 1) * PER_PAGE, limit=PER_PAGE
    )
    return render(
        v.request,
        "audit.html",
        visit=v,
        rows=rows,
        total=total,
        pager=pager(v.request, total),
        where=where,
        since=since.isoformat() if since else "",
        until=until.isoformat() if until else "",
        groups=GROUPS,
        labels=audit_log.LABELS,
    )
