"""The video part of acceptance (接入确认): can the platform retrieve one consultation's video?

:func:`check_video` finds the video of a visit, plays its first seconds (a Range request that must
start with an MP4 header), then reads the whole file and verifies its size and SHA-256 against what
the service declared — with the time of each step — and stores the outcome as evidence
(``video_check``). It never raises for a failing hospital: the failure is the evidence.

Stable signature (the acceptance domain calls it)::

    result = await check_video(session, settings=settings, institution_id=inst.id,
                               visit_no="GH20260105001", now=clock.now(), actor="operator")
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.config import Settings
from imsp.errors import NotFound
from imsp.standard import video as P
from imsp.video import sealing
from imsp.video.client import PeerError, TokenCache, VideoServiceClient
from imsp.video.models import VideoCheck
from imsp.video.service import endpoint_of, open_endpoint

#: The first bytes requested to "play the first seconds" are at least this many.
MIN_PLAY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class VideoCheckResult:
    """Outcome of one check. ``timings`` are milliseconds per step (found / played / verified)."""

    ok: bool
    found: bool
    played: bool
    verified: bool
    video_id: str = ""
    size: int = 0
    sha256: str = ""
    timings: dict[str, int] = field(default_factory=dict)
    message: str = ""
    evidence_id: int = 0


async def check_video(
    session: AsyncSession,
    *,
    settings: Settings,
    institution_id: int,
    visit_no: str,
    now: datetime,
    actor: str = "接入确认",
    play_seconds: float = 3.0,
    tokens: TokenCache | None = None,
) -> VideoCheckResult:
    """Check the video of ``visit_no`` at the institution's registered service; store and return
    the evidence. Raises only :class:`~imsp.errors.NotFound` when no service is registered."""
    row = await endpoint_of(session, institution_id)
    if row is None:
        raise NotFound("该机构尚未登记视频服务")
    timings: dict[str, int] = {}
    found = played = verified = False
    video_id, size, digest, message = "", 0, "", ""

    def lap(step: str, started: float) -> None:
        timings[step] = round((time.perf_counter() - started) * 1000)

    try:
        ep = open_endpoint(settings, row)
        async with VideoServiceClient(ep, settings.video, tokens) as client:
            t = time.perf_counter()
            answer = await client.query({P.VISIT_NO: visit_no})
            lap("found", t)
            mine = [v for v in answer.videos if str(v["visitNo"]) == visit_no]
            if not mine:
                raise PeerError("not_found", f"视频服务没有就诊流水号 {visit_no} 的视频")
            video = mine[0]
            found = True
            video_id, size, digest = str(video["videoId"]), int(video["size"]), video["sha256"]
            duration = video.get("duration")
            share = play_seconds / duration if isinstance(duration, int | float) and duration else 1
            first = min(size, max(MIN_PLAY_BYTES, math.ceil(size * min(1.0, share))))
            t = time.perf_counter()
            head = bytearray()
            async with client.open_video(
                video["playUrl"], size=size, range_header=f"bytes=0-{first - 1}"
            ) as up:
                async for chunk in up.body:
                    head += chunk
            lap("played", t)
            if up.status not in (200, 206) or head[4:8] != b"ftyp":
                raise PeerError("not_mp4", "播放前几秒失败：返回的数据不是 MP4 文件头")
            played = True
            t = time.perf_counter()
            h, n = hashlib.sha256(), 0
            async with client.open_video(video["playUrl"], size=size) as up:
                async for chunk in up.body:
                    h.update(chunk)
                    n += len(chunk)
            lap("verified", t)
            if n != size:
                raise PeerError("size", f"大小不符：声明 {size} 字节，实际 {n} 字节")
            if h.hexdigest() != digest:
                raise PeerError("sha256", "SHA-256 与视频服务声明的不一致")
            verified = True
            message = f"已找到并播放视频 {video_id}，大小与 SHA-256 校验一致"
    except PeerError as exc:
        message = exc.msg
    except sealing.SecretKeyError as exc:
        message = str(exc)
    ok = found and played and verified
    evidence = VideoCheck(
        institution_id=institution_id,
        visit_no=visit_no[:64],
        at=now,
        actor=actor[:60],
        ok=ok,
        found=found,
        played=played,
        verified=verified,
        video_id=video_id[:64],
        size=size,
        sha256=digest if isinstance(digest, str) else "",
        timings=timings,
        message=message[:500],
    )
    session.add(evidence)
    await session.flush()
    return VideoCheckResult(
        ok, found, played, verified, video_id, size, evidence.sha256, timings, message, evidence.id
    )


__all__ = ["MIN_PLAY_BYTES", "VideoCheckResult", "check_video"]
