"""Excel (.xlsx) export of the supervision lists: Chinese headers, the same rows as the page.

Building a workbook is CPU-bound, so :func:`to_xlsx` runs it in a worker thread, at most
:data:`PARALLEL` at a time, never on the event loop that serves the hospitals.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Final

import anyio
import anyio.to_thread
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

PARALLEL: Final = 2
_limiter: anyio.CapacityLimiter | None = None
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def build(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """One sheet named ``title``: a bold header row, then ``rows`` as given."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(list(row))
    for i, header in enumerate(headers, start=1):
        longest = max([len(str(header)) * 2, *(len(str(r[i - 1])) for r in rows[:200])])
        ws.column_dimensions[get_column_letter(i)].width = min(60, max(10, longest + 2))
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def to_xlsx(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(PARALLEL)
    return await anyio.to_thread.run_sync(build, title, headers, rows, limiter=_limiter)
