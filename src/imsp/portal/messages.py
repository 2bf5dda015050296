"""消息中心: every signed-in user's own messages (unread first in the header count), mark read,
mark all read, and the address notifications are mailed to (when an SMTP relay is configured)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.errors import BadRequest
from imsp.notify import queries, service
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
    visitor,
)

router = APIRouter()
anyone = visitor()


async def _page(
    v: Visit, *, errors: dict[str, str] | None = None, email: str | None = None, status: int = 200
) -> Response:
    unread_only = v.request.query_params.get("filter") == "unread"
    rows, total = await queries.inbox(
        v.db,
        user_id=v.user.id,
        unread_only=unread_only,
        offset=(page_number(v.request) - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    return render(
        v.request,
        "messages.html",
        visit=v,
        rows=rows,
        mails=await queries.mails_of(v.db, message_ids=[m.id for m in rows]),
        total=total,
        pager=pager(v.request, total),
        unread_only=unread_only,
        smtp=v.settings.smtp.enabled,
        email=v.user.email or "" if email is None else email,
        errors=errors or {},
        status=status,
    )


@router.get("/messages")
async def inbox(v: Visit = Depends(anyone)) -> Response:  # noqa: B008
    return await _page(v)


@router.post("/messages/read-all")
async def read_all(v: Visit = Depends(anyone)) -> Response:  # noqa: B008
    await checked_form(v)
    await service.mark_all_read(v.db, user=v.user, now=v.now)
    return see_other("/messages?ok=read")


@router.post("/messages/email")
async def email(v: Visit = Depends(anyone)) -> Response:  # noqa: B008
    await checked_form(v)
    address = v.text("email")
    try:
        await service.set_email(v.db, user=v.user, address=address)
    except BadRequest as exc:
        page = await _page(v, errors=errors_of(exc.data), email=address, status=400)
        raise Rerender(page) from exc
    return see_other("/messages?ok=email")


@router.post("/messages/{message_id}/read")
async def read(message_id: int, v: Visit = Depends(anyone)) -> Response:  # noqa: B008
    await checked_form(v)
    await service.mark_read(v.db, user=v.user, message_id=message_id, now=v.now)
    return see_other("/messages?ok=read")
