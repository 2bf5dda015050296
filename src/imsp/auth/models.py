"""Tables of the auth domain. Secrets, passwords and tokens are stored only as hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base


class Institution(Base):
    """A medical institution known to the platform (机构), identified by its USCC (organID)."""

    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class AppCredential(Base):
    """An exchange credential (appId/appSecret). The secret is kept only as an HMAC-SHA256."""

    __tablename__ = "app_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | revoked
    # test (测试) | production (正式): uploads with a test credential are stored and traced but
    # never counted in the province's figures (接入确认, issue 14).
    channel: Mapped[str] = mapped_column(String(12), default="production")
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PortalUser(Base):
    """A person who logs in to the portal (资质管理 / 监管). Password hashed with argon2id."""

    __tablename__ = "portal_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50), default="")
    #: Where notifications are mailed when an SMTP relay is configured (``imsp.notify``).
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(200))
    # operator | applicant | reviewer | regulator | centre (统计信息中心)
    role: Mapped[str] = mapped_column(String(20))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), index=True)
    must_change_password: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Who did or viewed what, when, from where (logins, patient data and video views, reviews)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(60))
    actor_kind: Mapped[str] = mapped_column(String(20))  # user | app | system
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200), default="")
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), index=True)
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PortalSession(Base):
    """A signed-in portal session. The browser holds a random token; only its SHA-256 is stored,
    so a leaked table cannot be replayed. Expires ``settings.portal.session_ttl_seconds`` after
    sign-in (absolute, not sliding); logout and password changes delete the row."""

    __tablename__ = "portal_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("portal_user.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    client_addr: Mapped[str] = mapped_column(String(64), default="")
