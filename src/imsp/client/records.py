"""Records in and out: dataset names, business keys, files (.json/.jsonl/.csv) and the streamed body.

CSV files carry one record per row with the dataset's top-level node names as the header. A CSV
cell is text, so values are typed from the Data Standard: ``int`` fields become integers when the
cell is an integer, ``list``/``object`` fields hold JSON text (e.g. a prescription's ``items``),
everything else stays a string (decimal strings are accepted by the standard as they are).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from imsp.client.errors import InputError, UnknownDataset
from imsp.standard.model import Dataset, load_standard
from imsp.standard.validate import join_key

_INT = re.compile(r"-?\d+")
CHUNK = 64 * 1024


def dataset(name: str) -> Dataset:
    """The dataset named by short code (``prescription``) or service (``uploadPrescriptionInfo``)."""
    try:
        return load_standard().dataset(name)
    except KeyError:
        known = ", ".join(f"{d.code}/{d.service}" for d in load_standard().ordered())
        raise UnknownDataset(f"未知数据集：{name}（可用：{known}）") from None


def business_key(ds: Dataset, record: Any) -> str | None:
    """The record's business key (key values joined with ``|`` by ``validate.join_key``),
    ``None`` if one is empty — as the standard's validator computes it."""
    if not isinstance(record, Mapping):
        return None
    parts: list[str] = []
    for k in ds.key:
        node: Any = record
        for p in k.split("."):
            node = node.get(p) if isinstance(node, Mapping) else None
        if (
            node is None
            or isinstance(node, dict | list)
            or (isinstance(node, str) and not node.strip())
        ):
            return None
        parts.append(str(node))
    return join_key(parts)


class JsonArrayBody:
    """A JSON array encoded record by record, in chunks: the request body is streamed with
    ``Transfer-Encoding: chunked`` and never built as one string. Re-iterable, so the retry
    transport and the token resend can send it again."""

    def __init__(self, records: Sequence[Any]) -> None:
        self.records = records

    def __iter__(self) -> Iterator[bytes]:
        buf = bytearray(b"[")
        for i, rec in enumerate(self.records):
            if i:
                buf += b","
            buf += orjson.dumps(rec)
            if len(buf) >= CHUNK:
                yield bytes(buf)
                buf.clear()
        buf += b"]"
        yield bytes(buf)


# --------------------------------------------------------------------------- files


def read_records(path: str | Path, ds: str | Dataset) -> list[Any]:
    """Records of ``ds`` (a dataset or its name) from a ``.json`` (array or one object),
    ``.jsonl`` or ``.csv`` file."""
    path = Path(path)
    ds = dataset(ds) if isinstance(ds, str) else ds
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"无法读取文件 {path}：{exc.strerror}") from exc
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM, as Excel writes it
        raw = raw[3:]
    if suffix == ".csv":
        return _read_csv(raw, path, ds)
    if suffix in (".jsonl", ".ndjson"):
        out: list[Any] = []
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"{path} 第 {n} 行不是合法的 JSON：{exc}") from None
        return out
    if suffix == ".json":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{path} 不是合法的 JSON：{exc}") from None
        return data if isinstance(data, list) else [data]
    raise InputError(f"不支持的文件类型 {suffix or '（无扩展名）'}：请使用 .json、.jsonl 或 .csv")


def _read_csv(raw: bytes, path: Path, ds: Dataset) -> list[Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} 不是 UTF-8 编码（请另存为 CSV UTF-8）") from None
    types = {f.code: f.type for f in ds.fields}
    out: list[Any] = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
        rec: dict[str, Any] = {}
        for col, cell in row.items():
            if col is None:
                raise InputError(f"{path} 第 {n} 行的列数多于表头")
            rec[col] = _typed(types.get(col), cell or "", path, n, col)
        out.append(rec)
    return out


def _typed(kind: str | None, cell: str, path: Path, line: int, col: str) -> Any:
    if kind == "int" and _INT.fullmatch(cell.strip()):
        return int(cell)
    if kind in ("list", "object"):
        if not cell.strip():
            return [] if kind == "list" else None
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise InputError(f"{path} 第 {line} 行 {col} 应为 JSON 文本") from None
    return cell


def write_json(path: Path, items: Iterable[Any]) -> None:
    """``items`` as a JSON array (``.json``) or JSON lines (``.jsonl``), readable only by the
    owner: these files hold patients' data."""
    data = list(items)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        body = b"".join(orjson.dumps(x) + b"\n" for x in data)
    else:
        body = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    path.chmod(0o600)  # also when the file existed before
