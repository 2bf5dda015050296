"""Tables of the notify domain: messages to portal users and the e-mail outbox (发件箱)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base


class Message(Base):
    """One message in a portal user's message centre (消息中心)."""

    __tablename__ = "notify_message"
    __table_args__ = (Index("ix_notify_message_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("portal_user.id"))
    at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(300), default="")  # a path inside the portal
    read_at: Mapped[datetime | None]


class Mail(Base):
    """An e-mail waiting to be sent (or sent, or given up on). Written in the unit of work of the
    change it reports; delivered after commit by ``notify.mail`` with retries."""

    __tablename__ = "notify_mail"
    __table_args__ = (Index("ix_notify_mail_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("notify_message.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(200), default="")
