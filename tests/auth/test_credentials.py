"""Exchange credentials in the auth domain: secrets stored only as digests, shown once; rotate and
revoke; authentication with distinct error codes; every change audited with a dotted action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import crypto
from imsp.auth.audit import CLI, Actor
from imsp.auth.credentials import (
    authenticate,
    create_credential,
    list_credentials,
    revoke_credential,
    rotate_secret,
)
from imsp.auth.models import AppCredential, AuditEvent
from imsp.config import Settings
from imsp.errors import BadRequest, CredentialRevoked, SecretMismatch, UnknownAppId
from tests.exchange.builders import ORG_A, ORG_B
from tests.support.database import run

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


async def _events(s: AsyncSession) -> list[tuple[str, str, str, str]]:
    rows = await s.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.actor, e.actor_kind, e.action, e.target) for e in rows]


def test_a_secret_is_shown_once_and_stored_only_as_its_digest(settings: Settings) -> None:
    async def work(s: AsyncSession) -> tuple[str, str, str]:
        issued = await create_credential(s, org_code=ORG_A, institution_name="测试医院", now=NOW)
        stored = await s.scalar(select(AppCredential.secret_hash))
        assert stored is not None
        return issued.app_id, issued.app_secret, stored

    app_id, secret, stored = run(settings, work)
    assert app_id.startswith(crypto.APP_ID_PREFIX) and secret.startswith(crypto.SECRET_PREFIX)
    assert stored == crypto.digest(secret) and secret not in stored

    async def check(s: AsyncSession) -> int:
        return (await authenticate(s, app_id=app_id, app_secret=secret)).institution_id

    assert run(settings, check) > 0


def test_authentication_failures_have_distinct_codes(settings: Settings) -> None:
    async def work(s: AsyncSession) -> None:
        issued = await create_credential(s, org_code=ORG_A, institution_name="测试医院", now=NOW)
        with pytest.raises(UnknownAppId):
            await authenticate(s, app_id="hb-nobody", app_secret=issued.app_secret)
        with pytest.raises(UnknownAppId):  # PostgreSQL text holds no NUL: never asked
            await authenticate(s, app_id="hb\x00", app_secret=issued.app_secret)
        with pytest.raises(SecretMismatch):
            await authenticate(s, app_id=issued.app_id, app_secret=issued.app_secret + "x")
        await revoke_credential(s, app_id=issued.app_id, now=NOW)
        with pytest.raises(CredentialRevoked):
            await authenticate(s, app_id=issued.app_id, app_secret=issued.app_secret)

    run(settings, work)


def test_rotation_invalidates_the_old_secret_and_every_change_is_audited(
    settings: Settings,
) -> None:
    operator = Actor("operator1", "operator", client_addr="127.0.0.9")

    async def work(s: AsyncSession) -> tuple[str, list[tuple[str, str, str, str]]]:
        first = await create_credential(
            s, org_code=ORG_B, institution_name="另一医院", now=NOW, actor=operator
        )
        second = await rotate_secret(s, app_id=first.app_id, now=NOW + timedelta(hours=1))
        assert second.app_id == first.app_id and second.app_secret != first.app_secret
        with pytest.raises(SecretMismatch):
            await authenticate(s, app_id=first.app_id, app_secret=first.app_secret)
        await authenticate(s, app_id=first.app_id, app_secret=second.app_secret)
        await revoke_credential(s, app_id=first.app_id, now=NOW + timedelta(hours=2))
        await revoke_credential(s, app_id=first.app_id, now=NOW + timedelta(hours=3))  # no-op
        with pytest.raises(CredentialRevoked):
            await rotate_secret(s, app_id=first.app_id, now=NOW + timedelta(hours=4))
        [info] = await list_credentials(s, org_code=ORG_B)
        assert info.status == "revoked" and info.rotated_at is not None
        return first.app_id, await _events(s)

    app_id, events = run(settings, work)
    assert events == [
        ("operator1", "user", "credential.create", app_id),
        (CLI.username, "system", "credential.rotate", app_id),
        (CLI.username, "system", "credential.revoke", app_id),
    ]


def test_a_new_institution_needs_a_valid_code_and_a_name(settings: Settings) -> None:
    async def work(s: AsyncSession) -> None:
        with pytest.raises(BadRequest):
            await create_credential(s, org_code="123", institution_name="某医院", now=NOW)
        with pytest.raises(BadRequest):
            await create_credential(s, org_code=ORG_A, institution_name="  ", now=NOW)

    run(settings, work)
