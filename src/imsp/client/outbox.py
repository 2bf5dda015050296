"""The durable outbox (出站队列): records wait in a local SQLite file until the platform has them.

States of a queued record::

    pending ──claim──▶ inflight ──receipt ok──▶ delivered
       ▲                  │  └───rejected────▶ parked ──retry (after a fix)──▶ pending
       └──failure/crash───┘

* ``enqueue`` commits (WAL, ``synchronous=FULL``) before it returns: once it has returned, a power
  cut does not lose the records.
* A record is ``inflight`` while a sender waits for the platform's answer. If the sender dies, the
  next sender finds it still ``inflight`` and sends it again. The platform stores by business key
  (idempotent upsert), so a redelivered record replaces itself: at-least-once delivery, exactly-once
  effect. Only one sender works on a file at a time (:class:`~imsp.client.sender.Sender` holds a
  lock file), so every ``inflight`` record it finds is an orphan.
* A record the platform rejects is ``parked`` with its errors — never dropped. A person fixes it
  (``replacements``) and :meth:`Outbox.retry` puts it back in the queue.

Batches keep the input order where it matters: a batch of dataset D never overtakes an older
pending record of a dataset D refers to (``references`` in the Data Standard, transitively), so a
prescription is not sent before the visit it belongs to; and a batch never holds one business key
twice (the later record waits for the next batch, so the last one written wins).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from imsp.client.receipt import FieldError, Receipt, RecordResult
from imsp.client.records import business_key
from imsp.client.records import dataset as resolve
from imsp.standard.model import load_standard

STATES = ("pending", "inflight", "delivered", "parked")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset      TEXT    NOT NULL,
    key          TEXT,
    record       BLOB    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'inflight', 'delivered', 'parked')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    enqueued_at  REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    msg_code     INTEGER,
    msg          TEXT,
    errors       TEXT,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, dataset, id);
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """A batch taken by a sender: ids and records in queue order, all of one dataset."""

    dataset: str
    ids: tuple[int, ...]
    records: list[Any]


@dataclass(frozen=True, slots=True)
class ParkedRecord:
    id: int
    dataset: str
    key: str | None
    record: Any
    msg_code: int | None
    msg: str
    errors: tuple[FieldError, ...]
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset": self.dataset,
            "key": self.key,
            "msgCode": self.msg_code,
            "msg": self.msg,
            "errors": [e.to_json() for e in self.errors],
            "record": self.record,
        }


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """Counts per state, per dataset and in total; ``oldest_pending`` is an epoch time."""

    counts: Mapping[str, Mapping[str, int]]  # dataset -> state -> n
    oldest_pending: float | None
    last_error: str | None

    def total(self, state: str) -> int:
        return sum(c.get(state, 0) for c in self.counts.values())


def _field_errors(raw: str | None) -> tuple[FieldError, ...]:
    return tuple(
        FieldError(e.get("field", ""), e.get("code", ""), e.get("msg", ""))
        for e in orjson.loads(raw or "[]")
    )


@cache
def _upstream(code: str) -> frozenset[str]:
    """Datasets ``code`` refers to, directly or through others (references may form cycles:
    departments name their head doctor, doctors their department)."""
    std = load_standard()
    seen: set[str] = set()
    todo = list(std.datasets[code].references)
    while todo:
        ref = todo.pop()
        if ref not in seen:
            seen.add(ref)
            todo.extend(std.datasets[ref].references)
    return frozenset(seen - {code})


class Outbox:
    """One SQLite outbox file. Safe to share between threads and between processes."""

    def __init__(self, path: str | Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The queue holds patients' data: only the owner may read it (-wal/-shm files inherit
        # the database file's mode).
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._now = now
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # durable at COMMIT, not only at checkpoint
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking SQLite's write lock at once (BEGIN IMMEDIATE)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ producers

    def enqueue(self, dataset: str, records: Iterable[Mapping[str, Any]]) -> list[int]:
        """Queue ``records`` of ``dataset`` (short code or service). All or none are queued, and
        they are on disk when this returns. Returns their ids."""
        ds = resolve(dataset)
        now = self._now()
        rows = [(ds.code, business_key(ds, r), orjson.dumps(r), now, now) for r in records]
        with self._tx() as db:
            ids = [
                db.execute(
                    "INSERT INTO outbox (dataset, key, record, enqueued_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    row,
                ).lastrowid
                for row in rows
            ]
        return [i for i in ids if i is not None]

    # ------------------------------------------------------------------ the sender's side

    def recover(self) -> int:
        """Put orphaned ``inflight`` records back to ``pending`` (their sender died or gave up
        mid-request; the platform may or may not have them — resending is harmless)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE outbox SET state = 'pending', updated_at = ? WHERE state = 'inflight'",
                (self._now(),),
            )
            return cur.rowcount

    def claim(self, limit: int) -> Claim | None:
        """Mark the next batch ``inflight`` and return it (``None`` when nothing is pending)."""
        with self._tx() as db:
            head = db.execute(
                "SELECT dataset FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1"
            ).fetchone()
            if head is None:
                return None
            code: str = head[0]
            barrier = None
            upstream = sorted(_upstream(code))
            if upstream:
                marks = ",".join("?" * len(upstream))
                barrier = db.execute(
                    f"SELECT MIN(id) FROM outbox WHERE state = 'pending' AND dataset IN ({marks})",  # noqa: S608
                    upstream,
                ).fetchone()[0]
            rows = db.execute(
                "SELECT id, key, record FROM outbox WHERE state = 'pending' AND dataset = ?"
                " AND id < ? ORDER BY id LIMIT ?",
                (code, barrier if barrier is not None else 1 << 62, limit),
            ).fetchall()
            ids: list[int] = []
            records: list[Any] = []
            keys: set[str] = set()
            for row_id, key, blob in rows:
                if key is not None and key in keys:
                    break
                if key is not None:
                    keys.add(key)
                ids.append(row_id)
                records.append(orjson.loads(blob))
            db.executemany(
                "UPDATE outbox SET state = 'inflight', attempts = attempts + 1, updated_at = ?"
                " WHERE id = ?",
                [(self._now(), i) for i in ids],
            )
        return Claim(code, tuple(ids), records)

    def settle(self, claim: Claim, receipt: Receipt) -> tuple[int, int]:
        """Record the platform's receipt for ``claim``: accepted records become ``delivered``,
        rejected ones ``parked`` with their errors. Returns (delivered, parked)."""
        by_index = {r.index: r for r in receipt.results}
        now = self._now()
        delivered: list[tuple[Any, ...]] = []
        parked: list[tuple[Any, ...]] = []
        for i, row_id in enumerate(claim.ids):
            r = by_index.get(i)
            if r is None or r.ok:
                code = r.msg_code if r else 200
                delivered.append((code, r.msg if r else "", now, row_id))
            else:
                errors = orjson.dumps([e.to_json() for e in r.errors]).decode()
                parked.append((r.msg_code, r.msg, errors, now, row_id))
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state = 'delivered', msg_code = ?, msg = ?, errors = NULL,"
                " last_error = NULL, updated_at = ? WHERE id = ? AND state = 'inflight'",
                delivered,
            )
            db.executemany(
                "UPDATE outbox SET state = 'parked', msg_code = ?, msg = ?, errors = ?,"
                " updated_at = ? WHERE id = ? AND state = 'inflight'",
                parked,
            )
        return len(delivered), len(parked)

    def release(self, ids: Sequence[int], error: str) -> None:
        """Back to ``pending`` after a failure that is not the records' fault (outage, 5xx…)."""
        now = self._now()
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state = 'pending', last_error = ?, updated_at = ?"
                " WHERE id = ? AND state = 'inflight'",
                [(error, now, i) for i in ids],
            )

    def park(self, ids: Sequence[int], *, msg_code: int | None, msg: str) -> None:
        """Park records refused by the platform as a request (not per record)."""
        now = self._now()
        errors = orjson.dumps([{"field": "", "code": str(msg_code or ""), "msg": msg}]).decode()
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state = 'parked', msg_code = ?, msg = ?, errors = ?,"
                " updated_at = ? WHERE id = ? AND state = 'inflight'",
                [(msg_code, msg, errors, now, i) for i in ids],
            )

    # ------------------------------------------------------------------ people

    def status(self) -> OutboxStatus:
        with self._lock:
            rows = self._db.execute(
                "SELECT dataset, state, COUNT(*) FROM outbox GROUP BY dataset, state"
            ).fetchall()
            oldest = self._db.execute(
                "SELECT MIN(enqueued_at) FROM outbox WHERE state IN ('pending', 'inflight')"
            ).fetchone()[0]
            last = self._db.execute(
                "SELECT last_error FROM outbox WHERE state IN ('pending', 'inflight')"
                " AND last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 1"
            ).fetchone()
        counts: dict[str, dict[str, int]] = {}
        for ds, state, n in rows:
            counts.setdefault(ds, {})[state] = n
        return OutboxStatus(counts, oldest, last[0] if last else None)

    def outcome(self, ids: Sequence[int]) -> dict[int, tuple[str, RecordResult | None]]:
        """Each id's state and, once the platform answered, its result — ``index`` being the
        id's position in ``ids`` (so results line up with the records that were enqueued)."""
        position = {row_id: i for i, row_id in enumerate(ids)}
        found: dict[int, tuple[str, RecordResult | None]] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                rows = self._db.execute(
                    "SELECT id, key, state, msg_code, msg, errors FROM outbox"  # noqa: S608
                    f" WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for row_id, key, state, code, msg, errors in rows:
                    result = None
                    if code is not None:
                        result = RecordResult(
                            index=position[row_id],
                            key=key,
                            msg_code=code,
                            msg=msg or "",
                            errors=_field_errors(errors),
                        )
                    found[row_id] = (state, result)
        return {i: found[i] for i in ids if i in found}

    def parked(self, *, dataset: str | None = None) -> list[ParkedRecord]:
        """Parked records with their errors, oldest first."""
        sql = (
            "SELECT id, dataset, key, record, msg_code, msg, errors, attempts FROM outbox"
            " WHERE state = 'parked'"
        )
        args: tuple[Any, ...] = ()
        if dataset is not None:
            sql += " AND dataset = ?"
            args = (resolve(dataset).code,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            ParkedRecord(
                id=row[0],
                dataset=row[1],
                key=row[2],
                record=orjson.loads(row[3]),
                msg_code=row[4],
                msg=row[5] or "",
                errors=_field_errors(row[6]),
                attempts=row[7],
            )
            for row in rows
        ]

    def retry(
        self,
        ids: Iterable[int] | None = None,
        *,
        dataset: str | None = None,
        replacements: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> int:
        """Queue parked records again — all of them, those of ``dataset``, or ``ids`` — first
        replacing the record of each id in ``replacements`` with its fixed version."""
        replacements = replacements or {}
        where = "state = 'parked'"
        args: list[Any] = []
        wanted = None if ids is None else set(ids)
        if replacements:
            wanted = (wanted or set()) | set(replacements)
        if wanted is not None:
            where += f" AND id IN ({','.join('?' * len(wanted))})" if wanted else " AND 0"
            args.extend(sorted(wanted))
        if dataset is not None:
            where += " AND dataset = ?"
            args.append(resolve(dataset).code)
        now = self._now()
        with self._tx() as db:
            for row_id, fixed in replacements.items():
                ds_code = db.execute(
                    "SELECT dataset FROM outbox WHERE id = ? AND state = 'parked'", (row_id,)
                ).fetchone()
                if ds_code is None:
                    continue
                db.execute(
                    "UPDATE outbox SET record = ?, key = ? WHERE id = ?",
                    (orjson.dumps(fixed), business_key(resolve(ds_code[0]), fixed), row_id),
                )
            cur = db.execute(
                "UPDATE outbox SET state = 'pending', errors = NULL, msg_code = NULL, msg = NULL,"  # noqa: S608
                f" last_error = NULL, updated_at = ? WHERE {where}",
                (now, *args),
            )
            return cur.rowcount

    def purge_delivered(self, *, older_than: float) -> int:
        """Delete delivered records whose delivery is older than ``older_than`` seconds."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM outbox WHERE state = 'delivered' AND updated_at < ?",
                (self._now() - older_than,),
            )
            return cur.rowcount
