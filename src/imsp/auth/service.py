"""Use cases of the auth domain. Functions take a session and never commit (the caller does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import crypto
from imsp.auth.models import AppCredential, Institution, PortalUser
from imsp.auth.passwords import hash_password_async

ROLES: dict[str, str] = {
    "operator": "平台实施方",
    "applicant": "申请机构",
    "reviewer": "登记机关审核人员",
    "regulator": "监管人员",
    "centre": "统计信息中心",
}

#: Exchange channels (测试 / 正式), each with its own credentials (数据接入工作说明 第四章).
CHANNELS: dict[str, str] = {"test": "测试", "production": "正式"}


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """What the operator hands to a hospital once: the secret is never shown again."""

    app_id: str
    app_secret: str
    org_code: str
    institution_name: str
    channel: str = "production"


async def ensure_institution(
    session: AsyncSession, *, org_code: str, name: str, now: datetime
) -> Institution:
    """The institution with ``org_code``, created if new (its name is updated if given)."""
    inst = await session.scalar(select(Institution).where(Institution.org_code == org_code))
    if inst is None:
        inst = Institution(org_code=org_code, name=name, created_at=now)
        session.add(inst)
        await session.flush()
    elif name and inst.name != name:
        inst.name = name
    return inst


async def issue_credential(
    session: AsyncSession,
    *,
    institution: Institution,
    name: str,
    now: datetime,
    channel: str = "production",
) -> IssuedCredential:
    """Create an appId/appSecret for ``institution`` on ``channel`` (test | production); only the
    secret's digest is stored."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    secret = crypto.new_secret()
    cred = AppCredential(
        app_id=crypto.new_app_id(),
        secret_hash=crypto.digest(secret),
        institution_id=institution.id,
        name=name,
        status="active",
        channel=channel,
        created_at=now,
    )
    session.add(cred)
    await session.flush()
    return IssuedCredential(cred.app_id, secret, institution.org_code, institution.name, channel)


async def create_portal_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    now: datetime,
    display_name: str = "",
    institution: Institution | None = None,
    must_change_password: bool = True,
) -> PortalUser:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    user = PortalUser(
        username=username,
        display_name=display_name or username,
        password_hash=await hash_password_async(password),
        role=role,
        institution_id=institution.id if institution else None,
        must_change_password=must_change_password,
        failed_logins=0,
        active=True,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user
