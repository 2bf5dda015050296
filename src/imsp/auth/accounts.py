"""Portal account administration by the platform operator (平台实施方).

Initial and reset passwords are random, shown to the operator once and never stored in clear;
the account must change them at first sign-in (``must_change_password``). Operators manage the
other roles' accounts, never other operators' (those are created with the CLI or the demo seed).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor, AuditAction, audit, on_user
from imsp.auth.login import end_all_sessions
from imsp.auth.models import Institution, PortalUser
from imsp.auth.passwords import hash_password_async
from imsp.auth.service import ROLES, create_portal_user
from imsp.errors import BadRequest, Forbidden, NotFound

#: Roles an operator may create and manage.
MANAGED_ROLES: tuple[str, ...] = ("applicant", "reviewer", "regulator", "centre")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,49}", re.ASCII)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


@dataclass(frozen=True, slots=True)
class Issued:
    """An account and the password to hand over once."""

    user: PortalUser
    password: str


def new_initial_password() -> str:
    """14 random characters without look-alikes (0/O, 1/l/I), at least one letter and one digit."""
    while True:
        pw = "".join(secrets.choice(_ALPHABET) for _ in range(14))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def username_problem(username: str) -> str | None:
    if not _USERNAME.fullmatch(username):
        return "用户名为 3–50 位字母、数字或 . _ -，以字母或数字开头"
    return None


async def identity_problems(
    session: AsyncSession, *, username: str, display_name: str
) -> dict[str, str]:
    """What is wrong with a new account's username and display name (field → problem)."""
    errors: dict[str, str] = {}
    problem = username_problem(username)
    if problem:
        errors["username"] = problem
    elif await session.scalar(select(PortalUser.id).where(PortalUser.username == username)):
        errors["username"] = "该用户名已被使用"
    if len(display_name) > 50:
        errors["display_name"] = "姓名或说明不超过 50 个字"
    return errors


async def create_account(
    session: AsyncSession,
    *,
    actor: Actor,
    role: str,
    username: str,
    display_name: str,
    now: datetime,
    institution: Institution | None = None,
) -> Issued:
    """Create a portal account with a one-time initial password. Raises ``BadRequest`` with
    ``data={"errors": {field: problem}}`` and changes nothing when the input is invalid."""
    errors: dict[str, str] = {}
    if role not in MANAGED_ROLES:
        errors["role"] = "请选择账号角色"
    errors.update(await identity_problems(session, username=username, display_name=display_name))
    if role == "applicant" and institution is None:
        errors["org_code"] = "申请机构账号须关联机构"
    if errors:
        raise BadRequest("账号信息有误", data={"errors": errors})
    password = new_initial_password()
    user = await create_portal_user(
        session,
        username=username,
        password=password,
        role=role,
        now=now,
        display_name=display_name or username,
        institution=institution if role == "applicant" else None,
        must_change_password=True,
    )
    detail = {"username": username, "role": role}
    await audit(session, actor, AuditAction.ACCOUNT_CREATE, now=now, detail=detail, **on_user(user))
    return Issued(user, password)


async def _managed(session: AsyncSession, user_id: int) -> PortalUser:
    user = await session.get(PortalUser, user_id)
    if user is None:
        raise NotFound("账号不存在")
    if user.role not in MANAGED_ROLES:
        raise Forbidden("平台实施方账号不能在此管理")
    return user


async def reset_password(
    session: AsyncSession, *, actor: Actor, user_id: int, now: datetime
) -> Issued:
    """A new one-time password; unlocks the account, ends its sessions, forces a change."""
    user = await _managed(session, user_id)
    password = new_initial_password()
    user.password_hash = await hash_password_async(password)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    await end_all_sessions(session, user_id=user.id)
    detail = {"username": user.username}
    action = AuditAction.ACCOUNT_RESET_PASSWORD
    await audit(session, actor, action, now=now, detail=detail, **on_user(user))
    return Issued(user, password)


async def unlock(session: AsyncSession, *, actor: Actor, user_id: int, now: datetime) -> PortalUser:
    """End a lockout after failed sign-ins (the password is unchanged)."""
    user = await _managed(session, user_id)
    user.failed_logins = 0
    user.locked_until = None
    detail = {"username": user.username}
    await audit(session, actor, AuditAction.ACCOUNT_UNLOCK, now=now, detail=detail, **on_user(user))
    return user


async def set_active(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: int,
    active: bool,
    now: datetime,
) -> PortalUser:
    """Enable or disable an account; disabling ends its sessions."""
    user = await _managed(session, user_id)
    user.active = active
    if not active:
        await end_all_sessions(session, user_id=user.id)
    action = AuditAction.ACCOUNT_ENABLE if active else AuditAction.ACCOUNT_DISABLE
    detail = {"username": user.username}
    await audit(session, actor, action, now=now, detail=detail, **on_user(user))
    return user


@dataclass(frozen=True, slots=True)
class AccountRow:
    user: PortalUser
    institution: Institution | None


async def list_accounts(
    session: AsyncSession, *, role: str | None, offset: int, limit: int, q: str = ""
) -> tuple[list[AccountRow], int]:
    """Accounts (optionally of one role), newest first, with their institutions; and the total.
    ``q`` keeps those whose username, name, institution name or 组织机构代码 contains it."""
    where = [PortalUser.role == role] if role in ROLES else []
    if q.strip():
        text = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{text}%"
        where.append(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        PortalUser.username,
                        PortalUser.display_name,
                        Institution.name,
                        Institution.org_code,
                    )
                )
            )
        )
    total = (
        await session.scalar(
            select(func.count())
            .select_from(PortalUser)
            .outerjoin(Institution, Institution.id == PortalUser.institution_id)
            .where(*where)
        )
        or 0
    )
    rows = await session.execute(
        select(PortalUser, Institution)
        .outerjoin(Institution, Institution.id == PortalUser.institution_id)
        .where(*where)
        .order_by(PortalUser.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [AccountRow(u, i) for u, i in rows], int(total)
