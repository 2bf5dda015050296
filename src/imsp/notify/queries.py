"""Reads of the message centre, scoped: a user sees only their own messages."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.notify.models import Mail, Message


async def unread_count(session: AsyncSession, *, user_id: int) -> int:
    """How many of the user's messages are unread (the header's badge)."""
    n = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.user_id == user_id, Message.read_at.is_(None))
    )
    return int(n or 0)


async def inbox(
    session: AsyncSession, *, user_id: int, unread_only: bool, offset: int, limit: int
) -> tuple[list[Message], int]:
    """One page of the user's messages, newest first, and how many there are in all."""
    where = [Message.user_id == user_id]
    if unread_only:
        where.append(Message.read_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Message).where(*where))
    rows = await session.scalars(
        select(Message).where(*where).order_by(Message.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


async def mails_of(session: AsyncSession, *, message_ids: list[int]) -> dict[int, Mail]:
    """The e-mail queued for each of these messages, if any (to show 邮件已发送 / 待发送)."""
    if not message_ids:
        return {}
    rows = await session.scalars(select(Mail).where(Mail.message_id.in_(message_ids)))
    return {m.message_id: m for m in rows if m.message_id is not None}
