"""Use cases of video retrieval: register a service, search, play, audit. Never commits.

Scope (a hospital sees only its own data): regulators and the platform operator may reach every
institution's service; an institution's own account only its own. Every search, playback and
failure is an audit event (``video.search`` / ``video.play`` / ``video.error``) carrying the
patient index *masked* (姓名 → 张**, 证件号 → 前 4 位与后 4 位).
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor, AuditAction, audit
from imsp.auth.models import Institution
from imsp.config import Settings
from imsp.errors import BadRequest, Forbidden, NotFound
from imsp.standard import video as P
from imsp.video import sealing
from imsp.video.client import Endpoint, PeerError, TokenCache, VideoServiceClient, tls_context
from imsp.video.models import VideoEndpoint, VideoLease

#: Roles that may search and play any institution's videos.
ALL_INSTITUTIONS: Final = frozenset({"regulator", "operator"})
#: Roles that may search and play their own institution's videos.
OWN_INSTITUTION: Final = frozenset({"applicant"})
#: Who may register an institution's video service.
REGISTRARS: Final = frozenset({"operator", "applicant"})


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who searches or plays: a portal user."""

    user_id: int
    username: str
    role: str
    institution_id: int | None
    client_addr: str = ""


@dataclass(frozen=True, slots=True)
class Found:
    """One video of a search, as a page shows it (``lease`` is what the browser may play)."""

    lease: str
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SearchResult:
    videos: list[Found]
    patients: list[dict[str, Any]]


def may_view(viewer: Viewer, institution_id: int) -> bool:
    if viewer.role in ALL_INSTITUTIONS:
        return True
    return viewer.role in OWN_INSTITUTION and viewer.institution_id == institution_id


def masked_index(query: dict[str, str]) -> dict[str, str]:
    """The patient index as audit lists show it."""
    out = dict(query)
    if out.get(P.PATIENT_NAME):
        out[P.PATIENT_NAME] = P.mask_name(out[P.PATIENT_NAME])
    if out.get(P.ID_CARD_NO):
        out[P.ID_CARD_NO] = P.mask_id_card(out[P.ID_CARD_NO])
    return out


# --------------------------------------------------------------------------- registration


async def register_endpoint(
    session: AsyncSession,
    *,
    settings: Settings,
    institution_id: int,
    base_url: str,
    app_id: str,
    app_secret: str,
    ca_bundle: str,
    actor: Viewer,
    now: datetime,
) -> VideoEndpoint:
    """Save the institution's video service. An empty ``app_secret`` keeps the stored one; the
    secret is only ever stored encrypted and never shown again."""
    if actor.role not in REGISTRARS or (
        actor.role == "applicant" and actor.institution_id != institution_id
    ):
        raise Forbidden("当前账号无权登记该机构的视频服务")
    existing = await session.scalar(
        select(VideoEndpoint).where(VideoEndpoint.institution_id == institution_id)
    )
    base_url, app_id, ca_bundle = base_url.strip().rstrip("/"), app_id.strip(), ca_bundle.strip()
    errors: dict[str, str] = {}
    secret_field = "app_secret"  # noqa: S105 - a form field name
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        errors["base_url"] = "服务地址须为 https:// 开头的完整地址，如 https://10.1.2.3:8443"
    elif parts.query or parts.fragment or parts.username or parts.password:
        errors["base_url"] = "服务地址不能包含查询参数、片段或用户名密码"
    elif len(base_url) > 300:
        errors["base_url"] = "服务地址过长（不超过 300 个字符）"
    if not app_id or len(app_id) > 100:
        errors["app_id"] = "请填写医院为平台分配的 appId（不超过 100 个字符）"
    if not app_secret and existing is None:
        errors[secret_field] = "请填写 appSecret"
    elif len(app_secret) > 300:
        errors[secret_field] = "appSecret 过长（不超过 300 个字符）"
    if ca_bundle:
        try:
            tls_context(ca_bundle)
        except (ssl.SSLError, ValueError):
            errors["ca_bundle"] = "CA 证书不是合法的 PEM 格式证书"
    if errors:
        raise BadRequest("视频服务登记信息有误", data={"errors": errors})
    sealed = sealing.seal(settings, app_secret) if app_secret else None
    if existing is None:
        assert sealed is not None
        existing = VideoEndpoint(
            institution_id=institution_id,
            base_url=base_url,
            app_id=app_id,
            secret_enc=sealed,
            ca_bundle=ca_bundle,
            updated_at=now,
            updated_by=actor.username,
        )
        session.add(existing)
    else:
        existing.base_url, existing.app_id, existing.ca_bundle = base_url, app_id, ca_bundle
        existing.updated_at, existing.updated_by = now, actor.username
        if sealed is not None:
            existing.secret_enc = sealed
    await audit(
        session,
        Actor(actor.username, client_addr=actor.client_addr),
        AuditAction.VIDEO_ENDPOINT,
        now,
        target=base_url,
        institution_id=institution_id,
        detail={"appId": app_id, "secretChanged": bool(app_secret)},
    )
    await session.flush()
    return existing


async def endpoint_of(session: AsyncSession, institution_id: int) -> VideoEndpoint | None:
    return await session.scalar(
        select(VideoEndpoint).where(VideoEndpoint.institution_id == institution_id)
    )


def open_endpoint(settings: Settings, row: VideoEndpoint) -> Endpoint:
    return Endpoint(
        row.base_url, row.app_id, sealing.unseal(settings, row.secret_enc), row.ca_bundle
    )


async def _endpoint(session: AsyncSession, settings: Settings, institution_id: int) -> Endpoint:
    row = await endpoint_of(session, institution_id)
    if row is None:
        raise NotFound("该机构尚未登记视频服务")
    return open_endpoint(settings, row)


# --------------------------------------------------------------------------- search and play


def clean_query(raw: dict[str, str]) -> dict[str, str]:
    """The protocol's query parameters from a form; at least one index is required."""
    query = {k: raw.get(k, "").strip() for k in (*P.INDEXES, P.START_DATE, P.END_DATE)}
    query = {k: v for k, v in query.items() if v}
    errors: dict[str, str] = {}
    for k in (P.START_DATE, P.END_DATE):
        if k in query:
            try:
                datetime.strptime(query[k], P.DATE_FORMAT)
            except ValueError:
                errors[k] = "日期格式为 yyyy-MM-dd"
    for k in P.INDEXES:
        if len(query.get(k, "")) > 64:
            errors[k] = f"{P.INDEX_TITLES[k]}过长"
    if not any(k in query for k in P.INDEXES):
        errors["index"] = "请至少填写患者姓名、身份证件号码、就诊流水号之一"
    if errors:
        raise BadRequest("检索条件有误", data={"errors": errors})
    return query


async def search(
    session: AsyncSession,
    *,
    settings: Settings,
    tokens: TokenCache,
    institution: Institution,
    query: dict[str, str],
    viewer: Viewer,
    now: datetime,
) -> SearchResult:
    """Ask the institution's service; each video found gets a lease this viewer may play.
    A failure of the service is audited and re-raised as :class:`PeerError`."""
    if not may_view(viewer, institution.id):
        raise Forbidden("当前账号无权调阅该机构的视频")
    query = clean_query(query)
    ep = await _endpoint(session, settings, institution.id)
    detail: dict[str, Any] = {"index": masked_index(query)}
    try:
        async with VideoServiceClient(ep, settings.video, tokens) as client:
            answer = await client.query(query)
    except PeerError as exc:
        await _audit(session, viewer, now, "video.error", institution.id, ep.base_url,
                     {**detail, "kind": exc.kind, "msg": exc.msg, "during": "search"})  # fmt: skip
        raise
    found = []
    for v in answer.videos:
        lease = VideoLease(
            id=secrets.token_urlsafe(24),
            user_id=viewer.user_id,
            institution_id=institution.id,
            video_id=str(v["videoId"])[:64],
            visit_no=str(v["visitNo"])[:64],
            meta={k: v.get(k) for k in P.VIDEO_FIELD_NAMES if k not in ("playUrl",)},
            play_url=v["playUrl"],
            created_at=now,
            bytes_served=0,
        )
        session.add(lease)
        meta = dict(lease.meta)
        meta[P.ID_CARD_NO] = P.mask_id_card(str(meta.get(P.ID_CARD_NO) or ""))
        found.append(Found(lease.id, meta))
    patients = [
        {**p, P.ID_CARD_NO: P.mask_id_card(str(p.get(P.ID_CARD_NO) or ""))} for p in answer.patients
    ]
    await _audit(session, viewer, now, "video.search", institution.id, "",
                 {**detail, "found": len(found), "videoIds": [f.meta["videoId"] for f in found][:20]})  # fmt: skip
    return SearchResult(found, patients)


async def lease_of(session: AsyncSession, *, lease_id: str, viewer: Viewer) -> VideoLease:
    """A lease of this viewer (someone else's lease is as if it did not exist)."""
    lease = await session.get(VideoLease, lease_id)
    if (
        lease is None
        or lease.user_id != viewer.user_id
        or not may_view(viewer, lease.institution_id)
    ):
        raise NotFound("视频不存在或已失效，请重新检索")
    return lease


async def record_play(
    session: AsyncSession, *, lease: VideoLease, viewer: Viewer, now: datetime
) -> None:
    """Audit the opening of the player for ``lease``; the bytes served accrue on the lease."""
    await _audit(session, viewer, now, "video.play", lease.institution_id, lease.id,
                 {"videoId": lease.video_id, "visitNo": lease.visit_no, "lease": lease.id})  # fmt: skip


async def refresh_play_url(client: VideoServiceClient, lease: VideoLease) -> str:
    """A fresh playback URL for ``lease`` (its old one expired): query by its visit number."""
    answer = await client.query({P.VISIT_NO: lease.visit_no})
    for v in answer.videos:
        if str(v["videoId"]) == lease.video_id:
            lease.play_url = str(v["playUrl"])
            return lease.play_url
    raise PeerError("gone", "视频服务已找不到该视频")


async def add_bytes(session: AsyncSession, *, lease_id: str, served: int) -> None:
    await session.execute(
        update(VideoLease)
        .where(VideoLease.id == lease_id)
        .values(bytes_served=VideoLease.bytes_served + served)
    )


async def record_error(
    session: AsyncSession,
    *,
    viewer: Viewer,
    now: datetime,
    institution_id: int,
    error: PeerError,
    during: str,
    lease_id: str = "",
) -> None:
    await _audit(session, viewer, now, "video.error", institution_id, lease_id,
                 {"kind": error.kind, "msg": error.msg, "during": during, "lease": lease_id})  # fmt: skip


async def _audit(
    session: AsyncSession,
    viewer: Viewer,
    now: datetime,
    action: str,
    institution_id: int,
    target: str,
    detail: dict[str, Any],
) -> None:
    await audit(
        session,
        Actor(viewer.username, viewer.role, viewer.institution_id, viewer.client_addr),
        AuditAction(action),
        now,
        target=target[:200],
        institution_id=institution_id,
        detail=detail,
    )
