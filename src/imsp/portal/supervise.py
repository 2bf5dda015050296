"""The regulator's pages (监管人员): 监管总览, per hospital, the record viewer, Excel exports.

Figures come from the daily rollups (``imsp.supervision.dashboard``), never from counting the
record table. Charts are server-rendered SVG with their numbers in a table beside them. Every
list on a page has an ``.xlsx`` twin with the same rows and Chinese headers.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from imsp.errors import BadRequest, NotFound
from imsp.portal.edge import Rerender, Visit, checked_form, render, visitor
from imsp.standard.mask import mask
from imsp.standard.ruleset import SEVERITY_LABELS, load_rules
from imsp.supervision import charts, dashboard, doctors, records, rule_tester
from imsp.supervision import queries as finding_queries
from imsp.supervision.dashboard import Totals
from imsp.supervision.export import XLSX, to_xlsx
from imsp.web import ctx

router = APIRouter()
#: Links shown in the record viewer's action block (``#record-actions``): other parts of the
#: portal append a function returning ``(href, label, element id)`` for a record, or ``None``
#: (e.g. 调阅视频, registered by ``portal.video``).
RECORD_ACTIONS: list[Callable[[records.RecordView], tuple[str, str, str] | None]] = []
regulator = visitor("regulator")
record_readers = visitor("regulator", "applicant")
DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 366


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """A delay for people: 3.2 小时, 1.5 天."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86400:.1f} 天"


def _date(v: Visit, name: str) -> date | None:
    raw = v.request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"日期格式应为 yyyy-MM-dd：{name}={raw[:20]}") from None


@asynccontextmanager
async def reads(v: Visit) -> AsyncIterator[AsyncSession]:
    """The dashboards' and exports' reads (rollups only): on the read replica when
    ``IMSP_DATABASE_REPLICA_URL`` is set, else the primary (``Database.read_session``)."""
    async with ctx(v.request).db.read_session() as session:
        yield session


async def period(v: Visit, db: AsyncSession | None = None) -> tuple[date, date]:
    """``?start=&end=`` (Beijing dates, inclusive); default the last 30 days with data."""
    end = _date(v, "end") or await dashboard.latest_day(db or v.db) or v.now.date()
    start = _date(v, "start") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadRequest("开始日期不能晚于结束日期")
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(f"统计期间不能超过 {MAX_DAYS} 天")
    return start, end


# --------------------------------------------------------------------------- list tables

DATASET_HEADERS: Final = (
    "数据集", "请求数", "接收记录数", "接收成功", "拒收", "有效率", "推荐项完整率",
    "关联完整率", "上报延迟 P95",
)  # fmt: skip
HOSPITAL_HEADERS: Final = (
    "医疗机构", "统一社会信用代码", "接收记录数", "有效率", "推荐项完整率", "关联完整率",
    "监管发现", "未办结", "每千条记录发现数", "上报天数", "未上报天数",
)  # fmt: skip
DAY_HEADERS: Final = ("日期", "接收记录数", "接收成功", "拒收", "有效率", "监管发现", "是否未上报")
RULE_COUNT_HEADERS: Final = ("规则编号", "规则名称", "级别", "发现数", "未办结")
DOCTOR_HEADERS: Final = ("医师证件号码（脱敏）", "监管发现", "未办结")


def dataset_rows(by_dataset: dict[str, Totals]) -> list[list[Any]]:
    return [
        [
            dashboard.dataset_name(code),
            t.requests,
            t.received,
            t.accepted,
            t.rejected,
            pct(t.validity),
            pct(t.completeness),
            pct(t.integrity),
            duration(t.delay_p95_s),
        ]
        for code, t in by_dataset.items()
    ]


def per_thousand(findings: int, records: int) -> float | None:
    return findings * 1000 / records if records else None


@dataclass(frozen=True, slots=True)
class Ranked:
    """A hospital line of the overview with its findings (ranked by findings per 1,000)."""

    line: dashboard.HospitalLine
    findings: int
    open: int

    @property
    def rate(self) -> float | None:
        return per_thousand(self.findings, self.line.totals.received)


def rank(
    lines: Sequence[dashboard.HospitalLine], counts: dict[int, tuple[int, int]]
) -> list[Ranked]:
    ranked = [Ranked(h, *counts.get(h.hospital.id, (0, 0))) for h in lines]
    ranked.sort(
        key=lambda r: (-(r.rate or 0.0), -r.findings, -r.line.totals.received, r.line.hospital.name)
    )
    return ranked


def hospital_rows(ranked: Sequence[Ranked]) -> list[list[Any]]:
    return [
        [
            r.line.hospital.name,
            r.line.hospital.org_code,
            r.line.totals.received,
            pct(r.line.totals.validity),
            pct(r.line.totals.completeness),
            pct(r.line.totals.integrity),
            r.findings,
            r.open,
            "—" if r.rate is None else f"{r.rate:.2f}",
            r.line.active_days,
            len(r.line.silent),
        ]
        for r in ranked
    ]


def day_rows(
    by_day: dict[date, Totals], findings: dict[date, int], silent: Sequence[date] = ()
) -> list[list[Any]]:
    quiet = set(silent)
    return [
        [
            d.isoformat(),
            t.received,
            t.accepted,
            t.rejected,
            pct(t.validity),
            findings.get(d, 0),
            "未上报" if d in quiet else "",
        ]
        for d, t in by_day.items()
    ]


def rule_count_rows(counts: Sequence[dashboard.RuleCount]) -> list[list[Any]]:
    catalogue = load_rules()
    return [
        [
            c.rule_id,
            catalogue[c.rule_id].name if c.rule_id in catalogue else c.rule_id,
            SEVERITY_LABELS.get(c.severity, c.severity),
            c.total,
            c.open,
        ]
        for c in counts
    ]


def doctor_rows(doctors: Sequence[doctors.DoctorCount]) -> list[list[Any]]:
    return [[mask(d.doctor_cert_id), d.total, d.open] for d in doctors]


@dataclass(frozen=True, slots=True)
class OverviewLists:
    ov: dashboard.Overview
    ranked: list[Ranked]
    rules: list[dashboard.RuleCount]
    findings_by_day: dict[date, int]

    @property
    def findings(self) -> int:
        return sum(r.findings for r in self.ranked)

    @property
    def open(self) -> int:
        return sum(r.open for r in self.ranked)


async def _overview(db: AsyncSession, start: date, end: date) -> OverviewLists:
    ov = await dashboard.overview(db, start=start, end=end)
    f = await dashboard.findings_summary(db, start=start, end=end)
    return OverviewLists(ov, rank(ov.hospitals, f.by_institution), f.by_rule, f.by_day)


async def _xlsx(
    name: str, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]
) -> Response:
    body = await to_xlsx(title, headers, rows)
    return Response(
        body,
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.xlsx"; '
            f"filename*=UTF-8''{quote(title)}.xlsx",
            "Cache-Control": "private, no-store",
        },
    )


# --------------------------------------------------------------------------- pages


@router.get("/supervision")
async def overview(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    async with reads(v) as db:
        start, end = await period(v, db)
        data = await _overview(db, start, end)
    ov = data.ov
    ds_items = [
        (dashboard.dataset_name(c), float(t.received)) for c, t in ov.by_dataset.items() if c
    ]
    day_items = [(d.isoformat(), float(t.received)) for d, t in ov.by_day.items()]
    rule_items = [
        (f"{c.rule_id} {SEVERITY_LABELS.get(c.severity, '')}", float(c.total)) for c in data.rules
    ]
    query = f"start={start.isoformat()}&end={end.isoformat()}"
    return render(
        v.request,
        "supervision_overview.html",
        visit=v,
        ov=ov,
        data=data,
        start=start,
        end=end,
        query=query,
        pct=pct,
        duration=duration,
        dataset_chart=charts.bars("各数据集接收记录数", ds_items),
        day_chart=charts.columns("每日接收记录数", day_items),
        rule_chart=charts.bars("各规则监管发现数", rule_items[:15]),
        finding_day_chart=charts.columns(
            "每日新增监管发现", [(d.isoformat(), float(n)) for d, n in data.findings_by_day.items()]
        ),
        dataset_headers=DATASET_HEADERS,
        dataset_rows=dataset_rows(ov.by_dataset),
        hospital_headers=HOSPITAL_HEADERS,
        hospital_rows=hospital_rows(data.ranked),
        hospital_links=[
            f"/supervision/hospitals/{r.line.hospital.id}?{query}" for r in data.ranked
        ],
        rule_headers=RULE_COUNT_HEADERS,
        rule_rows=rule_count_rows(data.rules),
        rule_links=[
            f"/supervision/findings?rule={c.rule_id}&severity={c.severity}&{query}"
            for c in data.rules
        ],
        day_headers=DAY_HEADERS,
        day_rows=day_rows(ov.by_day, data.findings_by_day),
    )


@router.get("/supervision/export/{name}.xlsx")
async def overview_export(name: str, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    async with reads(v) as db:
        start, end = await period(v, db)
        data = await _overview(db, start, end)
    span = f"{start.isoformat()}至{end.isoformat()}"
    lists = {
        "datasets": (f"各数据集-{span}", DATASET_HEADERS, dataset_rows(data.ov.by_dataset)),
        "hospitals": (f"各医疗机构-{span}", HOSPITAL_HEADERS, hospital_rows(data.ranked)),
        "days": (f"每日趋势-{span}", DAY_HEADERS, day_rows(data.ov.by_day, data.findings_by_day)),
        "rules": (f"监管发现按规则-{span}", RULE_COUNT_HEADERS, rule_count_rows(data.rules)),
    }
    if name not in lists:
        raise NotFound("没有这个导出清单")
    return await _xlsx(name, *lists[name])


@dataclass(frozen=True, slots=True)
class HospitalLists:
    view: dashboard.HospitalView
    rules: list[dashboard.RuleCount]
    findings_by_day: dict[date, int]
    doctors: list[doctors.DoctorCount]


async def _hospital(db: AsyncSession, institution_id: int, start: date, end: date) -> HospitalLists:
    view = await dashboard.hospital(db, institution_id=institution_id, start=start, end=end)
    if view is None:
        raise NotFound("医疗机构不存在")
    return HospitalLists(
        view,
        await dashboard.findings_by_rule(db, start=start, end=end, institution_id=institution_id),
        await dashboard.findings_by_day(db, start=start, end=end, institution_id=institution_id),
        await doctors.top_doctors(db, institution_id=institution_id, start=start, end=end),
    )


@router.get("/supervision/hospitals/{institution_id}")
async def hospital(institution_id: int, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    async with reads(v) as db:
        start, end = await period(v, db)
        data = await _hospital(db, institution_id, start, end)
    view = data.view
    silent = {d.isoformat() for d in view.silent}
    day_items = [(d.isoformat(), float(t.received)) for d, t in view.by_day.items()]
    codes = sorted(view.total.rejected_by_code.items(), key=lambda kv: -kv[1])
    query = f"start={start.isoformat()}&end={end.isoformat()}"
    return render(
        v.request,
        "supervision_hospital.html",
        visit=v,
        view=view,
        data=data,
        start=start,
        end=end,
        query=query,
        pct=pct,
        duration=duration,
        day_chart=charts.columns(
            "每日接收记录数（红色为未上报日）", day_items, highlight=frozenset(silent)
        ),
        dataset_headers=DATASET_HEADERS,
        dataset_rows=dataset_rows(view.by_dataset),
        day_headers=DAY_HEADERS,
        day_rows=day_rows(view.by_day, data.findings_by_day, view.silent),
        rule_headers=RULE_COUNT_HEADERS,
        rule_rows=rule_count_rows(data.rules),
        rule_links=[
            f"/supervision/findings?hospital={institution_id}&rule={c.rule_id}&{query}"
            for c in data.rules
        ],
        doctor_headers=DOCTOR_HEADERS,
        doctor_rows=doctor_rows(data.doctors),
        doctor_links=[
            f"/supervision/hospitals/{institution_id}/doctors/{d.token}?{query}"
            for d in data.doctors
        ],
        findings_total=sum(c.total for c in data.rules),
        findings_open=sum(c.open for c in data.rules),
        codes=codes,
        issue_titles=records.issue_titles(),
    )


@router.get("/supervision/hospitals/{institution_id}/export/{name}.xlsx")
async def hospital_export(
    institution_id: int,
    name: str,
    v: Visit = Depends(regulator),  # noqa: B008
) -> Response:
    async with reads(v) as db:
        start, end = await period(v, db)
        data = await _hospital(db, institution_id, start, end)
    view = data.view
    span = f"{start.isoformat()}至{end.isoformat()}"
    label = view.hospital.name[:12]
    lists = {
        "datasets": (f"{label}-数据集-{span}", DATASET_HEADERS, dataset_rows(view.by_dataset)),
        "days": (
            f"{label}-每日-{span}",
            DAY_HEADERS,
            day_rows(view.by_day, data.findings_by_day, view.silent),
        ),
        "rules": (f"{label}-按规则-{span}", RULE_COUNT_HEADERS, rule_count_rows(data.rules)),
        "doctors": (f"{label}-医师-{span}", DOCTOR_HEADERS, doctor_rows(data.doctors)),
    }
    if name not in lists:
        raise NotFound("没有这个导出清单")
    return await _xlsx(name, *lists[name])


@router.get("/supervision/records/{record_id}")
async def record(record_id: int, v: Visit = Depends(record_readers)) -> Response:  # noqa: B008
    """One stored record, its versions and the request that carried each (an audited view).

    A stable URL other parts link to (findings, video retrieval); a hospital account sees only
    its own institution's records. Identifiers are masked on the page."""
    scope = v.user.institution_id if v.user.role == "applicant" else None
    if v.user.role == "applicant" and scope is None:
        raise NotFound("记录不存在")
    view = await records.record_view(
        v.db, record_id=record_id, institution_id=scope, actor=v.actor, now=v.now
    )
    if view is None:
        archived = await records.archived_note(v.db, record_id=record_id)
        if archived is not None:  # a hospital is told when, not where the export lies
            raise NotFound("记录已归档：" + archived.text(with_location=scope is None))
        raise NotFound("记录不存在")
    actions = [link for make in RECORD_ACTIONS if (link := make(view)) is not None]
    return render(v.request, "supervision_record.html", visit=v, view=view, actions=actions)


RULE_HEADERS: Final = ("规则编号", "规则名称", "依据", "级别", "涉及数据集", "版本", "检查内容")


def rule_rows() -> list[list[Any]]:
    return [
        [
            r.id,
            r.name,
            r.citation_display,
            r.severity_label,
            "、".join(dashboard.dataset_name(d) for d in r.datasets),
            r.version,
            r.text,
        ]
        for r in load_rules()
    ]


@router.get("/supervision/rules")
async def rules(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    """监管规则目录: exactly what is checked, with the regulation each rule enforces."""
    catalogue = load_rules()
    return render(
        v.request,
        "supervision_rules.html",
        visit=v,
        catalogue=catalogue,
        headers=RULE_HEADERS,
        rows=rule_rows(),
        open_counts=await finding_queries.count_open_by_rule(v.db),
    )


async def _rule_test_page(
    v: Visit,
    rule_id: str,
    *,
    pasted: str = "",
    result: Any = None,
    error: str = "",
    status: int = 200,
) -> Response:
    rule = {r.id: r for r in load_rules()}.get(rule_id)
    if rule is None:
        raise NotFound("规则不存在")
    return render(
        v.request,
        "supervision_rule_test.html",
        visit=v,
        rule=rule,
        datasets={d: dashboard.dataset_name(d) for d in rule.datasets},
        pasted=pasted,
        result=result,
        error=error,
        status=status,
    )


@router.get("/supervision/rules/{rule_id}/test")
async def rule_test_form(rule_id: str, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _rule_test_page(v, rule_id)


@router.post("/supervision/rules/{rule_id}/test")
async def rule_test(rule_id: str, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    """Run one rule on a pasted record set (nothing is stored; the engine's ``try_rule``)."""
    await checked_form(v)
    pasted = v.text("records")
    try:
        records = rule_tester.parse_pasted(pasted, rule_id=rule_id)
        result = await anyio.to_thread.run_sync(
            functools.partial(rule_tester.run, rule_id, records, now=v.now)
        )
    except BadRequest as exc:
        page = await _rule_test_page(v, rule_id, pasted=pasted, error=exc.msg, status=400)
        raise Rerender(page) from exc
    return await _rule_test_page(v, rule_id, pasted=pasted, result=result)


@router.get("/supervision/rules/export.xlsx")
async def rules_export(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _xlsx("rules", "监管规则目录", RULE_HEADERS, rule_rows())


@router.get("/supervision/hospitals/{institution_id}/doctors/{token}")
async def doctor(institution_id: int, token: str, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    """One doctor: visits, prescriptions and findings (the ID number masked, never in the URL)."""
    view = await doctors.doctor(v.db, institution_id=institution_id, token=token)
    if view is None:
        raise NotFound("医师不存在")
    return render(
        v.request,
        "supervision_doctor.html",
        visit=v,
        view=view,
        masked=mask(view.doctor_cert_id),
        names={d: dashboard.dataset_name(d) for d in view.visits},
        token=token,
    )
