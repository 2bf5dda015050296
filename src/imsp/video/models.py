"""Tables of the video domain. The hospital's appSecret is stored encrypted (AES-GCM, key from
settings), never in the clear; playback URLs are kept server-side and never reach a browser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base


class VideoEndpoint(Base):
    """An institution's video service: where it is, how to sign in, which CA to trust."""

    __tablename__ = "video_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), unique=True)
    base_url: Mapped[str] = mapped_column(String(300))
    app_id: Mapped[str] = mapped_column(String(100))
    secret_enc: Mapped[str] = mapped_column(String(600))  # base64(nonce || AES-GCM ciphertext)
    ca_bundle: Mapped[str] = mapped_column(Text, default="")  # PEM; empty: the system's CAs
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(60))


class VideoLease(Base):
    """One video found by a search, as the browser may play it: the browser knows only ``id``
    (random); the hospital's playback URL stays here and is refreshed by a new query if stale."""

    __tablename__ = "video_lease"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("portal_user.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    video_id: Mapped[str] = mapped_column(String(64))
    visit_no: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the protocol's video fields
    play_url: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime]
    bytes_served: Mapped[int] = mapped_column(BigInteger, default=0)


class VideoCheck(Base):
    """Evidence of one retrieval check for acceptance (接入确认): found, played, verified."""

    __tablename__ = "video_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    visit_no: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(60))
    ok: Mapped[bool]
    found: Mapped[bool]
    played: Mapped[bool]
    verified: Mapped[bool]
    video_id: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # step -> milliseconds
    message: Mapped[str] = mapped_column(String(500), default="")
