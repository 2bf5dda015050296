"""Offline validation: the Data Standard's own validator (``imsp.standard.validate``), the very one
the platform runs, answered as a :class:`Receipt` shaped like a dry run's.

Nothing here reaches the network, so a hospital can check its files before it has credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from imsp.client.receipt import FieldError, Receipt, RecordResult
from imsp.client.records import dataset as resolve
from imsp.standard.issues import Issue
from imsp.standard.protocol import RECORD, record_msg_code
from imsp.standard.validate import validator_for

#: msgCode of a record that passed (数据标准 V1.0 §错误代码: 202 校验通过（试运行，未入库）).
PASSED = 202


def _field_errors(issues: list[Issue]) -> tuple[FieldError, ...]:
    return tuple(FieldError(i.field, i.code, i.msg) for i in issues)


def record_code(errors: list[Issue]) -> int:
    """The record's msgCode: its most fundamental problem's code, decided as the platform does
    (:func:`imsp.standard.protocol.record_msg_code`)."""
    if not errors:
        return PASSED
    return record_msg_code({e.msg_code for e in errors})


def check(dataset: str, records: Iterable[Any]) -> Receipt:
    """Validate ``records`` of ``dataset`` (short code or service name) without sending them."""
    ds = resolve(dataset)
    validator = validator_for(ds)
    results: list[RecordResult] = []
    for index, record in enumerate(records):
        v = validator.check(record, index)
        code = record_code(v.errors)
        results.append(
            RecordResult(
                index=index,
                key=v.key,
                msg_code=code,
                msg=RECORD[code].msg if code in RECORD else "",
                errors=_field_errors(v.errors),
                warnings=_field_errors(v.warnings),
            )
        )
    fail = sum(1 for r in results if not r.ok)
    return Receipt(
        dataset=ds.code,
        total=len(results),
        success=len(results) - fail,
        fail=fail,
        results=tuple(results),
        dry_run=True,
        batches=0,
    )
