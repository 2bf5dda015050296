"""Playback through the platform: the browser's Range request goes to the hospital's playback URL
and the bytes flow back chunk by chunk — never the whole file first, never the hospital's URL or
token in the browser. A stale playback URL is refreshed once by a new query.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.config import Settings
from imsp.errors import NotFound
from imsp.video.client import PeerError, TokenCache, Upstream, VideoServiceClient
from imsp.video.models import VideoLease
from imsp.video.service import endpoint_of, open_endpoint, refresh_play_url

#: The only Range form passed on: one range of bytes (what media elements send).
_RANGE = re.compile(r"^bytes=(\d{1,15})-(\d{0,15})$|^bytes=-(\d{1,15})$")


def clean_range(value: str | None) -> str | None:
    """The browser's Range header if it is a single byte range, else ``None`` (whole file)."""
    if value and _RANGE.match(value.strip()):
        return value.strip()
    return None


@dataclass
class Playback:
    """An open upstream answer; ``close()`` releases the connection to the hospital."""

    upstream: Upstream
    stack: AsyncExitStack

    async def close(self) -> None:
        await self.stack.aclose()


async def open_playback(
    session: AsyncSession,
    *,
    settings: Settings,
    tokens: TokenCache,
    lease: VideoLease,
    range_header: str | None,
) -> Playback:
    """Open the hospital's answer for ``lease`` with ``range_header`` passed through. A refreshed
    playback URL is set on ``lease`` (saved when the caller's unit of work commits)."""
    row = await endpoint_of(session, lease.institution_id)
    if row is None:
        raise NotFound("该机构尚未登记视频服务")
    stack = AsyncExitStack()
    try:
        client = await stack.enter_async_context(
            VideoServiceClient(open_endpoint(settings, row), settings.video, tokens)
        )
        size = int(lease.meta.get("size") or 0)
        try:
            up = await stack.enter_async_context(
                client.open_video(lease.play_url, size=size, range_header=range_header)
            )
        except PeerError as exc:
            if exc.kind != "url_expired":
                raise
            url = await refresh_play_url(client, lease)
            up = await stack.enter_async_context(
                client.open_video(url, size=size, range_header=range_header)
            )
        return Playback(up, stack)
    except BaseException:
        await stack.aclose()
        raise
