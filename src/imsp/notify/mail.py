"""Delivery of the e-mail outbox (``notify_mail``) through the operator's SMTP relay.

Mail is queued by ``service.post`` in the unit of work of the change it reports, so a change is
never held up or undone by the relay: delivery happens afterwards, here, in the background of
the portal server (started by ``create_portal_app`` only when ``IMSP_SMTP__HOST`` is set).

One round claims the due rows (PostgreSQL ``FOR UPDATE SKIP LOCKED``, so two servers never send
the same mail) by pushing their next attempt a lease into the future and committing; then sends
each on a worker thread (``smtplib`` blocks), and records the outcome in a second unit of work:
``sent``, or another attempt after a growing pause, or ``failed`` after ``max_attempts``. A server
that dies mid-round leaves its claimed rows to be retried when the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final

from sqlalchemy import select

from imsp.clock import Clock
from imsp.config import SmtpSettings
from imsp.notify.models import Mail
from imsp.storage.db import Database

log = logging.getLogger("imsp.notify.mail")

#: A claimed mail is retried by anyone after this long (a crashed round).
LEASE: Final = timedelta(minutes=5)
#: Pause before the n-th retry: 30 s, 1 min, 2 min, … at most an hour.
FIRST_PAUSE: Final = 30.0
MAX_PAUSE: Final = 3600.0
BATCH: Final = 20
FOOTER: Final = (
    "\n\n——\n河北省互联网医疗服务监管平台 · 资质管理系统\n"
    "本邮件由系统自动发送，请勿直接回复；详情请登录平台查看消息中心。"
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    recipient: str
    subject: str
    body: str
    attempts: int


def compose(cfg: SmtpSettings, mail: Outgoing) -> EmailMessage:
    """The message as sent: UTF-8 subject and body (RFC 2047 / 8bit where needed)."""
    msg = EmailMessage()
    msg["From"] = cfg.sender or f"imsp@{cfg.host}"
    msg["To"] = mail.recipient
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=f"imsp-{mail.id}")
    msg.set_content(mail.body + FOOTER, charset="utf-8")
    return msg


def send_sync(cfg: SmtpSettings, message: EmailMessage) -> None:
    """Hand one message to the relay (blocking: call on a thread)."""
    with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds) as smtp:
        if cfg.starttls:
            smtp.starttls()
        if cfg.user:
            smtp.login(cfg.user, cfg.password.get_secret_value())
        smtp.send_message(message)


def pause_after(attempts: int) -> float:
    return float(min(MAX_PAUSE, FIRST_PAUSE * 2.0 ** max(0, attempts - 1)))


async def claim(db: Database, *, clock: Clock, batch: int = BATCH) -> list[Outgoing]:
    """Take the due mails for one round (their next attempt moves a lease ahead)."""
    now = clock.now()
    async with db.session() as s:
        rows = await s.scalars(
            select(Mail)
            .where(Mail.status == "pending", Mail.next_attempt_at <= now)
            .order_by(Mail.next_attempt_at, Mail.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        out = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            out.append(Outgoing(row.id, row.recipient, row.subject, row.body, row.attempts))
    return out


async def settle(
    db: Database, *, clock: Clock, cfg: SmtpSettings, mail: Outgoing, error: str
) -> None:
    """Record the outcome of one attempt."""
    now = clock.now()
    async with db.session() as s:
        row = await s.get(Mail, mail.id)
        if row is None:
            return
        if not error:
            row.status, row.sent_at, row.last_error = "sent", now, ""
        elif mail.attempts >= cfg.max_attempts:
            row.status, row.last_error = "failed", error[:200]
        else:
            row.next_attempt_at = now + timedelta(seconds=pause_after(mail.attempts))
            row.last_error = error[:200]


async def deliver_due(db: Database, *, cfg: SmtpSettings, clock: Clock) -> int:
    """One round: send what is due; how many mails were attempted."""
    mails = await claim(db, clock=clock)
    for mail in mails:
        try:
            await asyncio.to_thread(send_sync, cfg, compose(cfg, mail))
            error = ""
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("mail %s not delivered (attempt %s): %s", mail.id, mail.attempts, error)
        await settle(db, clock=clock, cfg=cfg, mail=mail, error=error)
    return len(mails)


async def run_mailer(db: Database, *, cfg: SmtpSettings, clock: Clock, stop: asyncio.Event) -> None:
    """Deliver rounds until ``stop`` is set; a round that fails (database away) is retried."""
    while not stop.is_set():
        try:
            done = await deliver_due(db, cfg=cfg, clock=clock)
        except Exception as exc:  # the mailer outlives any one round; its mails stay queued
            log.warning("mail round failed, will retry: %s", type(exc).__name__)
            done = 0
        if done:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=cfg.poll_seconds)
