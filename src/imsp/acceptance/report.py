"""The 《接口联调对接验收报告》: the same content as JSON and as an A4 PDF laid out as an official
document (title, number, institution, vendor, test-data period, the three parts with every figure
and verdict, the standard and threshold versions, reviewer and date, room for seal and signature).

The PDF is rendered by WeasyPrint with "Noto Serif CJK SC" (fonts embedded), in a worker thread —
never on the event loop — and at most ``settings.acceptance.report_workers`` at a time. The issued
bytes are stored once with their SHA-256 (``acceptance_report``); ``verify`` recognises a stored
report by that hash, so any modified copy is rejected.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import anyio
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from imsp.clock import format_datetime
from imsp.pdf import html_to_pdf

TITLE = "接口联调对接验收报告"
ISSUER = "河北省卫生健康委员会统计信息中心"

_env = Environment(
    loader=PackageLoader("imsp.acceptance", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)
_limiters: dict[int, anyio.CapacityLimiter] = {}


def report_number(*, case_id: int, version: int, issued_at: datetime) -> str:
    """冀卫统接验〔年〕case-version号 — unique per application of an institution."""
    return f"冀卫统接验〔{issued_at:%Y}〕{case_id:04d}-{version:02d}号"


def content(
    *,
    number: str,
    board: dict[str, Any],
    vendor: str,
    internet_hospital: str,
    reviewer: str,
    issued_at: datetime,
    services: list[dict[str, str]],
) -> dict[str, Any]:
    """The report as JSON: everything the PDF shows, in the same order."""
    start, end = board["period"]
    return {
        "title": TITLE,
        "number": number,
        "issuer": ISSUER,
        "institution": {"orgCode": board["orgCode"], "name": board["institution"]},
        "internetHospital": internet_hospital,
        "vendor": vendor,
        "testDataPeriod": {"from": start, "to": end},
        "services": services,
        "standardVersion": board["standardVersion"],
        "thresholdsVersion": board["thresholdsVersion"],
        "thresholds": board["thresholds"],
        "parts": board["parts"],
        "verdict": "通过" if board["green"] else "未通过",
        "reviewer": reviewer,
        "issuedAt": format_datetime(issued_at),
    }


def _day(iso: str | None) -> str:
    if not iso:
        return "—"
    return format_datetime(datetime.fromisoformat(iso))[:10]


def html(doc: dict[str, Any]) -> str:
    return _env.get_template("report.html").render(
        doc=doc, period=(_day(doc["testDataPeriod"]["from"]), _day(doc["testDataPeriod"]["to"]))
    )


def render_pdf_sync(markup: str) -> bytes:
    """HTML → PDF bytes (CPU-heavy: call :func:`render_pdf` from async code)."""
    return html_to_pdf(markup)


async def render_pdf(markup: str, *, workers: int = 1) -> bytes:
    """Render off the event loop, bounded to ``workers`` concurrent renderings per process."""
    limiter = _limiters.get(workers)
    if limiter is None:
        limiter = _limiters[workers] = anyio.CapacityLimiter(workers)
    return await anyio.to_thread.run_sync(render_pdf_sync, markup, limiter=limiter)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
