"""Portal accounts and sign-in in the auth domain: one-time passwords, lockout, reset and
disabling end sessions; every step audited with the acting ``Actor``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.accounts import create_account, reset_password, set_active
from imsp.auth.audit import Actor
from imsp.auth.login import (
    LoginPolicy,
    change_password,
    csrf_ok,
    csrf_token,
    resolve_session,
    sign_in,
    sign_out,
)
from imsp.auth.models import AuditEvent, PortalUser
from imsp.config import Settings
from imsp.errors import BadRequest
from tests.support.database import run

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
OPERATOR = Actor("operator", "operator", client_addr="127.0.0.2")
POLICY = LoginPolicy(session_ttl_seconds=3600)


async def _actions(s: AsyncSession) -> list[tuple[str, str]]:
    rows = await s.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.actor, e.action) for e in rows]


def test_an_account_gets_a_one_time_password_and_must_change_it(settings: Settings) -> None:
    async def work(s: AsyncSession) -> list[tuple[str, str]]:
        issued = await create_account(
            s, actor=OPERATOR, role="reviewer", username="reviewer9", display_name="审核员", now=NOW
        )
        assert issued.user.must_change_password
        signed = await sign_in(
            s, username="reviewer9", password=issued.password, policy=POLICY, now=NOW
        )
        assert signed.ok and signed.token is not None
        problems = await change_password(
            s, user=issued.user, current=issued.password, new="short", confirm="short", now=NOW
        )
        assert set(problems) == {"new"}
        new = "NewPassw0rd2026"
        assert (
            await change_password(
                s, user=issued.user, current=issued.password, new=new, confirm=new, now=NOW
            )
            == {}
        )
        assert not issued.user.must_change_password
        assert await resolve_session(s, token=signed.token, now=NOW) is None  # sessions ended
        return await _actions(s)

    assert run(settings, work) == [
        ("operator", "account.create"),
        ("reviewer9", "login.success"),
        ("reviewer9", "account.change_password"),
    ]


def test_bad_input_creates_nothing(settings: Settings) -> None:
    async def work(s: AsyncSession) -> int:
        with pytest.raises(BadRequest) as info:
            await create_account(
                s, actor=OPERATOR, role="applicant", username="x", display_name="", now=NOW
            )
        assert {"username", "org_code"} <= set(info.value.data["errors"])
        return len(list(await s.scalars(select(PortalUser))))

    assert run(settings, work) == 0


def test_repeated_failures_never_lock_and_a_disabled_account_is_refused(settings: Settings) -> None:
    """Failures are throttled at the portal's edge (``auth.throttle``), never by locking the
    account: after three failures the right password still signs in; a reset issues a new one;
    a disabled account is refused."""

    async def work(s: AsyncSession) -> list[tuple[str, str]]:
        issued = await create_account(
            s, actor=OPERATOR, role="regulator", username="reg9", display_name="", now=NOW
        )
        for _ in range(3):
            assert not (
                await sign_in(s, username="reg9", password="nope", policy=POLICY, now=NOW)
            ).ok
        assert (
            await sign_in(s, username="reg9", password=issued.password, policy=POLICY, now=NOW)
        ).ok
        again = await reset_password(s, actor=OPERATOR, user_id=issued.user.id, now=NOW)
        later = NOW + timedelta(minutes=1)
        assert (
            await sign_in(s, username="reg9", password=again.password, policy=POLICY, now=later)
        ).ok
        await set_active(s, actor=OPERATOR, user_id=issued.user.id, active=False, now=later)
        refused = await sign_in(
            s, username="reg9", password=again.password, policy=POLICY, now=later
        )
        assert not refused.ok
        return [a for a in await _actions(s) if a[0] in ("operator", "reg9")]

    actions = [a for _, a in run(settings, work)]
    assert actions == [
        "account.create",
        "login.failure",
        "login.failure",
        "login.failure",
        "login.success",
        "account.reset_password",
        "login.success",
        "account.disable",
        "login.refuse",
    ]


def test_sign_out_ends_the_session(settings: Settings) -> None:
    async def work(s: AsyncSession) -> list[tuple[str, str]]:
        issued = await create_account(
            s, actor=OPERATOR, role="reviewer", username="rev8", display_name="", now=NOW
        )
        signed = await sign_in(s, username="rev8", password=issued.password, policy=POLICY, now=NOW)
        assert signed.token is not None
        await sign_out(s, token=signed.token, user=issued.user, now=NOW)
        assert await resolve_session(s, token=signed.token, now=NOW) is None
        return await _actions(s)

    assert run(settings, work)[-1] == ("rev8", "login.logout")


def test_csrf_token_is_bound_to_its_secret() -> None:
    assert csrf_ok("secret-a", csrf_token("secret-a"))
    assert not csrf_ok("secret-b", csrf_token("secret-a"))
    assert not csrf_ok(None, csrf_token("secret-a")) and not csrf_ok("secret-a", "")
