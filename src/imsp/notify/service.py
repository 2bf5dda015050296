"""Use cases of the message centre: post a message to users (and queue its e-mail), mark read.

Functions take the caller's session and never commit: a message about a state change is written
in the same unit of work as the change, so it exists exactly when the change does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import PortalUser
from imsp.errors import BadRequest, NotFound
from imsp.notify.models import Mail, Message

#: An address as far as the portal checks it (the relay has the last word): one @, a dot after.
EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
MAX_EMAIL: Final = 254


@dataclass(frozen=True, slots=True)
class Note:
    """What a message says: a subject line, a plain-text body and a portal path to act on it."""

    subject: str
    body: str
    link: str = ""


async def post(
    session: AsyncSession,
    *,
    users: Sequence[PortalUser],
    note: Note,
    now: datetime,
    mail: bool,
) -> list[Message]:
    """Put ``note`` in the message centre of each of ``users``; with ``mail`` (an SMTP relay is
    configured), also queue an e-mail to each of them who gave an address."""
    out = []
    for user in users:
        message = Message(
            user_id=user.id,
            at=now,
            subject=note.subject[:200],
            body=note.body,
            link=note.link[:300],
            read_at=None,
        )
        session.add(message)
        out.append(message)
    await session.flush()
    if mail:
        for user, message in zip(users, out, strict=True):
            if user.email:
                session.add(
                    Mail(
                        message_id=message.id,
                        recipient=user.email,
                        subject=message.subject,
                        body=note.body,
                        created_at=now,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        sent_at=None,
                        last_error="",
                    )
                )
        await session.flush()
    return out


async def mark_read(
    session: AsyncSession, *, user: PortalUser, message_id: int, now: datetime
) -> None:
    """Mark one of ``user``'s own messages read; another user's message is *not found*."""
    message = await session.get(Message, message_id)
    if message is None or message.user_id != user.id:
        raise NotFound("消息不存在")
    if message.read_at is None:
        message.read_at = now


async def mark_all_read(session: AsyncSession, *, user: PortalUser, now: datetime) -> int:
    """Mark every unread message of ``user`` read; how many were unread."""
    result = await session.execute(
        update(Message)
        .where(Message.user_id == user.id, Message.read_at.is_(None))
        .values(read_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def email_problem(address: str) -> str:
    """Why ``address`` is not a usable e-mail address ("" if it is, or if it is empty)."""
    if not address:
        return ""
    if len(address) > MAX_EMAIL or not EMAIL.match(address):
        return "电子邮箱格式不正确，例如 xinxike@example.org.cn"
    return ""


async def set_email(session: AsyncSession, *, user: PortalUser, address: str) -> None:
    """Set (or, with "", clear) the address ``user``'s notifications are mailed to."""
    address = address.strip()
    problem = email_problem(address)
    if problem:
        raise BadRequest("电子邮箱有误", data={"errors": {"email": problem}})
    user.email = address or None
