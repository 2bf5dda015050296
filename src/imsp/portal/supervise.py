"""The regulator's pages (监管人员): 监管总览, per hospital, the record viewer, Excel exports.

Figures come from the daily rollups (``imsp.supervision.dashboard``), never from counting the
record table. Charts are server-rendered SVG with their numbers in a table beside them. Every
list on a page has an ``.xlsx`` twin with the same rows and Chinese headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.responses import Response

from imsp.errors import BadRequest, NotFound
from imsp.portal.edge import Visit, render, visitor
from imsp.standard.ruleset import load_rules
from imsp.supervision import charts, dashboard, records
from imsp.supervision.dashboard import Totals
from imsp.supervision.export import XLSX, to_xlsx

router = APIRouter()
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


async def period(v: Visit) -> tuple[date, date]:
    """``?start=&end=`` (Beijing dates, inclusive); default the last 30 days with data."""
    end = _date(v, "end") or await dashboard.latest_day(v.db) or v.now.date()
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
    "医疗机构", "统一社会信用代码", "接收记录数", "接收成功", "有效率", "推荐项完整率",
    "关联完整率", "上报天数", "未上报天数",
)  # fmt: skip
DAY_HEADERS: Final = ("日期", "接收记录数", "接收成功", "拒收", "有效率", "是否未上报")


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


def hospital_rows(lines: Sequence[dashboard.HospitalLine]) -> list[list[Any]]:
    return [
        [
            h.hospital.name,
            h.hospital.org_code,
            h.totals.received,
            h.totals.accepted,
            pct(h.totals.validity),
            pct(h.totals.completeness),
            pct(h.totals.integrity),
            h.active_days,
            len(h.silent),
        ]
        for h in lines
    ]


def day_rows(by_day: dict[date, Totals], silent: Sequence[date] = ()) -> list[list[Any]]:
    quiet = set(silent)
    return [
        [
            d.isoformat(),
            t.received,
            t.accepted,
            t.rejected,
            pct(t.validity),
            "未上报" if d in quiet else "",
        ]
        for d, t in by_day.items()
    ]


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
    start, end = await period(v)
    ov = await dashboard.overview(v.db, start=start, end=end)
    ds_items = [
        (dashboard.dataset_name(c), float(t.received)) for c, t in ov.by_dataset.items() if c
    ]
    day_items = [(d.isoformat(), float(t.received)) for d, t in ov.by_day.items()]
    return render(
        v.request,
        "supervision_overview.html",
        visit=v,
        ov=ov,
        start=start,
        end=end,
        query=f"start={start.isoformat()}&end={end.isoformat()}",
        pct=pct,
        duration=duration,
        dataset_chart=charts.bars("各数据集接收记录数", ds_items),
        day_chart=charts.columns("每日接收记录数", day_items),
        dataset_headers=DATASET_HEADERS,
        dataset_rows=dataset_rows(ov.by_dataset),
        hospital_headers=HOSPITAL_HEADERS,
        hospital_rows=hospital_rows(ov.hospitals),
        hospital_links=[
            f"/supervision/hospitals/{h.hospital.id}?start={start}&end={end}" for h in ov.hospitals
        ],
        day_headers=DAY_HEADERS,
        day_rows=day_rows(ov.by_day),
    )


@router.get("/supervision/export/{name}.xlsx")
async def overview_export(name: str, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    start, end = await period(v)
    ov = await dashboard.overview(v.db, start=start, end=end)
    span = f"{start.isoformat()}至{end.isoformat()}"
    if name == "datasets":
        return await _xlsx(name, f"各数据集-{span}", DATASET_HEADERS, dataset_rows(ov.by_dataset))
    if name == "hospitals":
        return await _xlsx(
            name, f"各医疗机构-{span}", HOSPITAL_HEADERS, hospital_rows(ov.hospitals)
        )
    if name == "days":
        return await _xlsx(name, f"每日趋势-{span}", DAY_HEADERS, day_rows(ov.by_day))
    raise NotFound("没有这个导出清单")


@router.get("/supervision/hospitals/{institution_id}")
async def hospital(institution_id: int, v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    start, end = await period(v)
    view = await dashboard.hospital(v.db, institution_id=institution_id, start=start, end=end)
    if view is None:
        raise NotFound("医疗机构不存在")
    silent = {d.isoformat() for d in view.silent}
    day_items = [(d.isoformat(), float(t.received)) for d, t in view.by_day.items()]
    codes = sorted(view.total.rejected_by_code.items(), key=lambda kv: -kv[1])
    return render(
        v.request,
        "supervision_hospital.html",
        visit=v,
        view=view,
        start=start,
        end=end,
        query=f"start={start.isoformat()}&end={end.isoformat()}",
        pct=pct,
        duration=duration,
        day_chart=charts.columns(
            "每日接收记录数（红色为未上报日）", day_items, highlight=frozenset(silent)
        ),
        dataset_headers=DATASET_HEADERS,
        dataset_rows=dataset_rows(view.by_dataset),
        day_headers=DAY_HEADERS,
        day_rows=day_rows(view.by_day, view.silent),
        codes=codes,
        issue_titles=records.issue_titles(),
    )


@router.get("/supervision/hospitals/{institution_id}/export/{name}.xlsx")
async def hospital_export(
    institution_id: int,
    name: str,
    v: Visit = Depends(regulator),  # noqa: B008
) -> Response:
    start, end = await period(v)
    view = await dashboard.hospital(v.db, institution_id=institution_id, start=start, end=end)
    if view is None:
        raise NotFound("医疗机构不存在")
    span = f"{start.isoformat()}至{end.isoformat()}"
    label = view.hospital.name[:12]
    if name == "datasets":
        return await _xlsx(
            name, f"{label}-数据集-{span}", DATASET_HEADERS, dataset_rows(view.by_dataset)
        )
    if name == "days":
        return await _xlsx(
            name, f"{label}-每日-{span}", DAY_HEADERS, day_rows(view.by_day, view.silent)
        )
    raise NotFound("没有这个导出清单")


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
        raise NotFound("记录不存在")
    return render(v.request, "supervision_record.html", visit=v, view=view)


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
    )


@router.get("/supervision/rules/export.xlsx")
async def rules_export(v: Visit = Depends(regulator)) -> Response:  # noqa: B008
    return await _xlsx("rules", "监管规则目录", RULE_HEADERS, rule_rows())
