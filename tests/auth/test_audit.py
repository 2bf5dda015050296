"""The audit helper: one catalogue of dotted action names, an ``Actor`` for who acted, the row in
the caller's unit of work (it commits or rolls back with what it records)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import CLI, Actor, AuditAction, audit
from imsp.auth.models import AuditEvent
from imsp.config import Settings
from tests.support.database import run

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_action_names_are_dotted_subject_and_verb() -> None:
    for action in AuditAction:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", action.value), action
    assert len({a.value for a in AuditAction}) == len(AuditAction)


def test_an_event_records_the_actor_the_action_and_the_target(settings: Settings) -> None:
    actor = Actor("reviewer1", "reviewer", institution_id=None, client_addr="10.0.0.1")

    async def work(s: AsyncSession) -> AuditEvent:
        await audit(
            s, actor, AuditAction.PERSONAL_DATA_VIEW, now=NOW, target="application:1/doctor",
            detail={"where": "review"},
        )  # fmt: skip
        await audit(s, CLI, AuditAction.EXCHANGE_BODY_EXPORT, now=NOW, target="x")
        await s.flush()
        return (await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()[0]

    event = run(settings, work)
    assert (event.actor, event.actor_kind, event.action, event.client_addr) == (
        "reviewer1",
        "user",
        "personal_data.view",
        "10.0.0.1",
    )
    assert event.target == "application:1/doctor" and event.detail == {"where": "review"}
    assert event.at == NOW


def test_an_event_is_undone_with_the_unit_of_work_it_belongs_to(settings: Settings) -> None:
    class Boom(Exception):
        pass

    async def work(s: AsyncSession) -> None:
        await audit(s, CLI, AuditAction.CREDENTIAL_CREATE, now=NOW, target="hb1")
        await s.flush()
        raise Boom

    with pytest.raises(Boom):
        run(settings, work)

    async def count(s: AsyncSession) -> int:
        return int(await s.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    assert run(settings, count) == 0
