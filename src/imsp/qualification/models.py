"""Tables of the qualification domain.

An institution has one ``Application``: its working data (institution form, departments, doctors,
attachments) is editable while the workflow state allows it (``workflow.STATES``). Every
submission freezes a complete ``snapshot`` of that data in a ``Submission`` (version 1, 2, …), so
the reviewer decides on exactly what was submitted and a resubmission can be diffed against the
rejected version. Every state change is a ``Transition`` row (who, when, reason).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base


class Application(Base):
    """资质申请: one per applicant institution (申请机构)."""

    __tablename__ = "qualification_application"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), unique=True)
    status: Mapped[str] = mapped_column(String(12), index=True)  # workflow.STATES
    version: Mapped[int] = mapped_column(default=0)  # latest submission's version; 0 = none yet
    #: 机构注册 form: {"internetHospitalType": "1", "entity": {...}, "internet": {...}} keyed by
    #: the Data Standard's field codes (organization dataset).
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Department(Base):
    """科室: one record of the standard's ``department`` dataset (header fields left out)."""

    __tablename__ = "qualification_department"
    __table_args__ = (UniqueConstraint("application_id", "dept_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("qualification_application.id"), index=True
    )
    dept_code: Mapped[str] = mapped_column(String(20))  # deptID, the business key
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class Doctor(Base):
    """人员: one record of the standard's ``doctor`` dataset (header fields left out)."""

    __tablename__ = "qualification_doctor"
    __table_args__ = (UniqueConstraint("application_id", "cert_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("qualification_application.id"), index=True
    )
    cert_id: Mapped[str] = mapped_column(String(18))  # doctorCertID, the business key
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class Attachment(Base):
    """An uploaded file (执业许可证 / 线下审批文件). The content lives under
    ``data_dir/attachments/<sha256[:2]>/<sha256>``; rows are never deleted, only marked removed,
    so every submitted version keeps its files."""

    __tablename__ = "qualification_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("qualification_application.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # attachments.KINDS
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    mime: Mapped[str] = mapped_column(String(40))
    original_name: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(50))
    uploaded_at: Mapped[datetime]
    version: Mapped[int]  # the submission version it was uploaded for
    removed_at: Mapped[datetime | None]


class Submission(Base):
    """One submitted version: the frozen snapshot the reviewer decides on."""

    __tablename__ = "qualification_submission"
    __table_args__ = (UniqueConstraint("application_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("qualification_application.id"))
    version: Mapped[int]
    submitted_at: Mapped[datetime]
    submitted_by: Mapped[str] = mapped_column(String(50))
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Transition(Base):
    """One step of the workflow: who moved the application from which state to which, why."""

    __tablename__ = "qualification_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("qualification_application.id"), index=True
    )
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(50))
    actor_role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    #: Per-field reasons of a rejection: {"entity.licenseNo": "与许可证不一致", "doctors": "…"}.
    field_reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)
