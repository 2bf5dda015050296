"""消息中心: who is told what when an application changes state, unread counts in the header,
mark read / mark all read, scoping, and messages written in the same unit of work as the change."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.notify.models import Mail, Message
from tests.portal.client import post_form, sign_in
from tests.qualification import builders as b
from tests.support.database import run

NEW = "Hospital-2026"
STAFF = "Passw0rd-123"


def unread_badge(html: str) -> int:
    found = re.search(r'id="unread-count">(\d+)<', html)
    return int(found.group(1)) if found else 0


def count(settings: Settings, table: type[Message] | type[Mail]) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)

    return run(settings, work)


def test_reviewers_are_told_of_a_submission_and_the_applicant_of_the_decision(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    c = portal_client
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    b.make_user(settings, clock.now(), username="reviewer2", role="reviewer")
    b.make_user(settings, clock.now(), username="regulator1", role="regulator")
    who = b.make_complete_applicant(settings, clock.now())

    sign_in(c, who.username, who.password, NEW)
    assert unread_badge(c.get("/my").text) == 0
    assert "消息中心" in c.get("/my").text
    post_form(c, "/my/submit", page="/my")
    post_form(c, "/logout", page="/my")

    # Both reviewers are told, the regulator is not.
    for name in ("reviewer1", "reviewer2"):
        c.cookies.clear()
        sign_in(c, name, STAFF)
        page = c.get("/review").text
        assert unread_badge(page) == 1, name
        inbox = c.get("/messages").text
        assert f"新的资质申请待审核：{b.ORG_NAME}" in inbox
        assert f'href="/applications/{who.application_id}"' in inbox
    c.cookies.clear()
    sign_in(c, "regulator1", STAFF)
    assert unread_badge(c.get("/supervision").text) == 0
    assert "暂无消息" in c.get("/messages").text

    # reviewer1 rejects with a reason and a per-item note; the applicant reads both.
    c.cookies.clear()
    sign_in(c, "reviewer1", STAFF)
    url = f"/applications/{who.application_id}"
    post_form(
        c,
        f"{url}/reject",
        {
            "reason": "执业许可证登记号与原件不一致",
            "field": ["entity.licenseNo"],
            "field_reason": ["应为 40170028613010211A1002"],
        },
        page=url,
    )
    c.cookies.clear()
    sign_in(c, who.username, NEW)
    home = c.get("/my").text
    assert unread_badge(home) == 1
    inbox = c.get("/messages").text
    assert "资质申请被驳回（第 1 版），请补充完善后重新提交" in inbox
    assert "驳回原因：执业许可证登记号与原件不一致" in inbox
    assert "· 实体医院 · 执业许可证登记号：应为 40170028613010211A1002" in inbox

    # Resubmitted: both reviewers are told again; approved: the applicant is told.
    post_form(
        c,
        "/my/institution",
        b.form_of(
            b.profile(**{"entity.licenseNo": "40170028613010211A1002", "internet.organID": b.ORG})
        ),
    )
    assert post_form(c, "/my/submit", page="/my").url.path == "/my/progress"
    c.cookies.clear()
    sign_in(c, "reviewer2", STAFF)
    assert unread_badge(c.get("/review").text) == 2
    assert "资质申请已重新提交，待审核" in c.get("/messages").text
    post_form(c, f"{url}/approve", {"reason": "材料齐全"}, page=url)
    c.cookies.clear()
    sign_in(c, who.username, NEW)
    inbox = c.get("/messages?filter=unread").text
    assert "资质申请审核通过（第 2 版）" in inbox and "审核意见：材料齐全" in inbox
    assert unread_badge(inbox) == 2


def test_a_withdrawal_tells_the_reviewers(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    who = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, who, clock.now())
    sign_in(portal_client, who.username, who.password, NEW)
    post_form(portal_client, "/my/withdraw", page="/my")
    portal_client.cookies.clear()
    sign_in(portal_client, "reviewer1", STAFF)
    inbox = portal_client.get("/messages").text
    assert f"资质申请已撤回：{b.ORG_NAME}" in inbox and "无需审核" in inbox
    assert unread_badge(inbox) == 2  # the submission and the withdrawal


def test_mark_read_and_mark_all_read_touch_only_ones_own_messages(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    c = portal_client
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    b.make_user(settings, clock.now(), username="reviewer2", role="reviewer")
    for i, org in enumerate((b.ORG, b.ORG2)):
        who = b.make_complete_applicant(
            settings,
            clock.now(),
            org_code=org,
            username=f"hospital{i}",
            name=f"河北省第{i}示范医院",
        )
        b.submit(settings, who, clock.now())

    sign_in(c, "reviewer1", STAFF)
    inbox = c.get("/messages").text
    assert unread_badge(inbox) == 2
    ids = [int(x) for x in re.findall(r'action="/messages/(\d+)/read"', inbox)]
    assert len(ids) == 2
    r = post_form(c, f"/messages/{ids[0]}/read", page="/messages")
    assert r.status_code == 200 and "已标为已读" in r.text and unread_badge(r.text) == 1
    assert f'id="message-{ids[0]}"' not in c.get("/messages?filter=unread").text

    # reviewer2 can neither see nor mark reviewer1's messages.
    c.cookies.clear()
    sign_in(c, "reviewer2", STAFF)
    own = c.get("/messages").text
    assert not {f'id="message-{i}"' for i in ids} & set(re.findall(r'id="message-\d+"', own))
    r = post_form(c, f"/messages/{ids[1]}/read", page="/messages")
    assert r.status_code == 404
    r = post_form(c, "/messages/read-all", page="/messages")
    assert r.status_code == 200 and unread_badge(r.text) == 0
    assert "没有未读消息" in c.get("/messages?filter=unread").text

    c.cookies.clear()
    sign_in(c, "reviewer1", STAFF)
    assert unread_badge(c.get("/messages").text) == 1  # untouched by reviewer2


def test_a_refused_submission_tells_nobody(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    who = b.make_applicant(settings, clock.now())  # nothing filled in
    sign_in(portal_client, who.username, who.password, NEW)
    r = post_form(portal_client, "/my/submit", page="/my")
    assert r.status_code == 400
    assert count(settings, Message) == 0


def test_without_smtp_nothing_is_queued_and_the_address_is_checked(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    sign_in(portal_client, "reviewer1", STAFF)
    bad = post_form(portal_client, "/messages/email", {"email": "not-an-address"}, page="/messages")
    assert bad.status_code == 400 and "电子邮箱格式不正确" in bad.text
    assert 'value="not-an-address"' in bad.text
    ok = post_form(
        portal_client, "/messages/email", {"email": "shen@example.org.cn"}, page="/messages"
    )
    assert "邮件通知地址已保存" in ok.text and "平台尚未配置邮件服务" in ok.text
    who = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, who, clock.now())
    assert count(settings, Message) == 1 and count(settings, Mail) == 0


def test_signing_out_says_so_on_the_sign_in_page(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    sign_in(portal_client, "reviewer1", STAFF)
    r = post_form(portal_client, "/logout", page="/review")
    assert r.url.path == "/login" and "已退出登录" in r.text
    assert "已退出登录" not in portal_client.get("/login").text
