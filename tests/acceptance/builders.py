"""Builders of the acceptance tests: an institution on the test channel, generated data pushed
with the real SDK, and a unit of work on the test's database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance.service import Deps, Who
from imsp.auth import service as auth
from imsp.auth.credentials import create_credential
from imsp.auth.models import Institution, PortalUser
from imsp.auth.service import IssuedCredential
from imsp.client import videoservice as vs
from imsp.clock import Clock
from imsp.config import Settings
from imsp.standard.sample import generate
from imsp.storage.db import Database
from imsp.video import service as video_service
from tests.video import builders as video_builders

T = TypeVar("T")

#: A fictitious institution with a valid USCC (GB 32100 check character).
ORG = "12130000MB1A2B3C4R"
NAME = "河北省测试第一医院"
CENTRE = Who("centre1", "centre")
OPERATOR = Who("operator", "operator")


def run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``work`` in one committed unit of work on the test's database."""

    async def main() -> T:
        db = Database(settings)
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


def make_test_credential(
    settings: Settings, clock: Clock, org_code: str = ORG, name: str = NAME
) -> IssuedCredential:
    return run(
        settings,
        lambda s: create_credential(
            s, org_code=org_code, institution_name=name, now=clock.now(), channel="test"
        ),
    )


def deps(settings: Settings) -> Deps:
    return Deps(cfg=settings.acceptance)


@lru_cache(maxsize=32)
def _records(code: str, count: int, org_code: str) -> tuple[Any, ...]:
    return tuple(generate(code, count, seed=7, org_code=org_code))


def records(code: str, count: int, org_code: str = ORG) -> list[dict[str, Any]]:
    return [dict(r) for r in _records(code, count, org_code)]


PASSWORD = "Passw0rd-123"


def seed_users(settings: Settings, clock: Clock, institution_id: int) -> None:
    """Signed-in-ready portal users: operator1, centre1 and the institution's applicant1."""

    async def work(session: AsyncSession) -> None:
        inst = await session.get(Institution, institution_id)
        for role in ("operator", "centre", "applicant"):
            await auth.create_portal_user(
                session,
                username=f"{role}1",
                password=PASSWORD,
                role=role,
                now=clock.now(),
                must_change_password=False,
                institution=inst if role == "applicant" else None,
            )

    run(settings, work)


def register_video(
    settings: Settings, clock: Clock, *, institution_id: int, base_url: str, ca_pem: str
) -> None:
    """The institution's reference video service, registered by operator1."""

    async def work(session: AsyncSession) -> None:
        op = await session.scalar(select(PortalUser).where(PortalUser.username == "operator1"))
        assert op is not None
        await video_service.register_endpoint(
            session,
            settings=settings,
            institution_id=institution_id,
            base_url=base_url,
            app_id=video_builders.APP_ID,
            app_secret=video_builders.APP_SECRET,
            ca_bundle=ca_pem,
            actor=video_service.Viewer(op.id, op.username, op.role, None),
            now=clock.now(),
        )

    run(settings, work)


def recordings_for(where: Path, visit_no: str) -> list[vs.Recording]:
    """One real MP4 (ffmpeg) recorded for ``visit_no``."""
    where.mkdir(parents=True, exist_ok=True)
    video_builders.make_mp4(where / "v.mp4", 2)
    index = where / "index.json"
    index.write_text(
        json.dumps([{"file": "v.mp4", "videoId": "VID-ACC", "visitNo": visit_no}]), "utf-8"
    )
    return vs.load_recordings(where, index)
