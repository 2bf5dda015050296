"""数据上报 use case: check a batch record by record, store the good ones, build the receipt.

Rules (issue 4; the Data Standard's own checks live in ``imsp.standard.validate``):

* Partial acceptance: every record is judged on its own; one bad record never sinks the batch —
  unless ``atomic`` is asked, then any failure leaves the whole batch unstored (good records get
  -91 整批未入库).
* ``dry_run`` validates and stores nothing (good records get 202); the request is still logged.
* A record whose ``organID`` is not the token's institution is rejected (-93); records are always
  stored under the token's institution, so one institution can never write another's rows.
* A business key that occurs more than once in a batch rejects every occurrence (-92): the platform
  cannot know which of them the hospital meant.
* Stored: 200 new, 201 updated (a new version), 201 unchanged (identical content, no new version).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from imsp.exchange import receipts
from imsp.exchange.models import KEY_LENGTH
from imsp.exchange.tokens import Grant
from imsp.exchange.writer import ROLE_COLUMNS, Batch, LogEntry, Writer
from imsp.standard.issues import Issue
from imsp.standard.model import Dataset, load_standard
from imsp.standard.validate import validator_for


@dataclass(slots=True)
class Checked:
    """A batch after checking: one result per record, and the rows to store."""

    results: list[dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    fail: int = 0


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an upload answers: the summary ``msg`` and the receipt ``data``."""

    msg: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a dataset's typed columns come from (``[columns]`` of its definition): (row key,
    field code) of its text columns and of its time columns (``writer.ROW_COLUMNS``)."""

    texts: tuple[tuple[str, str], ...]
    times: tuple[tuple[str, str], ...]
    has_organ: bool


_layouts: dict[str, _Layout] = {}


def _layout(ds: Dataset) -> _Layout:
    hit = _layouts.get(ds.code)
    if hit is None:
        cols = [(ROLE_COLUMNS[r], f) for r, f in ds.columns.items()]
        texts = tuple((c.short, f) for c, f in cols if c.kind == "text")
        times = tuple((c.short, f) for c, f in cols if c.kind == "time")
        codes = {f.code for f in ds.fields}
        hit = _Layout(texts, times, "organID" in codes)
        _layouts[ds.code] = hit
    return hit


def _issue(field_: str, code: str, msg: str) -> Issue:
    return Issue(field_, code, msg, "error")


def check(
    dataset: Dataset,
    records: Sequence[Any],
    *,
    org_code: str,
    encode_time: Callable[[str], str],
) -> Checked:
    """Validate every record and prepare the storable rows (pure: no database, no clock);
    ``encode_time`` is the writer's (``Writer.encode_time``)."""
    layout = _layout(dataset)
    verdicts = validator_for(dataset).check_many(records)
    first: dict[str, int] = {}  # key → index of its first record
    repeated: dict[str, list[int]] = {}  # key → indexes of all its records, if more than one
    for v in verdicts:
        k = v.key
        if k is not None:
            at = first.setdefault(k, v.index)
            if at != v.index:
                repeated.setdefault(k, [at]).append(v.index)
    out = Checked(results=[])
    for v in verdicts:
        errors = v.errors
        raw = v.record if v.record is not None else records[v.index]
        if layout.has_organ and type(raw) is dict:
            organ = raw.get("organID")
            if type(organ) is str and organ != org_code and organ.strip():
                errors.append(
                    _issue(
                        "organID",
                        "organ_mismatch",
                        f"机构统一社会信用代码(organID) {organ} 与访问令牌所属机构 {org_code} 不一致",
                    )
                )
        key = v.key
        if key is not None:
            where = repeated.get(key)
            if where is not None:
                others = "、".join(str(i) for i in where if i != v.index)
                errors.append(
                    _issue(
                        ",".join(dataset.key),
                        "duplicate_key",
                        f"业务主键 {key} 在本批次中重复出现（另见第 {others} 条），均未入库",
                    )
                )
            elif len(key) > KEY_LENGTH:
                errors.append(_issue(",".join(dataset.key), "key_too_long", "业务主键过长"))
        elif not errors:
            errors.append(_issue(",".join(dataset.key), "key_missing", "业务主键为空"))
        if errors:
            out.fail += 1
            out.results.append(receipts.failure(v.index, key, errors, v.warnings))
            continue
        assert v.record is not None and key is not None
        out.results.append(receipts.success(v.index, key, v.warnings))
        out.rows.append(_row(v.index, key, v.record, layout, encode_time))
    return out


def _row(
    index: int, key: str, rec: dict[str, Any], layout: _Layout, encode_time: Callable[[str], str]
) -> dict[str, Any]:
    row: dict[str, Any] = {"i": index, "k": key, "vd": rec.get("operType") == "3", "d": rec}
    for short, code in layout.texts:
        value = rec.get(code)
        if type(value) is str and value:
            row[short] = value
    for short, code in layout.times:
        value = rec.get(code)
        if type(value) is str and value:
            row[short] = encode_time(value)
    return row


class ReferenceCheck(Protocol):
    """Finds references of stored records to records not uploaded yet (supervision's warning
    -95, ``imsp.supervision.references``): index → warnings. Never rejects a record."""

    async def __call__(
        self, *, institution_id: int, dataset: str, records: Sequence[tuple[int, dict[str, Any]]]
    ) -> dict[int, list[Issue]]: ...

    def stored(self, *, institution_id: int, dataset: str, rows: Sequence[dict[str, Any]]) -> None:
        """``rows`` (``Batch.rows``) were committed: their keys exist now (voided: no longer)."""


async def ingest(
    writer: Writer,
    *,
    dataset: Dataset,
    records: Sequence[Any],
    grant: Grant,
    dry_run: bool,
    atomic: bool,
    entry: LogEntry,
    started: float,
    references: ReferenceCheck | None = None,
) -> Receipt:
    """Check, store and log one upload and return its receipt. ``entry`` is the log row, filled
    in here with the outcome counts; ``started`` is the request's ``time.perf_counter()``.
    ``references``, when given, runs alongside the write and adds warnings (-95) for stored
    records that refer to records not uploaded yet."""
    checked = check(dataset, records, org_code=grant.org_code, encode_time=writer.encode_time)
    results = checked.results
    total = len(results)
    ok = total - checked.fail
    atomic_failed = atomic and checked.fail > 0
    entry.total = total
    if dry_run or atomic_failed or not checked.rows:
        if dry_run:
            for r in results:
                if r["msgCode"] == 200:
                    receipts.mark(r, 202)
        elif atomic_failed:
            for r in results:
                if r["msgCode"] == 200:
                    receipts.mark(r, -91)
            ok = 0
        entry.success, entry.fail = ok, total - ok
        await writer.log(entry, started=started)
    else:
        entry.success, entry.fail = ok, checked.fail
        batch = Batch(grant.institution_id, dataset.code, grant.app_id, checked.rows)
        if references is None:
            stored = await writer.store(batch, log=entry, started=started)
        else:
            stored, missing = await asyncio.gather(
                writer.store(batch, log=entry, started=started),
                references(
                    institution_id=grant.institution_id,
                    dataset=dataset.code,
                    records=[(row["i"], row["d"]) for row in checked.rows],
                ),
            )
            references.stored(
                institution_id=grant.institution_id, dataset=dataset.code, rows=checked.rows
            )
            for index, issues in missing.items():
                results[index]["warnings"].extend(receipts.issue_json(w) for w in issues)
        _finish(results, stored)
    msg = receipts.summary(total, ok, total - ok, dry_run=dry_run, atomic_failed=atomic_failed)
    data = {
        "exchangeId": str(entry.id),
        "standardVersion": load_standard().release,  # the version that checked these records
        "total": total,
        "success": entry.success,
        "fail": entry.fail,
        "results": results,
    }
    return Receipt(msg, data)


def _finish(results: list[dict[str, Any]], stored: Mapping[int, int]) -> None:
    for r in results:
        if r["msgCode"] != 200:
            continue
        version = stored.get(r["index"])
        if version is None:
            receipts.mark(r, 201, receipts.MSG_UNCHANGED)
        elif version > 1:
            receipts.mark(r, 201)
