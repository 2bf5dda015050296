"""Lists exported to Excel (导出): the rows a list page shows, without its paging.

The workbook is built off the event loop (openpyxl is CPU-bound), at most ``_PARALLEL`` at a time,
so one large export does not stall the pages of every other visitor.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial
from typing import Final
from urllib.parse import quote

import anyio
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from starlette.responses import Response

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The most rows one export holds (a list longer than this is narrowed by its filters first).
MAX_ROWS: Final = 10_000
_PARALLEL: Final = anyio.CapacityLimiter(2)
_HEAD_FILL = PatternFill("solid", fgColor="DCE6F2")


def workbook(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """One sheet: bold Chinese headers in row 1, the rows as text below."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append(list(headers))
    for i, name in enumerate(headers, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=True)
        cell.fill = _HEAD_FILL
        ws.column_dimensions[get_column_letter(i)].width = max(12, len(name) * 2 + 6)
    for row in rows:
        ws.append([str(v) for v in row])
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def xlsx_response(
    title: str, filename: str, headers: Sequence[str], rows: Sequence[Sequence[str]]
) -> Response:
    """The list as an ``.xlsx`` download named ``filename`` (Chinese; ASCII fallback ``export``)."""
    content = await anyio.to_thread.run_sync(
        partial(workbook, title, headers, rows), limiter=_PARALLEL
    )
    return Response(
        content,
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="export.xlsx"; '
            f"filename*=UTF-8''{quote(filename)}"
        },
    )
