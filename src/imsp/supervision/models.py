"""Tables of the supervision domain: findings, their history, and checks waiting for data.

* ``supervision_finding`` — one row per (rule, institution, evaluated record): the rule id and the
  version that raised it, the record's exact stored version, the records involved, the evidence
  (the field values that broke the rule), severity, first/last seen and the workflow status.
  Re-evaluating a record updates its row; a finding is never duplicated.
* ``supervision_finding_event`` — the full history of a finding: every workflow transition,
  assignment, comment and the hospital's answers (with an attachment reference).
* ``supervision_pending`` — a record whose rules could not decide because the other side of a
  reference has not arrived yet (one row per record, the waiting rules and what each lacks in
  ``checks``). It is re-evaluated when the missing record arrives; ``due_at`` is when the grace
  period ends (then R43 关联数据不存在 is recorded).

No foreign key to ``record``: findings keep the business key and version they were raised on, and
the record table belongs to the exchange domain's hot path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imsp.storage.base import Base, JsonDoc

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Finding(Base):
    """One rule broken by one stored record (and the records it was compared with)."""

    __tablename__ = "supervision_finding"
    __table_args__ = (
        # (institution, dataset, key) first: the engine looks findings up by evaluated record
        UniqueConstraint("institution_id", "dataset", "key", "rule_id"),
        Index("ix_supervision_finding_institution_id_status", "institution_id", "status"),
        Index("ix_supervision_finding_status_rule_id", "status", "rule_id"),
        Index("ix_supervision_finding_first_seen", "first_seen"),
        Index("ix_supervision_finding_doctor_cert_id", "doctor_cert_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(8))  # R01 …
    rule_version: Mapped[int]
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    dataset: Mapped[str] = mapped_column(String(30))  # the evaluated record
    key: Mapped[str] = mapped_column(String(200))
    record_id: Mapped[int] = mapped_column(BigId)  # record.id (no FK, see above)
    record_version: Mapped[int]  # the stored version that broke the rule (latest seen)
    severity: Mapped[str] = mapped_column(String(10))  # violation | risk
    status: Mapped[str] = mapped_column(String(20))  # see workflow.STATES
    # [{"dataset", "key", "version"}], the evaluated record first
    records: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    # [{"severity", "dataset", "key", "field", "value", "message"}]
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    business_time: Mapped[datetime | None]  # of the evaluated record (filters by date)
    doctor_cert_id: Mapped[str | None] = mapped_column(String(32))  # for per-doctor views
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    updated_at: Mapped[datetime]
    assignee: Mapped[str | None] = mapped_column(String(60))
    due_at: Mapped[datetime | None]  # rectification deadline (整改期限)
    resolution: Mapped[str | None] = mapped_column(String(20))  # resubmitted | closed | dismissed
    resolved_version: Mapped[int | None]  # record version when it was resolved


class FindingEvent(Base):
    """One entry of a finding's history (transition, assignment, comment or answer)."""

    __tablename__ = "supervision_finding_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    finding_id: Mapped[int] = mapped_column(
        ForeignKey("supervision_finding.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(60))
    actor_role: Mapped[str] = mapped_column(String(20))  # regulator | applicant | system
    text: Mapped[str] = mapped_column(Text, default="")  # reason, comment or answer
    attachment: Mapped[str | None] = mapped_column(String(500))  # a stored attachment reference
    # e.g. versions linked by a resubmission: {"from_version": 1, "to_version": 2}
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PendingCheck(Base):
    """The rules of one stored record waiting for the other side of a reference (order of upload
    must not matter): ONE row per waiting record, not per rule — a prescription that arrives
    before its patient, doctor and visit waits in a dozen rules, and a row per rule made the
    worker write a dozen rows per upload."""

    __tablename__ = "supervision_pending"
    __table_args__ = (Index("ix_supervision_pending_due_at", "due_at"),)

    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(30), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # rule id → what it waits for: {"R43": [{"dataset", "field", "key"}], "R11": [...]}
    checks: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    since: Mapped[datetime]
    # when the first grace period ends (R43/R44 decide then); None: waits for the data only
    due_at: Mapped[datetime | None]
