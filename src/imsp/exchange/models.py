"""Tables of the exchange domain: access tokens, stored records, their versions, the exchange log.

Design (数据上报, issue 4):

* ``access_token`` — one row per issued token, keyed by the token's SHA-256 (the token itself is never
  stored). A new token does not revoke older unexpired ones; revoking a credential deletes its
  tokens (ON DELETE CASCADE also covers a deleted credential).
* ``record`` — the *current* version of every record, one row per (institution, dataset, business
  key). Typed, indexed columns hold what supervision and reports query (the dataset's ``columns``
  roles in the Data Standard); ``data`` holds the normalised record, encoded by
  ``imsp.exchange.codec`` (canonical JSON, zstd with a dictionary; ``bytea`` on PostgreSQL).
* ``record_version`` — a light history: which request (``exchange_id``) and which position in its
  body carried each version, when and with which appId. The content of any version is reproduced
  from the archived request body (``exchange_log.body``) with the same validator, so history costs
  no second copy of the data.
* ``record_change`` — the change feed: one row per stored record version, written with it, consumed
  and deleted by supervision (``imsp.exchange.changes``).
* ``record_key`` — each business key's month (of first receipt): the ``record`` partition that
  holds it on PostgreSQL; ``archived_partition`` — the months detached and exported
  (``imsp.exchange.partitions``); ``archived_record`` — records of an archived month whose later
  versions stayed online.
* ``exchange_log`` — every request to the token service and the upload services, accepted or not.
  Its id is a UUIDv7 made by the server (time-ordered, no round trip to obtain it) and is returned
  to the client as ``exchangeId``. Bodies of accepted uploads are kept compressed (zstd, ``archive``) with their
  SHA-256, so any stored record traces to the exact bytes that carried it (``archive``).

There are deliberately no foreign keys from ``record``/``record_version``/``record_change`` to ``exchange_log``, nor
from ``record_version`` to ``record``: the log may be archived or pruned on its own schedule,
version rows are written by the same statement as their record (records are never deleted), and
each per-row FK check costs ~4 µs of ingest (docs/performance.md). ``record`` → ``institution``
keeps its FK. Indexes are those supervision and reports query by (institution + dataset +
business time, patient, doctor, visit); ``dept_code`` is a plain column.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from imsp.exchange.codec import RecordDoc
from imsp.storage.base import Base

#: A 64-bit id on PostgreSQL; SQLite needs INTEGER for its auto-incrementing rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: Maximum length of a stored business key (key fields joined with ``|``).
KEY_LENGTH = 200


class AccessToken(Base):
    """An access token (授权码) issued by ``/auth/accesstoken/create``; only its SHA-256 is kept."""

    __tablename__ = "access_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("app_credential.id", ondelete="CASCADE"), index=True
    )
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Record(Base):
    """The current version of one uploaded record (upsert by institution, dataset, business key).

    On PostgreSQL the table is partitioned by ``month`` (``imsp.exchange.partitions``): the
    Beijing month in which the key was FIRST received, fixed for the key by ``record_key`` — so
    a resend or a correction in a later month still finds its row (the unique constraint of a
    partitioned table must include the partition key). The primary key there is (id, month)."""

    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("institution_id", "dataset", "key", "month"),
        Index("ix_record_institution_id_dataset_business_time", "institution_id", "dataset", "business_time"),
        Index("ix_record_institution_id_patient_id", "institution_id", "patient_id"),
        Index("ix_record_institution_id_visit_no", "institution_id", "visit_no"),
        {"postgresql_partition_by": "RANGE (month)"},
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    dataset: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    version: Mapped[int]
    business_time: Mapped[datetime | None]
    patient_id: Mapped[str | None] = mapped_column(String(64))
    # 证件号码 are stored as given (supervision needs them) and masked in every display.
    patient_cert_id: Mapped[str | None] = mapped_column(String(32), index=True)
    doctor_cert_id: Mapped[str | None] = mapped_column(String(32), index=True)
    visit_no: Mapped[str | None] = mapped_column(String(64))
    dept_code: Mapped[str | None] = mapped_column(String(32))
    # The prescription's reviewing pharmacist (auditDoctorCertID): which prescriptions a changed
    # doctor record affects (supervision/incremental.py) — ``data`` cannot be queried in SQL.
    reviewer_cert_id: Mapped[str | None] = mapped_column(String(32))
    voided: Mapped[bool]  # operType = 3 作废
    # Canonical JSON, zstd with a dictionary (``imsp.exchange.codec``): a dict in Python.
    data: Mapped[dict[str, Any]] = mapped_column(RecordDoc())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    exchange_id: Mapped[uuid.UUID]  # the request that carried the current version
    month: Mapped[date]  # first day of the Beijing month of the key's first receipt (partition)


class RecordKey(Base):
    """The key directory: the month a business key was first received, i.e. the ``record``
    partition that holds it. Written by the upload writers with the record (one row per key,
    never updated unless the key's month was archived); it is what lets the upsert on the
    partitioned ``record`` find a key's row without probing every partition, and what lets a
    trace say that a record's month was archived (``archived_partition``)."""

    __tablename__ = "record_key"

    institution_id: Mapped[int] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(String(30), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    month: Mapped[date]
    # A key of an archived month sent again starts over in ``month``; this is the archived one,
    # where its earlier versions went (the trace says so). None: never archived.
    archived_month: Mapped[date | None]


class ArchivedPartition(Base):
    """One month of a partitioned table detached by ``imsp db partitions archive``: where its
    rows went and when (a trace of an archived record says so). PostgreSQL only."""

    __tablename__ = "archived_partition"
    __table_args__ = (UniqueConstraint("parent", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parent: Mapped[str] = mapped_column(String(40))  # record | record_version | exchange_log
    month: Mapped[date]
    partition: Mapped[str] = mapped_column(String(63))  # the detached table's name
    rows: Mapped[int] = mapped_column(BigId)
    # record only: the id range of the month's records (ids grow with time), so the record page
    # of an archived id can say where it went.
    min_id: Mapped[int | None] = mapped_column(BigId)
    max_id: Mapped[int | None] = mapped_column(BigId)
    location: Mapped[str] = mapped_column(String(500))  # dump file, or the kept table
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the dump file
    kept: Mapped[bool]  # the detached table was kept in the database
    archived_at: Mapped[datetime]


class ArchivedRecord(Base):
    """A record whose month was archived while later versions of it, stored in later months,
    stayed online in ``record_version`` (a correction sent after the month ended). The record row
    went into the archive with its month; this keeps its identity, so those versions still show
    with their dataset and business key (``exchange show``, ``exchange trace``). Written by
    ``imsp db partitions archive`` (``imsp.exchange.partitions``), PostgreSQL only."""

    __tablename__ = "archived_record"
    __table_args__ = (
        Index("ix_archived_record_institution_id_dataset_key", "institution_id", "dataset", "key"),
    )

    record_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # record.id
    institution_id: Mapped[int]
    dataset: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    month: Mapped[date]  # the record's (archived) month
    version: Mapped[int]  # its last version, the one its archived row holds


class RecordVersion(Base):
    """One stored version of a record: who sent it, when, in which request and at which index.
    Partitioned by ``at`` (month) on PostgreSQL, primary key (record_id, version, at) there."""

    __tablename__ = "record_version"
    __table_args__ = ({"postgresql_partition_by": "RANGE (at)"},)

    record_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # record.id
    version: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[uuid.UUID] = mapped_column(index=True)
    position: Mapped[int]  # index of the record in the request body
    at: Mapped[datetime]
    app_id: Mapped[str] = mapped_column(String(40))


class ExchangeLog(Base):
    """One request to the exchange service (token or upload), accepted or not."""

    __tablename__ = "exchange_log"
    __table_args__ = (
        Index("ix_exchange_log_institution_id_at", "institution_id", "at"),
        # PostgreSQL: by month of ``at``; primary key (id, at) there (the UUIDv7 carries the time).
        {"postgresql_partition_by": "RANGE (at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # UUIDv7, returned as exchangeId
    at: Mapped[datetime] = mapped_column(index=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    app_id: Mapped[str] = mapped_column(String(40))
    service: Mapped[str] = mapped_column(String(40))  # uploadPatientFile, accesstoken, …
    dataset: Mapped[str | None] = mapped_column(String(30))
    client_addr: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]  # body bytes received
    sha256: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[int]  # gateway code (200 = processed; see protocol.GATEWAY)
    total: Mapped[int]
    success: Mapped[int]
    fail: Mapped[int]
    latency_ms: Mapped[float]
    dry_run: Mapped[bool]
    atomic: Mapped[bool]
    # test (测试) | production (正式): the credential's channel (接入确认, issue 14).
    channel: Mapped[str] = mapped_column(String(12), default="production")
    chunked: Mapped[bool] = mapped_column(default=False)  # Transfer-Encoding: chunked
    # Accepted uploads only: zstd with the record dictionary (``archive.compress``; rows stored
    # before migration 0050: as sent on PostgreSQL, zlib on SQLite — ``archive.restore`` reads all).
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


class RecordChange(Base):
    """The change feed: one row per record version stored by an upload, written in the same unit
    of work as the record (``imsp.exchange.writer``), consumed and deleted by supervision through
    ``imsp.exchange.changes`` (claim with a lease, then ack). Unchanged resends, dry runs and
    atomic failures add none. No foreign keys, like ``record_version`` (written by the same
    statement as its record; an FK check per row costs ingest time)."""

    __tablename__ = "record_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    institution_id: Mapped[int]
    dataset: Mapped[str] = mapped_column(String(30))
    business_key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    record_id: Mapped[int] = mapped_column(BigId)
    version: Mapped[int]
    stored_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
