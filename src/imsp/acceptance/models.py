"""Tables of the acceptance domain (接入确认, 数据接入工作说明 第四章).

* ``acceptance_case`` — one per institution: its state in the confirmation workflow, the services
  it must pass (the operator's scope; ``NULL`` means the standard's mandatory datasets).
* ``acceptance_transition`` — every step of the workflow, with the board as it was at that moment.
* ``acceptance_report`` — an issued 《接口联调对接验收报告》: the PDF bytes, its SHA-256 and the same
  content as JSON. Never updated or deleted; a revoked confirmation marks it (``revoked_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base, JsonDoc


class AcceptanceCase(Base):
    __tablename__ = "acceptance_case"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # applied | confirmed | returned | revoked
    version: Mapped[int] = mapped_column(default=0)  # number of applications
    # dataset codes required (the operator's scope); None = the standard's mandatory datasets
    services: Mapped[list[str] | None] = mapped_column(JsonDoc)
    internet_hospital: Mapped[str] = mapped_column(String(100), default="")  # given on applying
    vendor: Mapped[str] = mapped_column(String(100), default="")  # 承建厂商
    updated_at: Mapped[datetime]


class AcceptanceTransition(Base):
    __tablename__ = "acceptance_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("acceptance_case.id"), index=True)
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(60))
    actor_role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    board: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AcceptanceReport(Base):
    __tablename__ = "acceptance_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("acceptance_case.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    issued_at: Mapped[datetime]
    reviewer: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    content: Mapped[dict[str, Any]]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str] = mapped_column(Text, default="")
