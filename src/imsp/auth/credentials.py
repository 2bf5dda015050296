"""Exchange credentials (appId/appSecret): create, rotate, revoke, list, authenticate.

An appId belongs to exactly one institution (机构, identified by its USCC ``organID``); an
institution may hold several appIds (e.g. one per vendor system). The secret is shown once, when
created or rotated, and stored only as its SHA-256 (``imsp.auth.crypto``). Functions take a session
and never commit; every change is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import crypto
from imsp.auth.audit import CLI, Actor, AuditAction, audit
from imsp.auth.models import AppCredential, Institution
from imsp.auth.service import CHANNELS, IssuedCredential, ensure_institution, issue_credential
from imsp.errors import BadRequest, CredentialRevoked, SecretMismatch, UnknownAppId
from imsp.standard.checks import is_uscc

#: Compared against when the appId is unknown, so both failures cost the same time.
_DUMMY_DIGEST = crypto.digest("hbs_not-a-secret")


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    app_id: str
    name: str
    status: str
    org_code: str
    institution_name: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    channel: str = "production"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid appId/appSecret pair is: the credential and its institution."""

    credential_id: int
    app_id: str
    institution_id: int
    org_code: str
    channel: str = "production"


async def create_credential(
    session: AsyncSession,
    *,
    org_code: str,
    institution_name: str,
    now: datetime,
    name: str = "数据上报",
    actor: Actor = CLI,
    channel: str = "production",
) -> IssuedCredential:
    """A new appId/appSecret on ``channel`` (test 测试 | production 正式) for the institution
    ``org_code`` (created if unknown)."""
    if channel not in CHANNELS:
        raise BadRequest(f"通道 {channel} 无效，只能为 test（测试）或 production（正式）")
    if not is_uscc(org_code):
        raise BadRequest(f"机构代码 {org_code} 不是有效的 18 位统一社会信用代码")
    known = await session.scalar(select(Institution).where(Institution.org_code == org_code))
    if known is None and not institution_name.strip():
        raise BadRequest("新机构须提供机构名称（--name）")
    inst = await ensure_institution(
        session, org_code=org_code, name=institution_name.strip(), now=now
    )
    issued = await issue_credential(session, institution=inst, name=name, now=now, channel=channel)
    action = AuditAction.CREDENTIAL_CREATE
    await audit(
        session,
        actor,
        action,
        now=now,
        target=issued.app_id,
        institution_id=inst.id,
        detail={"channel": channel},
    )
    return issued


async def _credential(session: AsyncSession, app_id: str) -> tuple[AppCredential, Institution]:
    row = (
        await session.execute(
            select(AppCredential, Institution)
            .join(Institution, Institution.id == AppCredential.institution_id)
            .where(AppCredential.app_id == app_id)
        )
    ).first()
    if row is None:
        raise UnknownAppId(f"appId {app_id} 不存在")
    return row[0], row[1]


async def rotate_secret(
    session: AsyncSession, *, app_id: str, now: datetime, actor: Actor = CLI
) -> IssuedCredential:
    """A new secret for ``app_id``; the old secret stops working at once. Tokens already issued
    stay valid until they expire (a running hospital is not cut off mid-rotation); to cut them off
    too, the caller also revokes them (``imsp credentials rotate --revoke-tokens``)."""
    cred, inst = await _credential(session, app_id)
    if cred.status != "active":
        raise CredentialRevoked(f"appId {app_id} 已停用，不能更换密钥")
    secret = crypto.new_secret()
    cred.secret_hash = crypto.digest(secret)
    cred.rotated_at = now
    action = AuditAction.CREDENTIAL_ROTATE
    await audit(session, actor, action, now=now, target=app_id, institution_id=inst.id)
    return IssuedCredential(app_id, secret, inst.org_code, inst.name, cred.channel)


async def revoke_credential(
    session: AsyncSession, *, app_id: str, now: datetime, actor: Actor = CLI
) -> CredentialInfo:
    """Stop ``app_id`` for good: no new tokens, and its tokens are refused (the exchange service's
    token cache forgets them within ``token_cache_seconds``)."""
    cred, inst = await _credential(session, app_id)
    if cred.status != "revoked":
        cred.status = "revoked"
        cred.revoked_at = now
        action = AuditAction.CREDENTIAL_REVOKE
        await audit(session, actor, action, now=now, target=app_id, institution_id=inst.id)
    return _info(cred, inst)


async def list_credentials(
    session: AsyncSession, *, org_code: str | None = None
) -> list[CredentialInfo]:
    stmt = (
        select(AppCredential, Institution)
        .join(Institution, Institution.id == AppCredential.institution_id)
        .order_by(Institution.org_code, AppCredential.created_at, AppCredential.id)
    )
    if org_code:
        stmt = stmt.where(Institution.org_code == org_code)
    return [_info(c, i) for c, i in (await session.execute(stmt)).all()]


async def authenticate(session: AsyncSession, *, app_id: str, app_secret: str) -> Principal:
    """The principal of a valid, active appId/appSecret pair (constant-time secret comparison).

    Raises ``UnknownAppId`` (40002), ``SecretMismatch`` (40004) or ``CredentialRevoked`` (40005).
    An appId with a NUL character is unknown without asking the database (PostgreSQL refuses NUL
    in text: that would be a 503 reachable from the query string).
    """
    if "\x00" in app_id:
        crypto.matches(app_secret, _DUMMY_DIGEST)
        raise UnknownAppId()
    row = (
        await session.execute(
            select(
                AppCredential.id,
                AppCredential.secret_hash,
                AppCredential.status,
                AppCredential.institution_id,
                AppCredential.channel,
                Institution.org_code,
            )
            .join(Institution, Institution.id == AppCredential.institution_id)
            .where(AppCredential.app_id == app_id)
        )
    ).first()
    if row is None:
        crypto.matches(app_secret, _DUMMY_DIGEST)
        raise UnknownAppId()
    if not crypto.matches(app_secret, row.secret_hash):
        raise SecretMismatch()
    if row.status != "active":
        raise CredentialRevoked()
    return Principal(row.id, app_id, row.institution_id, row.org_code, row.channel)


def _info(cred: AppCredential, inst: Institution) -> CredentialInfo:
    return CredentialInfo(
        app_id=cred.app_id,
        name=cred.name,
        status=cred.status,
        org_code=inst.org_code,
        institution_name=inst.name,
        created_at=cred.created_at,
        rotated_at=cred.rotated_at,
        revoked_at=cred.revoked_at,
        channel=cred.channel,
    )
