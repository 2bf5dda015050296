"""Reads of the video domain, scoped: the viewing audit, registered services, check evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import AuditEvent, Institution
from imsp.standard import video as P
from imsp.video.models import VideoCheck, VideoEndpoint, VideoLease
from imsp.video.service import ALL_INSTITUTIONS, Viewer

ACTIONS: Final[dict[str, str]] = {
    "video.search": "检索",
    "video.play": "播放",
    "video.error": "失败",
    "video.endpoint": "登记视频服务",
}


@dataclass(frozen=True, slots=True)
class LogRow:
    at: datetime
    actor: str
    client_addr: str
    institution: str
    action: str
    index: str  # masked
    video: str
    bytes_served: int | None
    note: str


def _index_text(detail: dict[str, Any]) -> str:
    index = detail.get("index") or {}
    return "；".join(
        f"{P.INDEX_TITLES.get(k, k)} {v}" for k, v in index.items() if k in P.INDEXES and v
    )


async def viewing_log(
    session: AsyncSession, *, viewer: Viewer, offset: int, limit: int
) -> tuple[list[LogRow], int]:
    """Video audit events, newest first; an institution's own account sees only its own."""
    where: list[ColumnElement[bool]] = [AuditEvent.action.in_(list(ACTIONS))]
    if viewer.role not in ALL_INSTITUTIONS:
        where.append(AuditEvent.institution_id == (viewer.institution_id or -1))
    total = await session.scalar(select(func.count()).select_from(AuditEvent).where(*where)) or 0
    rows = (
        await session.execute(
            select(AuditEvent, Institution.name)
            .outerjoin(Institution, Institution.id == AuditEvent.institution_id)
            .where(*where)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()
    leases = [e.detail.get("lease") for e, _ in rows if e.action == "video.play"]
    served: dict[str, int] = {}
    if leases:
        found = await session.execute(
            select(VideoLease.id, VideoLease.bytes_served).where(
                VideoLease.id.in_([x for x in leases if isinstance(x, str)])
            )
        )
        served = {lease_id: n for lease_id, n in found.all()}
    out = []
    for e, name in rows:
        d = e.detail or {}
        if e.action == "video.search":
            video, note = "、".join(d.get("videoIds") or []), f"找到 {d.get('found', 0)} 个视频"
        elif e.action == "video.play":
            video, note = f"{d.get('videoId', '')}（就诊 {d.get('visitNo', '')}）", ""
        elif e.action == "video.error":
            video, note = "", f"{d.get('msg', '')}（{d.get('kind', '')}）"
        else:
            video, note = "", e.target
        out.append(
            LogRow(
                at=e.at,
                actor=e.actor,
                client_addr=e.client_addr,
                institution=name or "",
                action=ACTIONS.get(e.action, e.action),
                index=_index_text(d),
                video=video,
                bytes_served=served.get(str(d.get("lease"))) if e.action == "video.play" else None,
                note=note,
            )
        )
    return out, total


async def institutions(session: AsyncSession) -> list[tuple[Institution, VideoEndpoint | None]]:
    """Every institution with its registered video service (if any), by name."""
    rows = await session.execute(
        select(Institution, VideoEndpoint)
        .outerjoin(VideoEndpoint, VideoEndpoint.institution_id == Institution.id)
        .order_by(Institution.name)
    )
    return [(i, e) for i, e in rows.all()]


async def institution_by_code(session: AsyncSession, org_code: str) -> Institution | None:
    return await session.scalar(select(Institution).where(Institution.org_code == org_code))


async def checks_of(
    session: AsyncSession, institution_id: int, limit: int = 20
) -> list[VideoCheck]:
    """Acceptance evidence of one institution, newest first."""
    return list(
        await session.scalars(
            select(VideoCheck)
            .where(VideoCheck.institution_id == institution_id)
            .order_by(VideoCheck.at.desc(), VideoCheck.id.desc())
            .limit(limit)
        )
    )
