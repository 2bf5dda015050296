"""The request archive (报文归档): exchange ids, body digests and compressed bodies.

Every upload request gets an *exchange id* — a UUIDv7 (RFC 9562: 48-bit Unix milliseconds, then
random bits) made here, so it is known before anything is written, sorts by time and needs no
database round trip. The body of an accepted upload is kept in ``exchange_log.body`` together with
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
from typing import Final

from imsp.exchange import codec

#: The first bytes of a zstd frame.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


_lock = threading.Lock()
_last = [0, 0]  # the last (milliseconds, counter) handed out by this process


def new_exchange_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, unique without coordination between server processes.

    Within a process ids are strictly increasing: ``rand_a`` (12 bits) is a counter within the
    millisecond (RFC 9562 §6.2, method 1), so ``ORDER BY id`` lists a process's requests in order.
    """
    rand = int.from_bytes(os.urandom(8), "big")
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter > 0xFFF:
                ms, counter = ms + 1, 0
        else:
            counter = rand >> 56  # a random start below 256 leaves room to count up
        _last[0], _last[1] = ms, counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


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
