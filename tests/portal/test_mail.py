"""Notification e-mail through a real SMTP server on loopback: queued in the unit of work of the
state change, delivered after commit in the background, retried when the relay refuses, never
holding up or undoing the change."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_portal_app
from imsp.auth.models import PortalUser
from imsp.clock import FrozenClock
from imsp.config import Settings, SmtpSettings
from imsp.notify import mail
from imsp.notify.models import Mail
from imsp.notify.service import Note, post
from imsp.storage.db import Database
from tests.portal.client import post_form, sign_in
from tests.qualification import builders as b
from tests.support.database import run, with_database
from tests.support.live import refused_url
from tests.support.smtp import Inbox, smtp_server

STAFF = "Passw0rd-123"


def with_smtp(settings: Settings, port: int, **extra: object) -> Settings:
    smtp = SmtpSettings(
        host="127.0.0.1", port=port, sender="imsp@wjw.hebei.gov.cn", poll_seconds=0.05, **extra
    )  # type: ignore[arg-type]
    return settings.model_copy(update={"smtp": smtp})


def mails(settings: Settings) -> list[Mail]:
    async def work(session: AsyncSession) -> list[Mail]:
        return list(await session.scalars(select(Mail).order_by(Mail.id)))

    return run(settings, work)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def relay(inbox: Inbox) -> Iterator[int]:
    with smtp_server(inbox) as port:
        yield port


def test_decisions_and_submissions_are_mailed_in_chinese(
    settings: Settings, clock: FrozenClock, inbox: Inbox, relay: int
) -> None:
    s = with_smtp(settings, relay)
    b.make_user(s, clock.now(), username="reviewer1", role="reviewer")
    b.make_user(s, clock.now(), username="reviewer2", role="reviewer")  # no address: no mail
    who = b.make_complete_applicant(s, clock.now())
    with TestClient(create_portal_app(s, clock=clock)) as c:
        sign_in(c, "reviewer1", STAFF)
        r = post_form(c, "/messages/email", {"email": "shen@wjw.example.cn"}, page="/messages")
        assert "新消息同时发送到该邮箱" in r.text
        c.cookies.clear()
        sign_in(c, who.username, who.password, "Hospital-2026")
        post_form(c, "/messages/email", {"email": "xinxike@hospital.example.cn"}, page="/messages")
        assert post_form(c, "/my/submit", page="/my").url.path == "/my/progress"

        [(to, first)] = inbox.wait_for(1)
        assert to == ["shen@wjw.example.cn"]
        assert first["Subject"] == f"新的资质申请待审核：{b.ORG_NAME}"
        assert first["From"] == "imsp@wjw.hebei.gov.cn"
        assert "提交了资质申请第 1 版，请审核。" in first.get_content()

        c.cookies.clear()
        sign_in(c, "reviewer1", STAFF)
        url = f"/applications/{who.application_id}"
        post_form(c, f"{url}/reject", {"reason": "执业许可证已过期，请上传新证"}, page=url)
        _, (to, second) = inbox.wait_for(2)
        assert to == ["xinxike@hospital.example.cn"]
        assert second["Subject"] == "资质申请被驳回（第 1 版），请补充完善后重新提交"
        body = second.get_content()
        assert "驳回原因：执业许可证已过期，请上传新证" in body and "消息中心" in body
        page = c.get("/messages").text
        assert "邮件已发送" in page
    assert [m.status for m in mails(s)] == ["sent", "sent"]


def test_a_refusing_relay_never_holds_up_the_change_and_the_mail_is_retried(
    settings: Settings, clock: FrozenClock
) -> None:
    inbox_refusing = Inbox(refuse=1)
    with smtp_server(inbox_refusing) as port:
        s = with_smtp(settings, port)
        b.make_user(s, clock.now(), username="reviewer1", role="reviewer")

        async def address(session: AsyncSession) -> None:
            user = await session.scalar(
                select(PortalUser).where(PortalUser.username == "reviewer1")
            )
            assert user is not None
            user.email = "shen@wjw.example.cn"

        run(s, address)
        who = b.make_complete_applicant(s, clock.now())
        with TestClient(create_portal_app(s, clock=clock)) as c:
            sign_in(c, who.username, who.password, "Hospital-2026")
            r = post_form(c, "/my/submit", page="/my")
            assert r.url.path == "/my/progress" and "已提交" in r.text  # committed regardless
            deadline = time.monotonic() + 30
            while inbox_refusing.refused == 0:
                assert time.monotonic() < deadline, "the relay was never tried"
                time.sleep(0.05)
            while not mails(s)[0].last_error:  # the failed attempt is recorded
                assert time.monotonic() < deadline, "the failed attempt was never recorded"
                time.sleep(0.05)
            [queued] = mails(s)
            assert queued.status == "pending" and queued.attempts == 1
            assert "451" in queued.last_error
            # it waits (frozen clock) until its pause is over, then is sent
            clock.advance(seconds=mail.pause_after(1) + 1)
            [(to, msg)] = inbox_refusing.wait_for(1)
            assert to == ["shen@wjw.example.cn"] and msg["Subject"].startswith("新的资质申请待审核")
    [row] = mails(s)
    assert row.status == "sent" and row.attempts == 2 and row.last_error == ""
    assert queued.id == row.id


def test_a_mail_is_given_up_after_its_attempts_and_the_reason_kept(
    settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    with refused_url() as url:
        port = int(url.rsplit(":", 1)[1])
        s = with_smtp(settings, port, max_attempts=2)

        async def work(db: Database) -> None:
            async with db.session() as session:
                user = await session.scalar(select(PortalUser))
                assert user is not None
                user.email = "shen@wjw.example.cn"
                await post(
                    session, users=[user], note=Note("测试", "正文"), now=clock.now(), mail=True
                )
            assert await mail.deliver_due(db, cfg=s.smtp, clock=clock) == 1
            assert await mail.deliver_due(db, cfg=s.smtp, clock=clock) == 0  # not yet due
            clock.advance(seconds=mail.pause_after(1) + 1)
            assert await mail.deliver_due(db, cfg=s.smtp, clock=clock) == 1

        with_database(s, work)
    [row] = mails(s)
    assert row.status == "failed" and row.attempts == 2
    assert "ConnectionRefusedError" in row.last_error
