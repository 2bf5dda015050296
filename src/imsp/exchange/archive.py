"""The request archive (报文归档): exchange ids, body digests and compressed bodies.

Every upload request gets an *exchange id* — a UUIDv7 (RFC 9562: 48-bit Unix milliseconds, then
random bits) made here, so it is known before anything is written, sorts by time and needs no
database round trip. The body of an accepted upload is kept in ``exchange_log.body`` together with
its SHA-256, so ``imsp exchange show`` can return the exact bytes that carried any stored record
and prove they are unchanged.

Compression at rest (:func:`compress`, both databases): zstd with the record dictionary of
``exchange.codec`` — a 500-record body ~523 B a record (lz4 in the PostgreSQL column: ~914),
a one-record body ~814 B instead of ~1,500, at ~4–8 µs a record on the ingest path
(docs/performance.md, "存储与分区"). The PostgreSQL column no longer compresses (``STORAGE
EXTERNAL``, migration 0050). :func:`restore` reads every form ever stored: a zstd frame starts
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


def compress(body: bytes) -> bytes:
    """The body as archived: one zstd frame with the record dictionary (``codec.compress``)."""
    return codec.compress(body)


def restore(stored: bytes) -> bytes:
    """The exact body from what the archive holds (zstd, zlib, or as sent)."""
    if stored[:4] == _ZSTD_MAGIC:
        return codec.decompress(stored)
    return zlib.decompress(stored) if stored[:1] == b"x" else stored
