"""The operator allocates and manages accounts; initial passwords are shown once."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import AuditEvent, Institution, PortalUser
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.qualification.models import Application
from tests.portal.client import login, post_form, sign_in
from tests.qualification import builders as b


@pytest.fixture
def operator(portal_client: TestClient, settings: Settings, clock: FrozenClock) -> TestClient:
    b.make_user(settings, clock.now(), username="operator1", role="operator")
    sign_in(portal_client, "operator1", "Passw0rd-123")
    return portal_client


def _issued_password(html: str) -> str:
    found = re.search(r'id="issued-password">([^<]+)<', html)
    assert found, html
    return found.group(1)


def test_allocating_an_applicant_account_opens_its_application(
    operator: TestClient, settings: Settings
) -> None:
    r = post_form(
        operator,
        "/accounts/new",
        {
            "role": "applicant",
            "username": "hosp1",
            "org_code": b.ORG.lower(),
            "org_name": b.ORG_NAME,
        },
    )
    assert r.status_code == 200 and len(_issued_password(r.text)) == 14

    async def state(session: AsyncSession) -> tuple[str, str, bool, str]:
        user = await session.scalar(select(PortalUser).where(PortalUser.username == "hosp1"))
        inst = await session.scalar(select(Institution))
        app = await session.scalar(select(Application))
        assert user and inst and app
        assert user.institution_id == inst.id == app.institution_id
        return inst.org_code, app.status, user.must_change_password, user.password_hash

    org, status, must_change, digest = b.run(settings, state)
    assert (org, status, must_change) == (b.ORG, "draft", True)
    assert digest.startswith("$argon2id$")


def test_account_form_errors_keep_the_input_and_create_nothing(
    operator: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    r = post_form(
        operator,
        "/accounts/new",
        {
            "role": "applicant",
            "username": "x",
            "org_code": "12130000MB1A2B3C4X",
            "org_name": "某医院",
        },
    )
    assert r.status_code == 400
    # Every problem is said beside its field at once (not the username only after the code).
    assert "GB 32100" in r.text
    assert '<span class="error" role="alert">用户名为 3–50 位' in r.text
    assert 'value="某医院"' in r.text
    b.make_user(settings, clock.now(), username="taken", role="reviewer")
    r = post_form(operator, "/accounts/new", {"role": "reviewer", "username": "taken"})
    assert r.status_code == 400 and "该用户名已被使用" in r.text

    async def count(session: AsyncSession) -> tuple[int, int]:
        users = list(await session.scalars(select(PortalUser.username)))
        insts = list(await session.scalars(select(Institution.id)))
        return len(users), len(insts)

    assert b.run(settings, count) == (2, 0)


def test_reviewer_accounts_are_created_reset_and_disabled(
    operator: TestClient, settings: Settings
) -> None:
    r = post_form(
        operator,
        "/accounts/new",
        {"role": "reviewer", "username": "shenhe1", "display_name": "登记机关审核员"},
    )
    first = _issued_password(r.text)
    uid = re.search(r"/accounts/(\d+)/reset", operator.get("/accounts?role=reviewer").text)
    assert uid
    r = post_form(operator, f"/accounts/{uid.group(1)}/reset", page="/accounts")
    second = _issued_password(r.text)
    assert second != first and "密码已重置" in r.text
    with TestClient(operator.app) as other:
        assert login(other, "shenhe1", first).status_code == 401
        assert login(other, "shenhe1", second).url.path == "/password"
    post_form(operator, f"/accounts/{uid.group(1)}/active", {"active": "0"}, page="/accounts")
    assert "已停用" in operator.get("/accounts?role=reviewer").text
    with TestClient(operator.app) as other:
        assert "账号已停用" in login(other, "shenhe1", second).text


def test_operators_cannot_manage_operator_accounts(
    operator: TestClient, settings: Settings
) -> None:
    async def my_id(session: AsyncSession) -> int:
        found = await session.scalar(
            select(PortalUser.id).where(PortalUser.username == "operator1")
        )
        assert found
        return found

    r = post_form(operator, f"/accounts/{b.run(settings, my_id)}/reset", page="/accounts")
    assert r.status_code == 403


def test_lists_are_paginated(operator: TestClient, settings: Settings, clock: FrozenClock) -> None:
    async def many(session: AsyncSession) -> None:
        for i in range(25):
            session.add(
                PortalUser(
                    username=f"user{i:02d}", display_name="", password_hash="x", role="regulator",
                    institution_id=None, must_change_password=False, failed_logins=0, active=True,
                    created_at=clock.now(),
                )
            )  # fmt: skip

    b.run(settings, many)
    first = operator.get("/accounts?role=regulator")
    assert first.text.count("<tr>") - 1 == 20 and "下一页" in first.text
    second = operator.get("/accounts?role=regulator&page=2")
    assert second.text.count("<tr>") - 1 == 5 and "上一页" in second.text


def _account_rows(html: str) -> list[str]:
    body = html.split('<table id="accounts">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>\s*<td>([^<]*)</td>", body)


def test_accounts_are_searched_and_exported_as_shown(
    operator: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_applicant(settings, clock.now())
    b.make_applicant(
        settings, clock.now(), org_code=b.ORG2, username="second", name="石家庄市第二医院"
    )
    b.make_user(settings, clock.now(), username="reviewer9", role="reviewer")
    assert _account_rows(operator.get("/accounts", params={"q": "第二"}).text) == ["second"]
    assert _account_rows(operator.get("/accounts", params={"q": b.ORG}).text) == ["hospital"]
    assert _account_rows(operator.get("/accounts", params={"q": "review"}).text) == ["reviewer9"]
    assert _account_rows(operator.get("/accounts", params={"q": "_"}).text) == []

    for params in ({"q": "医院"}, {"role": "applicant"}, {}):
        page = operator.get("/accounts", params=params)
        export = operator.get("/accounts/export.xlsx", params=params)
        ws = load_workbook(io.BytesIO(export.content)).worksheets[0]
        rows = [[str(c.value or "") for c in r] for r in ws.iter_rows()]
        assert rows[0][:3] == ["用户名", "姓名/说明", "角色"]
        assert [r[0] for r in rows[1:]] == _account_rows(page.text) != []
    shown = load_workbook(
        io.BytesIO(operator.get("/accounts/export.xlsx", params={"q": "第二"}).content)
    ).worksheets[0]
    assert [c.value for c in shown[2]][:6] == [
        "second", "石家庄市第二医院", "申请机构", "石家庄市第二医院", b.ORG2, "待修改初始密码"
    ]  # fmt: skip


def test_a_second_account_for_an_institution_warns_and_shows_both(
    operator: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_applicant(settings, clock.now())  # "hospital" for b.ORG
    form = {
        "role": "applicant",
        "username": "hospital2",
        "display_name": "信息科二",
        "org_code": b.ORG,
        "org_name": b.ORG_NAME,
    }
    r = post_form(operator, "/accounts/new", form)
    assert r.status_code == 400
    assert "该机构已有账号：hospital" in r.text and 'name="second"' in r.text

    async def count(session: AsyncSession) -> int:
        return len(list(await session.scalars(select(PortalUser))))

    before = b.run(settings, count)
    assert post_form(operator, "/accounts/new", form).status_code == 400
    assert b.run(settings, count) == before
    r = post_form(operator, "/accounts/new", {**form, "second": "1"}, page="/accounts/new")
    assert r.status_code == 200 and _issued_password(r.text)
    assert re.search(r'id="other-accounts">hospital（', r.text)
    assert b.run(settings, count) == before + 1


def test_a_locked_account_is_unlocked_explicitly_and_audited(
    operator: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_applicant(settings, clock.now())

    async def lock(session: AsyncSession) -> None:
        user = await session.scalar(select(PortalUser).where(PortalUser.username == "hospital"))
        assert user is not None
        user.failed_logins, user.locked_until = 5, clock.now() + timedelta(minutes=30)

    b.run(settings, lock)
    page = operator.get("/accounts").text
    assert "已锁定" in page and "/unlock" in page
    assert 'data-confirm="确定重置 hospital 的密码吗？' in page
    assert 'data-confirm="确定停用 hospital 吗？' in page
    user_id = re.search(r'action="/accounts/(\d+)/unlock"', page)
    assert user_id
    r = post_form(operator, f"/accounts/{user_id.group(1)}/unlock", page="/accounts")
    assert r.status_code == 200 and "账号已解锁" in r.text
    assert "已锁定" not in r.text and "/unlock" not in r.text

    async def state(session: AsyncSession) -> tuple[int, object, list[str]]:
        user = await session.scalar(select(PortalUser).where(PortalUser.username == "hospital"))
        assert user is not None
        actions = list(await session.scalars(select(AuditEvent.action)))
        return user.failed_logins, user.locked_until, actions

    failed, locked, actions = b.run(settings, state)
    assert (failed, locked) == (0, None) and "account.unlock" in actions


def test_the_operator_can_give_a_new_account_its_notification_address(
    operator: TestClient, settings: Settings
) -> None:
    form = {"role": "reviewer", "username": "reviewer9", "display_name": "审核员九"}
    bad = post_form(operator, "/accounts/new", {**form, "email": "not-an-address"})
    assert bad.status_code == 400 and "电子邮箱格式不正确" in bad.text
    assert 'value="not-an-address"' in bad.text  # the form keeps what was typed

    async def email_of(session: AsyncSession) -> str | bool | None:
        user = await session.scalar(select(PortalUser).where(PortalUser.username == "reviewer9"))
        return False if user is None else user.email

    assert b.run(settings, email_of) is False  # a refused address creates no account

    ok = post_form(operator, "/accounts/new", {**form, "email": " shenhe9@wjw.example.cn "})
    assert ok.status_code == 200 and _issued_password(ok.text)
    assert b.run(settings, email_of) == "shenhe9@wjw.example.cn"
