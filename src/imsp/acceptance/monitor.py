"""The operator's connection monitor (接入监控): every institution's connection state, last token,
last upload per service, error rate, the most frequent errors with a masked example record, and
a drill-down to the exchange log and the archived request (masked).

The errors of records are not stored apart from the request: they are found again by checking
the archived bodies of the uploads that had failures with the same validator (recent ones only,
``RECENT_FAILED``), so what the operator sees is exactly what the hospital's receipt said.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance.board import TEST, TOKEN_SERVICE, archive_records
from imsp.acceptance.models import AcceptanceCase
from imsp.auth.models import AppCredential, Institution
from imsp.exchange import queries as exchange_queries
from imsp.exchange.ingest import check
from imsp.exchange.models import ExchangeLog
from imsp.standard.mask import mask, mask_record
from imsp.standard.model import Standard
from imsp.standard.protocol import GATEWAY

#: How many of an institution's latest uploads with failures are checked again for the errors.
RECENT_FAILED = 50

CONNECTION_STATES: dict[str, tuple[str, str]] = {
    "none": ("未分配凭据", "neutral"),
    "testing": ("联调测试中", "pending"),
    "applied": ("已申请接入确认", "pending"),
    "confirmed": ("已确认接入", "ok"),
}


@dataclass(frozen=True, slots=True)
class Connection:
    institution_id: int
    org_code: str
    name: str
    state: str  # CONNECTION_STATES
    case_status: str | None
    credentials: dict[str, int]  # channel → active credentials
    last_token: datetime | None
    last_upload: datetime | None
    requests: int
    refused: int
    records: int
    failed: int

    @property
    def state_label(self) -> str:
        return CONNECTION_STATES[self.state][0]

    @property
    def tone(self) -> str:
        return CONNECTION_STATES[self.state][1]

    @property
    def error_rate(self) -> float | None:
        """Share of refused requests and rejected records among all requests and records."""
        n = self.requests + self.records
        return (self.refused + self.failed) / n if n else None


@dataclass(slots=True)
class FrequentError:
    dataset: str
    dataset_name: str
    code: str
    field: str
    msg: str
    count: int
    exchange_id: uuid.UUID
    example: Any = None  # the masked record that carried it


@dataclass(frozen=True, slots=True)
class Detail:
    connection: Connection
    last_upload_per_service: list[tuple[str, str, datetime, int]]  # dataset, name, at, code
    errors: list[FrequentError]
    refusals: list[tuple[int, str, int]]  # gateway code, message, count
    log: list[exchange_queries.LogRow] = field(default_factory=list)


def _state(case_status: str | None, creds: dict[str, int]) -> str:
    if case_status == "confirmed":
        return "confirmed"
    if case_status == "applied":
        return "applied"
    return "testing" if creds else "none"


async def connections(session: AsyncSession) -> list[Connection]:
    """Every institution with credentials or an acceptance case, by name."""
    insts = list((await session.execute(select(Institution).order_by(Institution.name))).scalars())
    creds: dict[int, dict[str, int]] = {}
    for inst_id, channel, n in await session.execute(
        select(AppCredential.institution_id, AppCredential.channel, func.count())
        .where(AppCredential.status == "active")
        .group_by(AppCredential.institution_id, AppCredential.channel)
    ):
        creds.setdefault(inst_id, {})[channel] = int(n)
    cases = {
        c.institution_id: c.status
        for c in (await session.execute(select(AcceptanceCase))).scalars()
    }
    log = ExchangeLog
    stats = {
        r.institution_id: r
        for r in await session.execute(
            select(
                log.institution_id,
                func.max(log.at).filter(log.service == TOKEN_SERVICE, log.code == 200).label("tok"),
                func.max(log.at).filter(log.dataset.is_not(None)).label("up"),
                func.count().filter(log.dataset.is_not(None)).label("requests"),
                func.count().filter(log.dataset.is_not(None), log.code != 200).label("refused"),
                func.coalesce(func.sum(log.total), 0).label("records"),
                func.coalesce(func.sum(log.fail), 0).label("failed"),
            )
            .where(log.institution_id.is_not(None))
            .group_by(log.institution_id)
        )
    }
    out: list[Connection] = []
    for inst in insts:
        c = creds.get(inst.id, {})
        s = stats.get(inst.id)
        if not c and inst.id not in cases and s is None:
            continue
        status = cases.get(inst.id)
        status = None if status == "new" else status
        out.append(
            Connection(
                institution_id=inst.id,
                org_code=inst.org_code,
                name=inst.name,
                state=_state(status, c),
                case_status=status,
                credentials=c,
                last_token=s.tok if s else None,
                last_upload=s.up if s else None,
                requests=int(s.requests) if s else 0,
                refused=int(s.refused) if s else 0,
                records=int(s.records) if s else 0,
                failed=int(s.failed) if s else 0,
            )
        )
    return out


async def detail(session: AsyncSession, *, org_code: str, std: Standard) -> Detail | None:
    conn = next((c for c in await connections(session) if c.org_code == org_code), None)
    if conn is None:
        return None
    log = ExchangeLog
    mine = log.institution_id == conn.institution_id
    last = await session.execute(
        select(log.dataset, func.max(log.at))
        .where(mine, log.dataset.is_not(None))
        .group_by(log.dataset)
    )
    per_service: list[tuple[str, str, datetime, int]] = []
    for dataset, at in last:
        if dataset is None or dataset not in std.datasets:
            continue
        code = await session.scalar(
            select(log.code).where(mine, log.dataset == dataset, log.at == at).limit(1)
        )
        per_service.append((dataset, std.datasets[dataset].name, at, int(code or 0)))
    per_service.sort(key=lambda r: std.datasets[r[0]].number)
    refusals = [
        (int(code), GATEWAY[code].msg if code in GATEWAY else "", int(n))
        for code, n in await session.execute(
            select(log.code, func.count())
            .where(mine, log.code != 200)
            .group_by(log.code)
            .order_by(func.count().desc())
        )
    ]
    return Detail(
        connection=conn,
        last_upload_per_service=per_service,
        errors=await frequent_errors(
            session, institution_id=conn.institution_id, org_code=org_code, std=std
        ),
        refusals=refusals,
        log=await exchange_queries.list_log(session, org_code=org_code, limit=30),
    )


async def frequent_errors(
    session: AsyncSession, *, institution_id: int, org_code: str, std: Standard, top: int = 10
) -> list[FrequentError]:
    """The most frequent record errors of the institution's recent uploads, each with the masked
    record that first carried it."""
    log = ExchangeLog
    rows = (
        await session.execute(
            select(log.id, log.dataset, log.body)
            .where(
                log.institution_id == institution_id,
                log.code == 200,
                log.fail > 0,
                log.body.is_not(None),
            )
            .order_by(log.at.desc())
            .limit(RECENT_FAILED)
        )
    ).all()
    counts: Counter[tuple[str, str, str]] = Counter()
    found: dict[tuple[str, str, str], FrequentError] = {}
    for xid, dataset, body in rows:
        ds = std.datasets.get(dataset or "")
        if ds is None or body is None:
            continue
        try:
            records = archive_records(body)
        except ValueError:
            continue
        for r in check(ds, records, org_code=org_code, encode_time=str).results:
            for e in r.get("errors", []):
                key = (ds.code, str(e.get("code", "")), str(e.get("field", "")))
                counts[key] += 1
                if key not in found:
                    raw = records[r["index"]] if r["index"] < len(records) else None
                    found[key] = FrequentError(
                        dataset=ds.code,
                        dataset_name=ds.name,
                        code=key[1],
                        field=key[2],
                        msg=mask_text(str(e.get("msg", ""))),
                        count=0,
                        exchange_id=xid,
                        example=mask_record(ds, raw),
                    )
    out = []
    for key, n in counts.most_common(top):
        f = found[key]
        f.count = n
        out.append(f)
    return out


async def masked_request(
    session: AsyncSession, *, exchange_id: uuid.UUID, std: Standard
) -> tuple[exchange_queries.LogRow, list[Any], bool] | None:
    """One logged request and its archived records, every identifier masked (``None`` if the id
    is unknown). The boolean says whether the archive still matches the logged SHA-256."""
    row = await exchange_queries.get_log(session, exchange_id)
    if row is None:
        return None
    archived = await exchange_queries.archived_body(session, exchange_id)
    if archived is None:
        return row, [], True
    ds = std.datasets.get(_dataset_of(row.service, std) or "")
    try:
        recs = archived.records()
    except ValueError:
        recs = []
    return row, [mask_record(ds, r) if ds else r for r in recs], archived.intact


_LONG_NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]{11,17}[0-9Xx]?(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    """A message with every ID-number-like or phone-like run of digits masked: validator
    messages quote the value they refused (《个人信息保护法》第五十一条)."""
    return _LONG_NUMBER.sub(lambda m: mask(m.group()), text)


def _dataset_of(service: str, std: Standard) -> str | None:
    for ds in std.ordered():
        if ds.service == service:
            return ds.code
    return None


__all__ = [
    "CONNECTION_STATES",
    "TEST",
    "Connection",
    "Detail",
    "FrequentError",
    "connections",
    "detail",
    "frequent_errors",
    "masked_request",
]
