"""Sign-in: hashed sessions in secure cookies, lockout, forced password change, logout, audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_portal_app
from imsp.auth import crypto
from imsp.auth.models import AuditEvent, PortalSession, PortalUser
from imsp.clock import FrozenClock
from imsp.config import PortalSettings, Settings
from tests.portal.client import csrf_of, login, post_form, sign_in
from tests.qualification import builders as b

PASSWORD = "Passw0rd-123"


def _events(settings: Settings) -> list[tuple[str, str, str]]:
    async def work(session: AsyncSession) -> list[tuple[str, str, str]]:
        rows = await session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.actor, e.action, str(e.detail.get("reason", ""))) for e in rows]

    return b.run(settings, work)


def test_login_sets_an_httponly_samesite_session_cookie_stored_only_as_a_hash(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    page = portal_client.get("/login")
    assert "资质管理系统登录" in page.text
    r = portal_client.post(
        "/login",
        data={"username": "reviewer1", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/review"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("imsp_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]

    async def stored(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(PortalSession.token_hash)))

    assert b.run(settings, stored) == [crypto.digest(token)]
    assert ("reviewer1", "login.success", "") in _events(settings)


def test_secure_cookies_when_configured(settings: Settings, clock: FrozenClock) -> None:
    secure = settings.model_copy(update={"portal": PortalSettings(secure_cookies=True)})
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    with TestClient(create_portal_app(secure, clock=clock), base_url="https://testserver") as c:
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"username": "reviewer1", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
    cookie = next(h for h in r.headers.get_list("set-cookie") if "imsp_session" in h)
    assert cookie.startswith("__Host-imsp_session=") and "Secure" in cookie


def test_wrong_password_and_unknown_user_get_the_same_answer(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    bad = login(portal_client, "reviewer1", "wrong-password-1")
    unknown = login(portal_client, "nobody", "wrong-password-1")
    assert bad.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in bad.text and "用户名或密码错误" in unknown.text
    assert 'value="reviewer1"' in bad.text  # the typed username is kept
    assert [e for e in _events(settings) if e[1] == "login.failure"] == [
        ("reviewer1", "login.failure", "bad_password"),
        ("nobody", "login.failure", "unknown_user"),
    ]


@pytest.fixture
def strict_client(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    strict = settings.model_copy(
        update={"portal": PortalSettings(login_failures_before_lock=3, lock_minutes=10)}
    )
    with TestClient(create_portal_app(strict, clock=clock)) as client:
        yield client


def test_account_locks_after_repeated_failures_then_unlocks_after_the_lock_time(
    strict_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    for _ in range(2):
        assert "用户名或密码错误" in login(strict_client, "reviewer1", "wrong-password-1").text
    locked = login(strict_client, "reviewer1", "wrong-password-1")
    assert "账号已锁定" in locked.text
    # While locked even the right password is refused (and not checked).
    r = login(strict_client, "reviewer1", PASSWORD)
    assert r.status_code == 401 and "账号已锁定" in r.text
    clock.advance(minutes=9)
    assert "账号已锁定" in login(strict_client, "reviewer1", PASSWORD).text
    clock.advance(minutes=2)
    r = login(strict_client, "reviewer1", PASSWORD)
    assert r.status_code == 200 and r.url.path == "/review"
    actions = [e[1] for e in _events(settings)]
    assert actions.count("account.lock") == 1
    assert actions.count("login.refuse") == 2


def test_first_login_forces_a_password_change_before_anything_else(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    r = login(portal_client, who.username, who.password)
    assert r.url.path == "/password" and "须先修改初始密码" in r.text
    for path in ("/my", "/my/institution", "/my/doctors", "/"):
        assert portal_client.get(path).url.path == "/password"
    # The policy and the confirmation are checked; nothing changes on error.
    r = post_form(
        portal_client,
        "/password",
        {"current": who.password, "new": "short1", "confirm": "short1"},
    )
    assert r.status_code == 400 and "至少 10 位" in r.text
    r = post_form(
        portal_client,
        "/password",
        {"current": who.password, "new": who.password, "confirm": who.password},
    )
    assert "不能与当前密码相同" in r.text
    r = post_form(
        portal_client,
        "/password",
        {"current": "wrong", "new": "Hospital-2026", "confirm": "Hospital-2026x"},
    )
    assert "当前密码不正确" in r.text and "两次输入的新密码不一致" in r.text
    r = post_form(
        portal_client,
        "/password",
        {"current": who.password, "new": "Hospital-2026", "confirm": "Hospital-2026"},
    )
    assert r.url.path == "/my" and "密码已修改" in r.text

    async def user(session: AsyncSession) -> PortalUser:
        found = await session.scalar(select(PortalUser).where(PortalUser.username == who.username))
        assert found is not None
        return found

    assert b.run(settings, user).must_change_password is False
    portal_client.cookies.clear()
    assert login(portal_client, who.username, "Hospital-2026").url.path == "/my"


def test_logout_ends_the_session_for_good(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    sign_in(portal_client, "reviewer1", PASSWORD)
    token = portal_client.cookies.get("imsp_session")
    r = post_form(portal_client, "/logout", page="/review")
    assert r.url.path == "/login"
    portal_client.cookies.set("imsp_session", token or "")
    assert portal_client.get("/review").url.path == "/login"
    assert ("reviewer1", "login.logout", "") in _events(settings)


def test_sessions_expire_after_the_configured_lifetime(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    sign_in(portal_client, "reviewer1", PASSWORD)
    clock.advance(seconds=settings.portal.session_ttl_seconds - 1)
    assert portal_client.get("/review").url.path == "/review"
    clock.advance(seconds=1)
    r = portal_client.get("/review")
    assert r.url.path == "/login" and r.url.query == b"next=/review"


def test_disabled_accounts_cannot_sign_in(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")

    async def disable(session: AsyncSession) -> None:
        user = await session.scalar(select(PortalUser).where(PortalUser.username == "reviewer1"))
        assert user is not None
        user.active = False

    b.run(settings, disable)
    assert "账号已停用" in login(portal_client, "reviewer1", PASSWORD).text


def test_login_form_without_its_csrf_token_is_refused(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    portal_client.get("/login")
    r = portal_client.post("/login", data={"username": "reviewer1", "password": PASSWORD})
    assert r.status_code == 403 and "CSRF" in r.text
    assert portal_client.get("/review").url.path == "/login"
