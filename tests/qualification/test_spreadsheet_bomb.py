"""A hostile workbook costs one request, never the server.

The file: the department template's two header rows, then 700,000 empty rows in a sheet that
declares ``A1:Z800000`` — about 3.5 MB zipped, ~49.5 MB unpacked (just under the unpacked-size
limit, so it reaches the sheet reader). Reading stops after ``MAX_SHEET_ROWS`` rows with a clear
Chinese message, on a worker thread.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imsp import cpu
from imsp.qualification import fields as F
from imsp.qualification import roster as records
from imsp.qualification.spreadsheet import (
    MAX_SHEET_ROWS,
    MAX_UNPACKED_BYTES,
    TOO_MANY_ROWS,
    SheetError,
    read_rows,
    template,
)
from tests.portal.client import post_form, sign_in
from tests.qualification import builders as b

EMPTY_ROWS = 700_000
_SHEET = "xl/worksheets/sheet1.xml"


@cache
def bomb() -> bytes:
    """The template with 700,000 empty (styled) rows appended and a dimension of A1:Z800000."""
    source = zipfile.ZipFile(io.BytesIO(template(F.DEPARTMENTS)))
    sheet = source.read(_SHEET).decode()
    data_end = sheet.index("</sheetData>")
    head = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:Z800000"/>', sheet[:data_end])
    head = re.sub(r'<row r="([3-9]|[1-9]\d+)".*?</row>', "", head, flags=re.S)  # keep rows 1-2
    filler = "".join(
        f'<row r="{r}" spans="1:26" customHeight="1"><c r="Z{r}"/></row>'
        for r in range(3, 3 + EMPTY_ROWS)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for item in source.infolist():
            if item.filename == _SHEET:
                z.writestr(_SHEET, head + filler + sheet[data_end:])
            else:
                z.writestr(item, source.read(item))
    return out.getvalue()


def test_the_bomb_is_what_the_report_describes() -> None:
    content = bomb()
    unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(content)).infolist())
    assert 3_000_000 < len(content) < 4_500_000
    assert 45_000_000 < unpacked < MAX_UNPACKED_BYTES


def test_reading_stops_at_the_row_limit_with_a_chinese_message() -> None:
    with pytest.raises(SheetError) as caught:
        read_rows(F.DEPARTMENTS, bomb())
    assert str(caught.value) == TOO_MANY_ROWS
    assert f"{MAX_SHEET_ROWS} 行" in TOO_MANY_ROWS


def test_a_sheet_just_under_the_limit_still_reads() -> None:
    """Blank formatted rows below the data (as the template itself has) are no problem."""
    source = zipfile.ZipFile(io.BytesIO(template(F.DEPARTMENTS)))
    sheet = source.read(_SHEET).decode()
    end = sheet.index("</sheetData>")
    rows = "".join(
        f'<row r="{r}"><c r="A{r}" s="0"/></row>' for r in range(203, MAX_SHEET_ROWS + 1)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in source.infolist():
            body = sheet[:end] + rows + sheet[end:] if item.filename == _SHEET else None
            z.writestr(item, body if body is not None else source.read(item))
    assert read_rows(F.DEPARTMENTS, out.getvalue()).rows == []  # only the sample row, ignored


def test_the_portal_answers_the_bomb_with_its_message_and_parses_it_off_the_loop(
    portal_client: TestClient, settings: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return read_rows(*args)

    monkeypatch.setattr(records, "read_rows", recording)
    who = b.make_applicant(settings, clock.now())
    sign_in(portal_client, who.username, who.password, "Hospital-2026")
    r = post_form(
        portal_client,
        "/my/departments/import",
        page="/my/departments",
        files={"file": ("科室.xlsx", bomb(), "application/octet-stream")},
    )
    assert r.status_code == 400
    assert "行数超过上限" in r.text and "分批导入" in r.text
    assert threads and all(name.startswith(cpu.THREAD_PREFIX) for name in threads)
    assert portal_client.get("/my/departments").status_code == 200  # the next request is served
