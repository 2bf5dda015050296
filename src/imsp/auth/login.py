"""Portal sign-in: password check, sessions, CSRF tokens, password changes.

* Passwords are argon2id hashes (``imsp.auth.passwords``), checked off the event loop; an unknown
  username costs the same argon2 verification as a known one, and gets the same answer, so
  neither time nor text reveals which accounts exist.
* No lock-out: repeated failures are slowed down by ``imsp.auth.throttle`` (per address, per
  account, growing delays) before any password is checked — nobody can lock another's account.
* A session is a random token in an HttpOnly cookie; only its SHA-256 is stored
  (``PortalSession.token_hash``). Sessions end on logout, on a password change and at
  ``expires_at`` (absolute lifetime, no sliding renewal).
* CSRF: the synchronizer token of a session is ``HMAC-SHA256(session token, "imsp-csrf")`` — bound
  to the session, never stored, and useless without the HttpOnly cookie it is derived from.
  Before sign-in the same derivation runs on a random pre-login cookie (double-submit).

Functions take a session and never commit: a failed sign-in's counter update is committed by the
request boundary like any other change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import crypto
from imsp.auth.audit import Actor, AuditAction, as_actor, audit, on_user
from imsp.auth.models import PortalSession, PortalUser
from imsp.auth.passwords import (
    hash_password,
    hash_password_async,
    policy_problem,
    verify_password_async,
)
from imsp.cpu import offload

SESSION_PREFIX = "hbp_"
BAD_CREDENTIALS = "用户名或密码错误"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The portal's sign-in settings (``settings.portal``)."""

    session_ttl_seconds: int


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a sign-in attempt: a session token, or a Chinese ``problem``."""

    user: PortalUser | None
    token: str | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.token is not None


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def new_secret() -> str:
    """A fresh session token or pre-login secret (256 bits)."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def csrf_token(secret: str) -> str:
    """The CSRF synchronizer token bound to ``secret`` (a session token or pre-login secret)."""
    return hmac.new(secret.encode("utf-8"), b"imsp-csrf", hashlib.sha256).hexdigest()


def csrf_ok(secret: str | None, presented: str | None) -> bool:
    """Constant-time check of a form's token against the one derived from ``secret``."""
    if not secret or not presented:
        return False
    return hmac.compare_digest(csrf_token(secret), presented)


async def sign_in(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    policy: LoginPolicy,
    now: datetime,
    client_addr: str = "",
) -> SignIn:
    """Check a username and password; on success open a session and return its token."""
    user = await session.scalar(select(PortalUser).where(PortalUser.username == username))

    actor = Actor(username, client_addr=client_addr)

    async def record(action: AuditAction, **detail: object) -> None:
        about = on_user(user) if user else {}
        await audit(session, actor, action, now=now, detail=dict(detail), **about)

    if user is None:
        await verify_password_async(await offload(_dummy_hash), password)  # same cost
        await record(AuditAction.LOGIN_FAILURE, reason="unknown_user")
        return SignIn(None, None, BAD_CREDENTIALS)
    if not await verify_password_async(user.password_hash, password):
        user.failed_logins += 1  # shown to the operator; never locks the account
        await record(AuditAction.LOGIN_FAILURE, reason="bad_password", failures=user.failed_logins)
        return SignIn(user, None, BAD_CREDENTIALS)
    if not user.active:
        await record(AuditAction.LOGIN_REFUSE, reason="inactive")
        return SignIn(user, None, "账号已停用，请联系平台实施方")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    token = await open_session(
        session, user=user, now=now, ttl_seconds=policy.session_ttl_seconds, client_addr=client_addr
    )
    await record(AuditAction.LOGIN_SUCCESS)
    return SignIn(user, token, None)


async def open_session(
    session: AsyncSession, *, user: PortalUser, now: datetime, ttl_seconds: int, client_addr: str
) -> str:
    """A new session for ``user``; returns the raw token (stored only as its digest)."""
    await session.execute(
        delete(PortalSession).where(
            PortalSession.user_id == user.id, PortalSession.expires_at <= now
        )
    )
    token = new_secret()
    session.add(
        PortalSession(
            token_hash=crypto.digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            client_addr=client_addr[:64],
        )
    )
    await session.flush()
    return token


async def resolve_session(
    session: AsyncSession, *, token: str | None, now: datetime
) -> PortalUser | None:
    """The active user of a live session token, or ``None`` (unknown, expired, user disabled)."""
    if not token or not token.startswith(SESSION_PREFIX) or len(token) > 100:
        return None
    row = await session.scalar(
        select(PortalSession).where(PortalSession.token_hash == crypto.digest(token))
    )
    if row is None:
        return None
    if row.expires_at <= now:
        await session.delete(row)
        return None
    user = await session.get(PortalUser, row.user_id)
    if user is None or not user.active:
        return None
    return user


async def sign_out(
    session: AsyncSession, *, token: str, user: PortalUser, now: datetime, client_addr: str = ""
) -> None:
    """End the session of ``token`` (logout) and audit it."""
    await session.execute(
        delete(PortalSession).where(PortalSession.token_hash == crypto.digest(token))
    )
    actor = as_actor(user, client_addr)
    await audit(session, actor, AuditAction.LOGOUT, now=now, **on_user(user))


async def end_all_sessions(session: AsyncSession, *, user_id: int) -> None:
    await session.execute(delete(PortalSession).where(PortalSession.user_id == user_id))


async def change_password(
    session: AsyncSession,
    *,
    user: PortalUser,
    current: str,
    new: str,
    confirm: str,
    now: datetime,
    client_addr: str = "",
) -> dict[str, str]:
    """Change ``user``'s password. Returns field → problem (nothing changed), or ``{}`` when done.

    On success every session of the user ends (the caller opens a fresh one), and the forced
    change on first sign-in (``must_change_password``) is cleared.
    """
    errors: dict[str, str] = {}
    if not await verify_password_async(user.password_hash, current):
        errors["current"] = "当前密码不正确"
    problem = policy_problem(new)
    if problem:
        errors["new"] = problem
    elif new == current:
        errors["new"] = "新密码不能与当前密码相同"
    if new != confirm:
        errors["confirm"] = "两次输入的新密码不一致"
    if errors:
        return errors
    user.password_hash = await hash_password_async(new)
    user.must_change_password = False
    await end_all_sessions(session, user_id=user.id)
    action = AuditAction.ACCOUNT_CHANGE_PASSWORD
    await audit(session, as_actor(user, client_addr), action, now=now, **on_user(user))
    return {}
