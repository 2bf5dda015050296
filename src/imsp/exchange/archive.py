"""The request archive (报文归档): exchange ids, body digests and compressed bodies.

Every upload request gets an *exchange id* — a UUIDv7 (RFC 9562: 48-bit Unix milliseconds, then
random bits) made here, so it is known before anything is written, sorts by time and needs no
database round trip. Its milliseconds are the request's receipt time, the ``at`` of its
``exchange_log`` row (and of the ``record_version`` rows it stored), which is the key of those
tables' monthly partitions on PostgreSQL: a lookup by id searches only the partition(s) of
:func:`id_window` instead of every month ever kept. The body of an accepted upload is kept in ``exchange_log.body`` together with
its SHA-256, so ``imsp exchange show`` can return the exact bytes that carried any stored record
and prove they are unchanged.

Compression at rest (:func:`compress`, both databases): zstd with the record dictionary of
``exchange.codec`` — a 500-record body ~534 B a record (lz4 in the PostgreSQL column: ~914),
a one-record body ~814 B instead of ~1,500, at ~3–5 µs a record on the ingest path
(docs/performance.md, "存储与分区" and "CPU per record, stage by stage"). The PostgreSQL
column no longer compresses (``STORAGE EXTERNAL``, migration 0050). :func:`restore` reads every form ever stored: a zstd frame starts
with ``28 b5 2f fd``, a zlib stream (SQLite before 0050) with ``0x78`` (``x``), and anything else
is a body kept as sent (PostgreSQL before 0050) — no accepted JSON body starts with either byte.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Final

from imsp.exchange import codec

#: The first bytes of a zstd frame.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


_lock = threading.Lock()
_last = [0, 0]  # the last (milliseconds, counter) handed out by this process

#: A clock that moves back less than this keeps the ids increasing (they stay on the last
#: millisecond, counting); one that moves back further (a corrected clock, a test's frozen one)
#: restarts the ids from its time, so an id's time never strays further from its row's ``at``.
STEP_BACK_MS: Final = 1000
#: How far an id's time may be from its row's ``at`` at most: the step back above, a counter
#: overflowing into the next milliseconds (4,096 ids in one), and for ids made before the id
#: carried ``at`` (the same clock read microseconds apart) — with a wide margin.
ID_SKEW: Final = timedelta(minutes=5)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def new_exchange_id(at: datetime | None = None) -> uuid.UUID:
    """A UUIDv7 whose time is ``at`` (the request's receipt time; the server passes the time it
    logs, default now): time-ordered, unique without coordination between server processes.

    Within a process ids are strictly increasing while the clock does (or steps back less than
    :data:`STEP_BACK_MS`): ``rand_a`` (12 bits) is a counter within the millisecond (RFC 9562
    §6.2, method 1), so ``ORDER BY id`` lists a process's requests in order.
    """
    rand = int.from_bytes(os.urandom(8), "big")
    wanted = (time.time_ns() // 1_000_000) if at is None else (at - _EPOCH) // _MS  # exact
    with _lock:
        ms = wanted
        if _last[0] - STEP_BACK_MS < ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter > 0xFFF:
                ms, counter = ms + 1, 0
        else:
            counter = rand >> 56  # a random start below 256 leaves room to count up
        _last[0], _last[1] = ms, counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


def id_time(exchange_id: uuid.UUID) -> datetime | None:
    """The time an exchange id carries (``None`` for an id that is not a UUIDv7)."""
    if exchange_id.version != 7:
        return None
    return datetime.fromtimestamp((exchange_id.int >> 80) / 1000, UTC)


def id_window(exchange_id: uuid.UUID) -> tuple[datetime, datetime] | None:
    """Where the ``at`` of the request ``exchange_id`` lies (``[low, high)``): the bounds a
    lookup by id adds so PostgreSQL prunes the monthly partitions of ``exchange_log`` and
    ``record_version`` to the one (near a month's end, two) that can hold it. ``None`` for an id
    that is not a UUIDv7: look everywhere."""
    t = id_time(exchange_id)
    return None if t is None else (t - ID_SKEW, t + ID_SKEW)


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


#: zstd level of a large archived body (≥ :data:`LARGE` bytes): level 2 compresses a 500-record
#: prescription body ~40 % faster than the records' level 3 (docs/performance.md, "CPU per
#: record, stage by stage") for ~2.5 % more bytes (534 instead of 521 B a record; level 1: 566
#: B, and little faster still). The archive is written for every upload and read almost never.
LARGE_LEVEL: Final = 2
#: Smaller bodies keep level 3: a one-record body would grow ~7 % at level 2 (865 instead of
#: 810 B) to save ~2 µs of a request that costs hundreds.
LARGE: Final = 64 * 1024


def compress(body: bytes) -> bytes:
    """The body as archived: one zstd frame with the record dictionary (``codec.compress``).
    The archive's bytes are never compared, so its levels can change at any time:
    :func:`restore` reads every level."""
    return codec.compress(body, LARGE_LEVEL if len(body) >= LARGE else codec.LEVEL)


def restore(stored: bytes) -> bytes:
    """The exact body from what the archive holds (zstd, zlib, or as sent)."""
    if stored[:4] == _ZSTD_MAGIC:
        return codec.decompress(stored)
    return zlib.decompress(stored) if stored[:1] == b"x" else stored
