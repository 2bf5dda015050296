"""Sign-in: hashed sessions in secure cookies, lockout, forced password change, logout, audit."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_portal_app
from imsp.auth import crypto, passwords
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


def _throttled(settings: Settings, **portal: Any) -> Settings:
    """Throttle settings for the test; refused attempts are answered at once (no tarpit: the
    test clock is frozen, a real sleep would only slow the test down)."""
    portal.setdefault("login_tarpit_seconds", 0)
    return settings.model_copy(update={"portal": PortalSettings(**portal)})


def _wait_of(page: str) -> int:
    found = re.search(r"请 (\d+) 秒后再试", page)
    assert found, page
    return int(found.group(1))


def test_known_and_unknown_accounts_get_the_same_answers_and_no_lock(
    settings: Settings, clock: FrozenClock
) -> None:
    """Failing again and again, a known and an unknown username see exactly the same pages
    (no "账号已锁定" that tells which accounts exist), and the right password works again as
    soon as the delay has passed — there is no lock-out anyone could impose."""
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    quick = _throttled(settings, login_free_failures_per_account=3)
    answers: dict[str, list[tuple[int, str]]] = {}
    with TestClient(create_portal_app(quick, clock=clock)) as c:
        for name in ("reviewer1", "nobody"):
            seen = answers[name] = []
            for _ in range(6):
                r = login(c, name, "wrong-password-1")
                problem = re.search(r'class="notice bad" role="alert">([^<]*)<', r.text)
                seen.append((r.status_code, problem.group(1) if problem else ""))
                clock.advance(seconds=0.5)
        assert answers["reviewer1"] == answers["nobody"]
        assert all("锁定" not in text for _, text in answers["reviewer1"])
        assert [status for status, _ in answers["reviewer1"]][:3] == [401, 401, 401]
        assert 429 in [status for status, _ in answers["reviewer1"]]
        clock.advance(seconds=60)
        r = login(c, "reviewer1", PASSWORD)
        assert r.status_code == 200 and r.url.path == "/review"


def test_delays_grow_with_each_failure_past_the_allowance(
    settings: Settings, clock: FrozenClock
) -> None:
    quick = _throttled(settings, login_free_failures_per_account=2)
    with TestClient(create_portal_app(quick, clock=clock)) as c:
        assert login(c, "reviewer1", "wrong-password-1").status_code == 401
        waits = []
        for _ in range(4):
            login(c, "reviewer1", "wrong-password-1")  # counted: it was allowed
            r = login(c, "reviewer1", "wrong-password-1")  # refused while waiting
            assert r.status_code == 429
            waits.append(_wait_of(r.text))
            assert r.headers["retry-after"] == str(waits[-1])
            clock.advance(seconds=waits[-1])
        assert waits == [1, 2, 4, 8]


class _CountingHasher:
    """The real argon2 hasher, counting verifications and recording where they ran."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, float, float]] = []  # thread name, start, end

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    def verify(self, stored: str, password: str) -> bool:
        start = time.monotonic()
        try:
            return bool(self.real.verify(stored, password))
        finally:
            self.calls.append((threading.current_thread().name, start, time.monotonic()))


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> _CountingHasher:
    counting = _CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counting)
    return counting


def test_a_flood_from_one_address_is_refused_before_any_hashing(
    settings: Settings, clock: FrozenClock, hasher: _CountingHasher
) -> None:
    quick = _throttled(settings, login_free_failures_per_address=5)
    app = create_portal_app(quick, clock=clock)
    with TestClient(app, client=("10.20.30.40", 5000)) as c:
        statuses = [login(c, f"user{i}", "wrong-password-1").status_code for i in range(12)]
    assert statuses == [401] * 5 + [429] * 7
    assert len(hasher.calls) == 5  # the refused ones cost no argon2 at all
    # Another address is not held back by that flood.
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    with TestClient(app, client=("10.20.30.41", 5000)) as other:
        assert login(other, "reviewer1", PASSWORD).url.path == "/review"
    # The same /64 counts as one address.
    with TestClient(app, client=("2001:db8::1", 5000)) as v6:
        for i in range(5):
            assert login(v6, f"user{i}", "wrong-password-1").status_code == 401
    with TestClient(app, client=("2001:db8::ffff", 5000)) as v6b:
        assert login(v6b, "someone", "wrong-password-1").status_code == 429


def test_a_refused_attempt_is_held_before_its_answer(
    settings: Settings, clock: FrozenClock, hasher: _CountingHasher
) -> None:
    """The tarpit: a throttled client gets each answer only after a pause (a lower bound, which
    a slow machine cannot break), so hammering costs the server almost nothing."""
    held = _throttled(settings, login_free_failures_per_address=1, login_tarpit_seconds=0.3)
    with TestClient(create_portal_app(held, clock=clock)) as c:
        assert login(c, "a", "wrong-password-1").status_code == 401
        started = time.monotonic()
        r = login(c, "b", "wrong-password-1")
        assert time.monotonic() - started >= 0.3
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert len(hasher.calls) == 1


def _user_id(settings: Settings, username: str) -> int:
    async def work(session: AsyncSession) -> int:
        found = await session.scalar(select(PortalUser.id).where(PortalUser.username == username))
        assert found is not None
        return int(found)

    return b.run(settings, work)


def test_the_operators_password_reset_lifts_the_delays(
    settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="operator1", role="operator")
    who = b.make_applicant(settings, clock.now())
    quick = _throttled(settings, login_free_failures_per_account=1)
    with TestClient(create_portal_app(quick, clock=clock)) as c:
        login(c, who.username, "wrong-password-1")
        assert login(c, who.username, "wrong-password-1").status_code == 429
        sign_in(c, "operator1", PASSWORD)
        r = post_form(c, f"/accounts/{_user_id(settings, who.username)}/reset", page="/accounts")
        assert r.status_code == 200
        password = re.search(r'id="issued-password">([^<]+)<', r.text)
        assert password, r.text
        post_form(c, "/logout", page="/accounts")
        assert login(c, who.username, password.group(1)).url.path == "/password"


def test_cookies_are_secure_and_hsts_is_sent_whenever_the_portal_is_reached_over_https(
    settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    proxied = settings.model_copy(update={"trusted_proxies": "10.9.0.0/16"})

    def visit(client: TestClient) -> tuple[str, str]:
        page = client.get("/login")
        r = client.post(
            "/login",
            data={"username": "reviewer1", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        cookie = next(h for h in r.headers.get_list("set-cookie") if "imsp_session" in h)
        return cookie, r.headers.get("strict-transport-security", "")

    app = create_portal_app(proxied, clock=clock)
    with TestClient(app, base_url="https://testserver") as c:
        cookie, hsts = visit(c)
    assert cookie.startswith("__Host-imsp_session=") and "Secure" in cookie
    assert hsts.startswith("max-age=")
    with TestClient(app) as c:  # plain HTTP
        cookie, hsts = visit(c)
    assert cookie.startswith("imsp_session=") and "Secure" not in cookie and not hsts
    forwarded = {"X-Forwarded-Proto": "https"}

    def login_page(peer: str) -> tuple[str, str]:
        with TestClient(app, client=(peer, 4000)) as c:
            r = c.get("/login", headers=forwarded)
        cookie = next(h for h in r.headers.get_list("set-cookie") if "imsp_login" in h)
        return cookie, r.headers.get("strict-transport-security", "")

    cookie, hsts = login_page("10.9.1.1")  # behind the trusted proxy
    assert "Secure" in cookie and hsts
    cookie, hsts = login_page("10.8.1.1")  # anyone else: the header is ignored
    assert "Secure" not in cookie and not hsts


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
