"""Monthly partitions of the exchange's growing tables on PostgreSQL: created ahead, listed,
archived by detaching — never by ``DELETE``.

Three tables grow with every upload; on PostgreSQL each is range-partitioned by month (native
declarative partitioning; SQLite stays one table each, and the writers hide the difference):

=================  ==========================================================================
``record``         ``month``: the Beijing month in which the business key was FIRST received,
                   fixed for the key by ``record_key``. The unique constraint of a partitioned
                   table must contain the partition key, so the upsert's conflict target is
                   (institution, dataset, key, month); because the month never changes for a
                   key, a resend or a correction in a later month still lands on its row.
``record_version`` ``at``: its own receipt time.
``exchange_log``   ``at``: its own receipt time (the UUIDv7 exchange id carries it too).
=================  ==========================================================================

Partitions are named ``<table>_mYYYYMM`` and cover a Beijing calendar month. ``<table>_default``
catches rows of a month that has no partition yet (a clock far ahead, a worker that did not
run); when that month's partition is created, its rows are moved out of the default partition
into it. :func:`ensure` creates the current month and :data:`AHEAD` months ahead; the supervision
worker calls it once an hour and ``imsp db upgrade`` at migrate time.

Archival of a month (:func:`archive`, ``imsp db partitions archive YYYY-MM``), per table: a row
in ``archived_partition`` first (so uploads stop writing the month's keys), ``DETACH PARTITION``
(``CONCURRENTLY`` when the table has no default partition — PostgreSQL forbids it otherwise),
``pg_dump`` of the detached table (custom format, compressed) into the archive directory, the
row completed (rows, where, when, SHA-256 of the dump), then ``DROP TABLE`` of the detached
table (or keep it with ``keep=True``).

``record_key`` keeps the archived keys, so a trace of an archived record says where its month
went. A record of the month corrected after the month ended has later versions stored in later
months' ``record_version``: they stay online, and ``archived_record`` keeps the record's
identity (dataset, business key, last version), so a trace still shows them and says which
earlier versions are in which archive file (``exchange.queries.record_history``). A key of an archived month sent again is a new record in the current month (version 1):
its ``record_key`` row moves to that month and remembers the archived one
(``archived_month``), so the trace of the record says that its earlier versions were archived.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Final

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from imsp.exchange.archive import restore
from imsp.standard.model import load_standard
from imsp.standard.validate import validator_for

#: Partitioned table → its partition key column.
PARENTS: Final[dict[str, str]] = {"record": "month", "record_version": "at", "exchange_log": "at"}
#: Months created ahead of the current one.
AHEAD: Final = 2
#: Longest wait for the lock on a parent table when creating or detaching a partition.
LOCK_TIMEOUT_MS: Final = 3000
_BEIJING: Final = timezone(timedelta(hours=8))
_NAME: Final = re.compile(r"^(record|record_version|exchange_log)_(m\d{6}|default)$")


def is_partition(name: str) -> bool:
    """Whether a table name is one of our partitions (or a kept detached one): Alembic's schema
    comparison skips them, the models describe only the partitioned parents."""
    return _NAME.match(name) is not None


def month_of(value: datetime) -> date:
    """The first day of the Beijing calendar month of an instant."""
    b = value.astimezone(_BEIJING)
    return date(b.year, b.month, 1)


def add_months(month: date, n: int) -> date:
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def parse_month(value: str) -> date:
    """``YYYY-MM`` → the month's first day (``ValueError`` otherwise)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", value.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(value)
    return date(int(m.group(1)), int(m.group(2)), 1)


def partition_name(parent: str, month: date) -> str:
    return f"{parent}_m{month.year:04d}{month.month:02d}"


def _bounds(parent: str, month: date) -> tuple[str, str]:
    """SQL literals of the month's range on ``parent``'s key (Beijing midnight for times)."""
    nxt = add_months(month, 1)
    if PARENTS[parent] == "month":
        return f"'{month.isoformat()}'", f"'{nxt.isoformat()}'"
    return f"'{month.isoformat()} 00:00:00+08'", f"'{nxt.isoformat()} 00:00:00+08'"


@dataclass(frozen=True, slots=True)
class Partition:
    parent: str
    name: str
    month: date | None  # None: the default partition
    rows: int  # PostgreSQL's estimate (reltuples), exact for the default partition
    bytes: int  # pg_total_relation_size


def is_partitioned(conn: Connection, parent: str = "record") -> bool:
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": parent}
    ).scalar()
    return kind == "p"


def list_partitions(conn: Connection) -> list[Partition]:
    """Every partition of the three tables, by table then month (default last)."""
    rows = conn.execute(
        text(
            "SELECT p.relname, c.relname, greatest(c.reltuples, 0)::bigint,"
            " pg_total_relation_size(c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE p.relname IN ('record', 'record_version', 'exchange_log')"
            " AND p.relnamespace = 'public'::regnamespace"
        )
    ).all()
    out: list[Partition] = []
    for parent, name, estimate, size in rows:
        suffix = name[len(parent) + 1 :]
        month = None if suffix == "default" else date(int(suffix[1:5]), int(suffix[5:7]), 1)
        count = int(estimate)
        if month is None:
            count = int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar() or 0)
        out.append(Partition(parent, name, month, count, int(size)))
    order = list(PARENTS)
    out.sort(key=lambda p: (order.index(p.parent), p.month is None, p.month or date.min))
    return out


def create_month(conn: Connection, parent: str, month: date) -> bool:
    """Create ``parent``'s partition for ``month`` (``False`` if it exists). Rows of that month
    already caught by the default partition are moved into it, in the same transaction."""
    name = partition_name(parent, month)
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": name}).scalar() is not None:
        return False
    lo, hi = _bounds(parent, month)
    key = PARENTS[parent]
    default = f"{parent}_default"
    caught = False
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": default}).scalar() is not None:
        conn.execute(text(f'LOCK TABLE "{default}" IN ACCESS EXCLUSIVE MODE'))
        caught = bool(
            conn.execute(
                text(
                    f'SELECT EXISTS (SELECT 1 FROM "{default}" WHERE {key} >= {lo} AND {key} < {hi})'
                )
            ).scalar()
        )
    if not caught:
        conn.execute(
            text(f'CREATE TABLE "{name}" PARTITION OF "{parent}" FOR VALUES FROM ({lo}) TO ({hi})')
        )
        return True
    conn.execute(
        text(
            f'CREATE TABLE "{name}" (LIKE "{parent}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
            " INCLUDING STORAGE INCLUDING COMPRESSION)"
        )
    )
    conn.execute(
        text(
            f'WITH moved AS (DELETE FROM "{default}" WHERE {key} >= {lo} AND {key} < {hi}'
            f' RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'
        )
    )
    conn.execute(
        text(f'ALTER TABLE "{parent}" ATTACH PARTITION "{name}" FOR VALUES FROM ({lo}) TO ({hi})')
    )
    return True


def create_default(conn: Connection, parent: str) -> bool:
    name = f"{parent}_default"
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": name}).scalar() is not None:
        return False
    conn.execute(text(f'CREATE TABLE "{name}" PARTITION OF "{parent}" DEFAULT'))
    return True


def ensure(
    conn: Connection,
    *,
    now: datetime,
    ahead: int = AHEAD,
    months: Iterable[date] = (),
    wait_briefly: bool = True,
) -> list[str]:
    """Create the partitions of the current month, ``ahead`` months after it and ``months``
    (each table), and the default partitions; archived months are never re-created. Returns the
    names created. No-op on a database whose tables are not partitioned (SQLite, or before the
    migration)."""
    if conn.dialect.name != "postgresql" or not is_partitioned(conn):
        return []
    # Creating a partition locks its parent exclusively: never queue uploads behind it while a
    # long read holds the table — give up after a moment and try again at the next round
    # (the months are created two ahead, so a missed round costs nothing).
    if wait_briefly:  # (not inside a migration, whose own statements may wait)
        conn.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
    archived = {
        (p, m) for p, m in conn.execute(text("SELECT parent, month FROM archived_partition")).all()
    }
    current = month_of(now)
    wanted = sorted({add_months(current, n) for n in range(ahead + 1)} | set(months))
    created: list[str] = []
    for parent in PARENTS:
        for month in wanted:
            if (parent, month) not in archived and create_month(conn, parent, month):
                created.append(partition_name(parent, month))
        if create_default(conn, parent):
            created.append(f"{parent}_default")
    return created


# --------------------------------------------------------------------------- archival


@dataclass(frozen=True, slots=True)
class Archived:
    parent: str
    partition: str
    month: date
    rows: int
    location: str
    sha256: str | None
    kept: bool


class ArchiveError(Exception):
    """An archive step failed; the message is Chinese, for the operator."""


def _dump(url: str, table: str, target: Path) -> str:
    """``pg_dump`` one table (custom format: compressed, restorable with ``pg_restore``); the
    file's SHA-256. The password travels in the environment, never on the command line."""
    parsed = make_url(url).set(drivername="postgresql")
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    dsn = parsed.set(password=None).render_as_string(hide_password=False)
    done = subprocess.run(
        ["pg_dump", "--dbname", dsn, "--format=custom", "--compress=9", "--table", f"public.{table}",
         "--file", str(target)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ArchiveError(f"pg_dump 失败：{done.stderr.strip()[:300]}")
    digest = hashlib.sha256()
    with target.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive(
    conn: Connection, *, url: str, month: date, directory: Path, keep: bool, now: datetime
) -> list[Archived]:
    """Archive ``month`` of the three tables (see the module docstring). ``conn`` must be in
    autocommit mode (``DETACH … CONCURRENTLY`` runs outside a transaction); ``url`` is the
    database's URL for ``pg_dump``. A month that has not ended cannot be archived.

    Per table, in this order — each step committed before the next:

    1. the month is entered in ``archived_partition`` (its dump not yet made). From then on the
       upload writers treat the month's keys as archived: a resent record starts again in the
       current month. Recording it *first* matters: a key whose month is detached but not yet
       recorded would be written with its old month — into the default partition, a second
       row for the key that no archive holds;
    2. the partition is detached (which waits for the uploads in flight — those whose snapshot
       predates step 1 still write into the month — so every row of the month is in it);
    3. ``pg_dump`` of the detached table; its SHA-256 and the row count complete the entry
       (before it, for ``record``: the identities of its records with later versions online,
       :func:`_keep_identities`);
    4. ``DROP TABLE`` (or keep it, ``keep=True``).

    If a dump fails, the month stays archived — its table detached and kept in the database —
    and :class:`ArchiveError` says so; running the archive of the month again makes the dump and
    finishes. (Attaching it again would bring back rows that keys resent meanwhile have
    replaced in the current month.)"""
    if month >= month_of(now):
        raise ArchiveError(f"{month:%Y-%m} 尚未结束，不能归档（只能归档已结束的月份）")
    directory.mkdir(parents=True, exist_ok=True)
    conn.execute(text(f"SET lock_timeout = {LOCK_TIMEOUT_MS}"))  # see ensure()
    out: list[Archived] = []
    database = make_url(url).database or "imsp"
    for parent in PARENTS:
        name = partition_name(parent, month)
        target = directory / f"{database}.{name}.dump"
        entry = conn.execute(
            text("SELECT sha256 FROM archived_partition WHERE parent = :p AND month = :m"),
            {"p": parent, "m": month},
        ).first()
        if entry is not None and entry.sha256 is not None:
            continue  # archived before
        if _attached(conn, parent, name):
            _mark_and_detach(conn, parent, name, month, now, marked=entry is not None)
        elif (
            entry is None
            or conn.execute(text("SELECT to_regclass(:t)"), {"t": name}).scalar() is None
        ):
            continue  # no such month here
        # the detached table, as it will stay: its rows, and for records their id range
        rows = int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar() or 0)
        min_id = max_id = None
        if parent == "record":
            min_id, max_id = conn.execute(text(f'SELECT min(id), max(id) FROM "{name}"')).one()
            _keep_identities(conn, name, month)
        conn.execute(
            text(
                "UPDATE archived_partition SET rows = :rows, min_id = :lo, max_id = :hi"
                " WHERE parent = :p AND month = :m"
            ),
            {"rows": rows, "lo": min_id, "hi": max_id, "p": parent, "m": month},
        )
        try:
            digest = _dump(url, name, target)
        except ArchiveError as exc:
            raise ArchiveError(
                f"{exc}。{month:%Y-%m} 已记为归档，表 {name} 已分离并保留在库内；"
                f"排除故障后再次执行 imsp db partitions archive {month:%Y-%m} 完成导出"
            ) from None
        location = str(target.resolve())
        if keep:
            location += f"（库内保留表 {name}）"
        else:
            conn.execute(text(f'DROP TABLE "{name}"'))
        conn.execute(
            text(
                "UPDATE archived_partition SET location = :location, sha256 = :sha256,"
                " kept = :kept, archived_at = :at WHERE parent = :p AND month = :m"
            ),
            {"location": location, "sha256": digest, "kept": keep,
             "at": now.astimezone(UTC), "p": parent, "m": month},
        )  # fmt: skip
        out.append(Archived(parent, name, month, rows, location, digest, keep))
    return out


def _keep_identities(conn: Connection, name: str, month: date) -> None:
    """Into ``archived_record``: each record of the detached ``name`` whose last version was
    stored after ``month`` — its later versions stay online in ``record_version`` (their months
    are not archived), and without this they would lose their dataset and business key with the
    record row. ``updated_at`` is the receipt time of the last version (its ``record_version.at``),
    so no version row need be read. Idempotent: a rerun after a failed dump adds nothing twice."""
    _, end = _bounds("record_version", month)
    conn.execute(
        text(
            "INSERT INTO archived_record (record_id, institution_id, dataset, key, month, version)"
            f' SELECT id, institution_id, dataset, key, month, version FROM "{name}"'
            f" WHERE updated_at >= {end} ON CONFLICT (record_id) DO NOTHING"
        )
    )


def recover_identities(conn: Connection) -> int:
    """For months archived before ``archived_record`` existed (migration 0055): the identity of
    each archived record whose later versions are online, recovered from the request that
    carried its last online version — the institution and dataset of its log row, the business
    key as the validator derives it from the archived body. A record whose request is not online
    any more (or kept no body) cannot be recovered and stays unshown. Returns the rows added."""
    std = load_standard()
    added = 0
    ranges = conn.execute(
        text(
            "SELECT month, min_id, max_id FROM archived_partition"
            " WHERE parent = 'record' AND min_id IS NOT NULL ORDER BY month"
        )
    ).all()
    for month, lo, hi in ranges:
        orphans = conn.execute(
            text(
                "SELECT DISTINCT ON (v.record_id) v.record_id, v.version, v.exchange_id,"
                " v.position, v.at FROM record_version v"
                " WHERE v.record_id BETWEEN :lo AND :hi"
                " AND NOT EXISTS (SELECT 1 FROM record r WHERE r.id = v.record_id)"
                " AND NOT EXISTS (SELECT 1 FROM archived_record a WHERE a.record_id = v.record_id)"
                " ORDER BY v.record_id, v.version DESC"
            ),
            {"lo": lo, "hi": hi},
        ).all()
        for record_id, version, exchange_id, position, at in orphans:
            log = conn.execute(
                text(
                    "SELECT institution_id, dataset, body FROM exchange_log"
                    " WHERE id = :x AND at = :at"
                ),
                {"x": exchange_id, "at": at},
            ).first()
            if log is None or log.body is None or log.dataset not in std.datasets:
                continue
            doc = orjson.loads(restore(bytes(log.body)).removeprefix(b"\xef\xbb\xbf"))
            docs = [doc] if isinstance(doc, dict) else doc
            if not isinstance(docs, list) or not 0 <= position < len(docs):
                continue
            key = validator_for(std.datasets[log.dataset]).check(docs[position], position).key
            if key is None:
                continue
            conn.execute(
                text(
                    "INSERT INTO archived_record"
                    " (record_id, institution_id, dataset, key, month, version)"
                    " VALUES (:r, :i, :d, :k, :m, :v) ON CONFLICT (record_id) DO NOTHING"
                ),
                {"r": record_id, "i": log.institution_id, "d": log.dataset, "k": key,
                 "m": month, "v": version},
            )  # fmt: skip
            added += 1
    return added


def _attached(conn: Connection, parent: str, name: str) -> bool:
    found = conn.execute(
        text(
            "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(:t)"
            " AND inhparent = to_regclass(:p)"
        ),
        {"t": name, "p": parent},
    ).scalar()
    return found is not None


def _mark_and_detach(
    conn: Connection, parent: str, name: str, month: date, now: datetime, *, marked: bool
) -> None:
    """Steps 1 and 2 of :func:`archive`. With a default partition (as :func:`ensure` makes),
    ``DETACH`` may run in a transaction: the entry and the detach then commit together — no
    moment where one is seen without the other. Without one, ``DETACH … CONCURRENTLY`` runs on
    its own after the entry is committed (it waits for the uploads that could still write the
    month); if it fails, the entry stays and running the archive again detaches."""
    insert = (
        "INSERT INTO archived_partition (parent, month, partition, rows, location, kept,"
        " archived_at) VALUES (%(parent)s, %(month)s, %(partition)s, 0, %(location)s, true,"
        " %(at)s)"
    )
    params = {
        "parent": parent,
        "month": month,
        "partition": name,
        "location": f"库内表 {name}（导出未完成）",
        "at": now.astimezone(UTC),
    }
    has_default = (
        conn.execute(text("SELECT to_regclass(:t)"), {"t": f"{parent}_default"}).scalar()
        is not None
    )
    raw = conn.connection.driver_connection  # psycopg, in autocommit mode
    assert raw is not None
    if has_default:
        with raw.transaction():
            if not marked:
                raw.execute(insert, params)
            raw.execute(f'ALTER TABLE "{parent}" DETACH PARTITION "{name}"')
        return
    if not marked:
        raw.execute(insert, params)
    raw.execute(f'ALTER TABLE "{parent}" DETACH PARTITION "{name}" CONCURRENTLY')


async def ensure_ahead(engine: AsyncEngine, *, now: datetime) -> list[str]:
    """:func:`ensure` in its own transaction (the worker's hourly call)."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.begin() as conn:
        return await conn.run_sync(lambda c: ensure(c, now=now))
