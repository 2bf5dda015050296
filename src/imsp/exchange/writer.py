"""The storage seam of the upload path: what a writer is given, what it promises, and the row
shape both writers share.

A writer stores one upload as ONE unit of work (ARCHITECTURE.md, "The upload path"):

* the key's month: read from ``record_key``, or the request's Beijing month for a key never seen
  (then written there) — the partition of ``record`` that holds the key on PostgreSQL
  (``imsp.exchange.partitions``);
* ``INSERT … ON CONFLICT (institution_id, dataset, key, month) DO UPDATE … WHERE record.data IS DISTINCT
  FROM excluded.data RETURNING …``: a new key is inserted (version 1), a changed one replaced
  (version + 1); a record resubmitted unchanged is not rewritten and gets no new version, so
  redelivery by a client's outbox is harmless (reported as 201 "unchanged").
* one ``record_version`` row per stored version (exchange id, position in the body, time, appId);
* one ``record_change`` row per stored version — the change feed supervision consumes
  (``imsp.exchange.changes``);
* the ``exchange_log`` row with the archived body.

Either all of it is written or none of it. Two writers implement :class:`Writer`, chosen once
when the exchange app is built (``exchange.api.install``), and the ingest code never asks which it has:

* ``sqlite_writer.SqliteWriter`` (demo, single node): the statements in one transaction;
* ``pg_writer.PgWriter`` (production): a single statement, concurrent requests merged (group
  commit).

Each writer owns its dialect's encoding (:meth:`Writer.encode_time`, the JSON or array
parameters; both store the record as ``codec.encode`` makes it, so "unchanged" compares the
canonical encodings); the columns themselves are described once, here (:data:`ROW_COLUMNS`),
derived from the Data Standard's column roles (``[columns]`` of each dataset,
``standard.model.COLUMN_ROLES``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final, Literal, Protocol
from typing import cast as typing_cast

from sqlalchemy import String, Table, literal_column

from imsp.errors import ImspError, Unavailable
from imsp.exchange.models import (
    ArchivedPartition,
    ExchangeLog,
    Record,
    RecordChange,
    RecordKey,
    RecordVersion,
)
from imsp.standard.model import COLUMN_ROLES
from imsp.storage.base import UtcDateTime

log = logging.getLogger("imsp.exchange")

RECORD = typing_cast(Table, Record.__table__)
RECORD_VERSION = typing_cast(Table, RecordVersion.__table__)
RECORD_CHANGE = typing_cast(Table, RecordChange.__table__)
EXCHANGE_LOG = typing_cast(Table, ExchangeLog.__table__)
RECORD_KEY = typing_cast(Table, RecordKey.__table__)
ARCHIVED_PARTITION = typing_cast(Table, ArchivedPartition.__table__)

#: ``doc``: the record itself, a dict the writer encodes (``imsp.exchange.codec.encode``).
ColumnKind = Literal["text", "time", "bool", "doc"]


@dataclass(frozen=True, slots=True)
class RowColumn:
    """One ``record`` column filled from the upload: ``short`` is its key in a row dict (and in
    the bind parameters: the rows travel as one parameter, so short keys keep it small)."""

    short: str
    column: str
    kind: ColumnKind
    role: str | None = None  # the Data Standard column role that fills it (``[columns]``)


def _role_column(role: str) -> RowColumn:
    """A role's column: same name on ``record``, short name = the initials of its words
    (``patient_cert_id`` → ``pci``), kind from the column's type."""
    col = RECORD.c[role]
    kind: ColumnKind = "time" if isinstance(col.type, UtcDateTime) else "text"
    assert kind == "time" or isinstance(col.type, String), role
    return RowColumn("".join(w[0] for w in role.split("_")), role, kind, role)


#: Every column a writer fills from a row, in statement order: the business key, one column per
#: Data Standard role (sorted), the voided flag (``operType`` = 3 作废), the record itself.
ROW_COLUMNS: Final[tuple[RowColumn, ...]] = (
    RowColumn("k", "key", "text"),
    *(_role_column(role) for role in sorted(COLUMN_ROLES)),
    RowColumn("vd", "voided", "bool"),
    RowColumn("d", "data", "doc"),
)
#: The role columns only: role → column.
ROLE_COLUMNS: Final[dict[str, RowColumn]] = {c.role: c for c in ROW_COLUMNS if c.role}
assert len({c.short for c in ROW_COLUMNS} | {"i"}) == len(ROW_COLUMNS) + 1, "short names clash"


@dataclass(slots=True)
class LogEntry:
    """One ``exchange_log`` row (see ``ExchangeLog``)."""

    id: uuid.UUID
    at: datetime
    institution_id: int | None
    app_id: str
    service: str
    dataset: str | None
    client_addr: str
    size: int
    sha256: str | None
    code: int
    total: int = 0
    success: int = 0
    fail: int = 0
    latency_ms: float = 0.0
    dry_run: bool = False
    atomic: bool = False
    channel: str = "production"  # test (测试) | production (正式), of the credential
    chunked: bool = False  # Transfer-Encoding: chunked
    body: bytes | None = None

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Batch:
    """The rows to store for one request (all from one institution and one dataset)."""

    institution_id: int
    dataset: str
    app_id: str
    #: ``{"i": index in the body, <short name>: value, …}`` (:data:`ROW_COLUMNS`), keys unique;
    #: a role column whose value is absent is left out of the dict.
    rows: Sequence[dict[str, Any]]


#: index in the batch → version now stored; indexes missing from it were unchanged.
Stored = dict[int, int]


class Writer(Protocol):
    """Where uploads are written (see the module docstring)."""

    def encode_time(self, value: str) -> str:
        """A validated ``yyyy-MM-dd[ HH:mm:ss]`` Beijing time as this writer's row value of a
        ``time`` column (called by ingest while it builds the rows)."""
        ...

    async def store(self, batch: Batch, *, log: LogEntry, started: float) -> Stored:
        """Store ``batch``, its versions, its change-feed rows and its log row ``log`` atomically;
        ``started`` is the request's ``time.perf_counter()`` (for ``latency_ms``)."""
        ...

    async def log(self, entry: LogEntry, *, started: float) -> None:
        """Write the log row of a request that stored nothing."""
        ...

    async def recode(self, entry: LogEntry) -> None:
        """Set the code of ``entry``'s row, already written, to ``entry.code`` (an upload
        cancelled while its write ran: ``exchange.api._settle_later``)."""
        ...

    async def close(self) -> None: ...


def db_failure(exc: Exception, state: str | None, *, connection_lost: bool) -> ImspError:
    """A database error as 50300 (connection lost, database unavailable) or 50000 — logged by
    type and SQLSTATE only: its parameters hold personal data and must not reach the logs."""
    log.error("exchange write failed: %s (sqlstate %s)", type(exc).__name__, state)
    if connection_lost or state is None or state.startswith("08"):
        return Unavailable()
    return ImspError()


def update_set(excluded: Any) -> dict[str, Any]:
    """What a resubmission replaces: every row column but the key, the version, the request."""
    out: dict[str, Any] = {c.column: excluded[c.column] for c in ROW_COLUMNS if c.short != "k"}
    out.update(
        version=RECORD.c.version + literal_column("1"),
        updated_at=excluded.updated_at,
        exchange_id=excluded.exchange_id,
    )
    return out


#: The ``record`` columns an upsert inserts, in order: the scope, the row columns, the rest
#: (``month``: the key's month from ``record_key``, the partition on PostgreSQL).
INSERT_COLUMNS: Final = (
    "institution_id",
    "dataset",
    *(c.column for c in ROW_COLUMNS),
    "version",
    "created_at",
    "updated_at",
    "exchange_id",
    "month",
)
#: The upsert's conflict target: the business key within its month (``record_key`` fixes the
#: month of a key, so this is the business key; PostgreSQL needs the partition key in it).
CONFLICT_COLUMNS: Final = ("institution_id", "dataset", "key", "month")
#: The ``record_change`` columns a writer inserts (``id`` and the claim columns are not).
CHANGE_COLUMNS: Final = (
    "institution_id",
    "dataset",
    "business_key",
    "record_id",
    "version",
    "stored_at",
)
