"""The stored form of a record (``record.data``): canonical JSON compressed with zstd and a
dictionary of the Data Standard's records.

Why: PostgreSQL compresses each TOASTed value alone, and a ~2.3 KB record shrinks only ~25 % that
way because each key occurs once per record. A zstd dictionary trained on the standard's records
(keys, code values, formats) takes a 2.3 KB prescription to ~0.7 KB, which stays inline in the
heap row (no TOAST) — so the stored bytes per record fall below the JSON received
(docs/performance.md, "存储与分区").

* **Canonical**: :func:`canonical` is orjson with sorted keys (nested objects too), so the same
  record sent with its nodes in another order encodes to the same bytes; the writers' "unchanged"
  test (``WHERE record.data IS DISTINCT FROM excluded.data``) compares these bytes, as JSONB
  equality ignored key order before. zstd is deterministic for the same input, dictionary, level
  and library version (``zstandard`` is pinned in ``requirements.lock``); a new dictionary or a
  zstd upgrade that changes the output only makes the first resend of an older record a new
  version with the same content — never a lost one.
* **Versioned dictionaries**: each frame carries its dictionary id (:func:`dictionary_id`);
  :func:`decode` picks the dictionary from it, so every dictionary ever released stays in
  ``dictionaries/`` (``record-vN.zdict``, made by ``scripts/train_record_dictionary.py`` from
  deterministic inputs) and :data:`CURRENT` names the one new records are written with. An
  unknown id is :class:`UnknownDictionary`, never a wrong document.
* ``RecordDoc`` is the column type: ``bytea`` on PostgreSQL, BLOB on SQLite; ORM and Core reads
  return the dict, binds take a dict (or bytes already encoded by :func:`encode`).

What is given up: ``record.data`` cannot be read with SQL JSON operators any more (psql shows
bytes); ``imsp records show`` prints a stored record.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any, Final

import orjson
import zstandard
from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

__all__ = [
    "CURRENT",
    "DICTIONARIES",
    "LEVEL",
    "RecordDoc",
    "UnknownDictionary",
    "canonical",
    "compress",
    "decode",
    "decompress",
    "dictionary_id",
    "encode",
]

#: Where the released dictionaries live (package data).
DICTIONARIES: Final = Path(__file__).parent / "dictionaries"
#: The dictionary new records are encoded with.
CURRENT: Final = 1
#: zstd level: 1–3 measured alike in size (~700 B for a 2.3 KB prescription); 3 is zstd's default.
LEVEL: Final = 3
#: Dictionary ids: ``0x494D5300`` ("IMS\\0") + version — outside zstd's reserved ranges
#: (below 32,768 and from 2**31).
_ID_BASE: Final = 0x494D5300


class UnknownDictionary(ValueError):
    """A stored record names a dictionary this installation does not have."""


def dictionary_id(version: int) -> int:
    """The zstd dictionary id of dictionary ``version``."""
    return _ID_BASE + version


def canonical(doc: dict[str, Any]) -> bytes:
    """The record as canonical JSON: orjson, keys sorted at every level."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@cache
def _dictionary(version: int, level: int = LEVEL) -> zstandard.ZstdCompressionDict:
    """Dictionary ``version``, prepared for compressing at ``level`` (zstd's digested form of a
    dictionary depends on the level)."""
    path = DICTIONARIES / f"record-v{version}.zdict"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnknownDictionary(
            f"记录编码字典 v{version}（id {dictionary_id(version)}）不存在：{path}"
        ) from None
    d = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)
    if d.dict_id() != dictionary_id(version):
        raise UnknownDictionary(f"记录编码字典 {path} 的 id {d.dict_id()} 与版本 v{version} 不符")
    d.precompute_compress(level=level)
    return d


class _Local(threading.local):
    """Per-thread (de)compressors: zstandard's contexts must not be shared between threads."""

    def __init__(self) -> None:
        self.compressors: dict[int, zstandard.ZstdCompressor] = {}
        self.decompressors: dict[int, zstandard.ZstdDecompressor] = {}


_local = _Local()


def compress(data: bytes, level: int = LEVEL) -> bytes:
    """``data`` as one zstd frame with the :data:`CURRENT` dictionary (the frame holds the
    dictionary id and the content size, no checksum). Also the request archive's compression
    (``exchange.archive``, at a level of its own): an upload body is made of the same records.
    Any level decodes with :func:`decompress`; only records must keep :data:`LEVEL` (their
    bytes are compared, see the module docstring)."""
    cctx = _local.compressors.get(level)
    if cctx is None:
        cctx = _local.compressors[level] = zstandard.ZstdCompressor(
            dict_data=_dictionary(CURRENT, level), write_checksum=False, write_content_size=True
        )
    return cctx.compress(data)


def decompress(blob: bytes) -> bytes:
    """The bytes :func:`compress` made, with whichever released dictionary its frame names."""
    try:
        dict_id = zstandard.get_frame_parameters(blob).dict_id
    except zstandard.ZstdError as exc:
        raise ValueError(f"记录编码无法解析：{exc}") from None
    dctx = _local.decompressors.get(dict_id)
    if dctx is None:
        version = dict_id - _ID_BASE
        if dict_id == 0 or version <= 0:
            raise UnknownDictionary(f"记录编码字典 id {dict_id} 未知")
        dctx = zstandard.ZstdDecompressor(dict_data=_dictionary(version))
        _local.decompressors[dict_id] = dctx
    try:
        return dctx.decompress(blob)
    except zstandard.ZstdError as exc:
        raise ValueError(f"记录编码无法解压：{exc}") from None


def encode(doc: dict[str, Any]) -> bytes:
    """``doc`` as stored: :func:`compress` of its :func:`canonical` JSON."""
    return compress(canonical(doc))


def decode(blob: bytes) -> dict[str, Any]:
    """The record stored as ``blob`` (:func:`encode` with any released dictionary)."""
    doc = orjson.loads(decompress(blob))
    assert isinstance(doc, dict)
    return doc


class RecordDoc(TypeDecorator[dict[str, Any]]):
    """``record.data``: a dict in Python, :func:`encode`'d bytes in the database."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return encode(value)

    def process_result_value(self, value: Any, dialect: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        return decode(bytes(value))
