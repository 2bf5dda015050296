"""Demo data for ``make run``: the demo institution, its exchange credential and one portal
account per role. Seeding is idempotent; secrets exist only in the output of the seeding run."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import service as auth
from imsp.auth.models import AppCredential, PortalUser
from imsp.clock import Clock
from imsp.standard.demo import DEMO_ORG_CODE, DEMO_ORG_NAME

DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("operator", "operator", "平台实施方（演示）"),
    ("reviewer", "reviewer", "登记机关审核员（演示）"),
    ("regulator", "regulator", "监管人员（演示）"),
    ("centre", "centre", "统计信息中心（演示）"),
    ("demo-hospital", "applicant", "示范医院填报员（演示）"),
)


@dataclass(frozen=True, slots=True)
class DemoSeed:
    created: bool
    org_code: str
    org_name: str
    app_id: str
    app_secret: str | None
    users: tuple[tuple[str, str, str | None], ...]  # (username, role, password or None if existing)


def _password() -> str:
    return "Demo-" + secrets.token_hex(4) + "9a"


async def seed_demo(session: AsyncSession, *, clock: Clock, reset: bool = False) -> DemoSeed:
    """Create the demo data if absent. With ``reset``, issue a new secret and new passwords."""
    now = clock.now()
    inst = await auth.ensure_institution(
        session, org_code=DEMO_ORG_CODE, name=DEMO_ORG_NAME, now=now
    )
    cred = await session.scalar(
        select(AppCredential).where(
            AppCredential.institution_id == inst.id, AppCredential.name == "演示凭据"
        )
    )
    created = cred is None
    secret: str | None = None
    if cred is None or reset:
        if cred is not None:
            await session.delete(cred)
            await session.flush()
        issued = await auth.issue_credential(session, institution=inst, name="演示凭据", now=now)
        app_id, secret = issued.app_id, issued.app_secret
    else:
        app_id = cred.app_id
    users: list[tuple[str, str, str | None]] = []
    for username, role, display in DEMO_USERS:
        user = await session.scalar(select(PortalUser).where(PortalUser.username == username))
        password: str | None = None
        if user is None:
            password = _password()
            await auth.create_portal_user(
                session,
                username=username,
                password=password,
                role=role,
                display_name=display,
                institution=inst if role == "applicant" else None,
                now=now,
                must_change_password=False,
            )
        elif reset:
            from imsp.auth.passwords import hash_password_async

            password = _password()
            user.password_hash = await hash_password_async(password)
            user.failed_logins = 0
            user.locked_until = None
        users.append((username, role, password))
    return DemoSeed(created, inst.org_code, inst.name, app_id, secret, tuple(users))
