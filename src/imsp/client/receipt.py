"""Typed receipts (回执): what the platform answered for each record, and the access token.

The wire shape is fixed by the exchange protocol (``imsp.standard.protocol``)::

    {"code": 200, "msg": "成功", "data": {"total": 3, "success": 2, "fail": 1,
     "results": [{"index": 0, "key": "RX1", "msgCode": 200, "msg": "成功",
                  "errors": [], "warnings": []}, …]}}

A :class:`Receipt` of a split upload merges the receipts of its batches; ``index`` is always the
record's position in the caller's input, not in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imsp.client.errors import ProtocolError
from imsp.standard.protocol import RECORD

#: Per-record business codes that mean "accepted": stored, updated, or valid in a dry run.
ACCEPTED_CODES = frozenset({200, 201, 202})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of one record: the node path (``items[2].amount``), a stable issue code from
    the Data Standard's catalogue and a Chinese message."""

    field: str
    code: str
    msg: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "msg": self.msg}


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The platform's verdict on one record. ``msg_code`` is a key of ``protocol.RECORD``."""

    index: int
    key: str | None
    msg_code: int
    msg: str
    errors: tuple[FieldError, ...] = ()
    warnings: tuple[FieldError, ...] = ()

    @property
    def ok(self) -> bool:
        return self.msg_code in ACCEPTED_CODES

    @property
    def hint(self) -> str:
        entry = RECORD.get(self.msg_code)
        return entry.hint if entry else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "key": self.key,
            "msgCode": self.msg_code,
            "msg": self.msg,
            "errors": [e.to_json() for e in self.errors],
            "warnings": [w.to_json() for w in self.warnings],
        }


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one upload (one or several batches) of one dataset."""

    dataset: str
    total: int
    success: int
    fail: int
    results: tuple[RecordResult, ...]
    dry_run: bool = False
    batches: int = 1
    #: The platform's ``exchangeId`` of each batch (UUIDv7): quote it when asking the platform
    #: about an upload — it leads to the exact request in the exchange log.
    exchange_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every record was accepted."""
        return self.fail == 0

    @property
    def rejected(self) -> list[RecordResult]:
        return [r for r in self.results if not r.ok]

    @property
    def created(self) -> int:
        return sum(1 for r in self.results if r.msg_code == 200)

    @property
    def updated(self) -> int:
        return sum(1 for r in self.results if r.msg_code == 201)

    @classmethod
    def merge(cls, dataset: str, parts: Sequence[Receipt], *, dry_run: bool) -> Receipt:
        return cls(
            dataset=dataset,
            total=sum(p.total for p in parts),
            success=sum(p.success for p in parts),
            fail=sum(p.fail for p in parts),
            results=tuple(r for p in parts for r in p.results),
            dry_run=dry_run,
            batches=sum(p.batches for p in parts),
            exchange_ids=tuple(x for p in parts for x in p.exchange_ids),
        )


@dataclass(frozen=True, slots=True)
class Token:
    """An access token (授权码). ``expires_at`` is computed on the client's clock from
    ``expiresIn`` (immune to clock skew); ``expire_time`` is the platform's own text."""

    value: str = field(repr=False)
    expires_in: int
    obtained_at: datetime
    expires_at: datetime
    expire_time: str = ""

    @property
    def masked(self) -> str:
        v = self.value
        return v[:6] + "…" + v[-4:] if len(v) > 12 else "…"


# --------------------------------------------------------------------------- wire parsing


def _issues(raw: Any, where: str) -> tuple[FieldError, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProtocolError(f"回执 {where} 不是数组")
    out: list[FieldError] = []
    for e in raw:
        if not isinstance(e, dict):
            raise ProtocolError(f"回执 {where} 的元素不是对象")
        out.append(
            FieldError(str(e.get("field") or ""), str(e.get("code") or ""), str(e.get("msg") or ""))
        )
    return tuple(out)


def parse_receipt(dataset: str, data: Any, *, offset: int, size: int, dry_run: bool) -> Receipt:
    """The ``data`` of an upload answer for a batch of ``size`` records starting at input
    position ``offset``. Records the platform did not list are counted from the totals."""
    if not isinstance(data, dict):
        raise ProtocolError("回执 data 不是对象")
    try:
        total, success, fail = int(data["total"]), int(data["success"]), int(data["fail"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError("回执缺少 total/success/fail") from exc
    if total != size:
        raise ProtocolError(f"回执记录数 {total} 与发送的 {size} 条不一致")
    results: list[RecordResult] = []
    for r in data.get("results") or []:
        if not isinstance(r, dict):
            raise ProtocolError("回执 results 的元素不是对象")
        try:
            index = int(r["index"])
            msg_code = int(r["msgCode"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("回执结果缺少 index/msgCode") from exc
        if not 0 <= index < size:
            raise ProtocolError(f"回执结果的 index {index} 超出批次范围")
        key = r.get("key")
        results.append(
            RecordResult(
                index=offset + index,
                key=None if key is None else str(key),
                msg_code=msg_code,
                msg=str(r.get("msg") or ""),
                errors=_issues(r.get("errors"), "errors"),
                warnings=_issues(r.get("warnings"), "warnings"),
            )
        )
    results.sort(key=lambda x: x.index)
    exchange_id = data.get("exchangeId")
    return Receipt(
        dataset,
        total,
        success,
        fail,
        tuple(results),
        dry_run=dry_run,
        exchange_ids=(str(exchange_id),) if exchange_id else (),
    )


def rejected_json(results: Iterable[RecordResult], records: Sequence[Any]) -> list[dict[str, Any]]:
    """Rejected records with their errors, for a person to fix (``--rejected FILE``)."""
    return [{**r.to_json(), "record": records[r.index]} for r in results if not r.ok]
