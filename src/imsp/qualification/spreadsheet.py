"""Excel (xlsx) templates and imports for departments and doctors (科室、人员信息批量导入).

The template is generated from the standard's dataset definition: row 1 the Chinese field names
(``*`` marks required ones), row 2 the field codes the importer maps columns by, row 3 a sample
record from the standard's examples (grey, italic; ignored by the importer while unchanged). A
second sheet explains every field, a third lists the code tables the fields use. All cells are
text-formatted so ID numbers keep every digit.

Reading is defensive: the upload must be a zip container of modest unpacked size before openpyxl
sees it; the sheet is streamed (openpyxl read-only mode) and reading stops as soon as it has seen
``MAX_SHEET_ROWS`` rows — empty ones included, so a file declaring ``A1:Z800000`` with hundreds of
thousands of empty rows costs a fraction of a second, not the server. At most ``MAX_ROWS`` data
rows are imported, and every problem is reported with its Excel row and column. Parsing is pure
CPU and never touches the database: callers run ``read_rows`` through ``imsp.cpu.offload``
(``roster.import_records`` does), which applies all rows or none.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from imsp.qualification.fields import Roster, standard

MAX_ROWS: Final = 2000
#: Rows read from the sheet at most, empty and header rows included (blank formatted rows of
#: the template and a little slack below the data are fine; a sheet of empty rows is not).
MAX_SHEET_ROWS: Final = MAX_ROWS + 1000
TOO_MANY_ROWS: Final = (
    f"Excel 文件的行数超过上限：最多读取 {MAX_SHEET_ROWS} 行（含空行），"
    f"每次最多导入 {MAX_ROWS} 行数据。请删除数据下方多余的空行，或分批导入"
)
MAX_UNPACKED_BYTES: Final = 50 * 1024 * 1024
_TEXT = "@"
_HEAD_FILL = PatternFill("solid", fgColor="DCE6F2")


@dataclass(frozen=True, slots=True)
class CellProblem:
    """One import problem: Excel row number (1-based), column letter, field name, message."""

    row: int
    column: str
    field: str
    msg: str


@dataclass(frozen=True, slots=True)
class SheetRow:
    row: int  # Excel row number
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sheet:
    rows: list[SheetRow]
    letters: dict[str, str]  # field code → the file's column letter


def _sample(roster: Roster) -> list[str]:
    return ["" if f.example is None else str(f.example) for f in roster.fields]


def template(roster: Roster) -> bytes:
    """The xlsx template for ``roster``, generated from the Data Standard."""
    fields = roster.fields
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"{roster.title}信息"
    for i, f in enumerate(fields, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(12, min(40, len(f.name) * 2 + 4))
        starred = roster.required(f) == "Y"
        head = ws.cell(row=1, column=i, value=f.name + (" *" if starred else ""))
        head.font = Font(bold=True, color="9C0006" if starred else "000000")
        head.fill = _HEAD_FILL
        head.alignment = Alignment(wrap_text=True, vertical="center")
        code = ws.cell(row=2, column=i, value=f.code)
        code.font = Font(size=9, color="808080")
        for r in range(3, 203):
            ws.cell(row=r, column=i).number_format = _TEXT
    for i, value in enumerate(_sample(roster), start=1):
        cell = ws.cell(row=3, column=i, value=value)
        cell.font = Font(italic=True, color="808080")
        cell.number_format = _TEXT
    ws.freeze_panes = "A3"

    notes = wb.create_sheet("填写说明")
    notes.append(["字段代码", "名称", "类型", "必填", "代码表", "说明"])
    notes.append(
        [
            "",
            "第 1 行为字段名称（* 为必填），第 2 行为字段代码（导入按此识别列，请勿修改），"
            "第 3 行灰色斜体为示例，未修改时导入自动忽略。多个代码以 | 连接；日期为 yyyy-MM-dd。",
        ]
    )
    tables = standard().tables
    used: list[str] = []
    for f in fields:
        required = {"Y": "是", "N": "否", "C": "条件必填"}[roster.required(f)]
        if roster.required(f) != f.required:
            required = "否（留空自动填写）"
        table = tables[f.table].title if f.table else ""
        if f.table and f.table not in used:
            used.append(f.table)
        notes.append([f.code, f.name, f.type_label, required, table, f.condition or f.desc or ""])
    for cell in notes[1]:
        cell.font = Font(bold=True)
        cell.fill = _HEAD_FILL
    for letter, width in zip("ABCDEF", (20, 26, 10, 10, 22, 80), strict=True):
        notes.column_dimensions[letter].width = width

    codes = wb.create_sheet("代码表")
    codes.append(["代码表", "代码", "名称"])
    for name in used:
        code_table = tables[name]
        for entry in code_table.entries:
            codes.append([code_table.title, entry.code, entry.name])
    for cell in codes[1]:
        cell.font = Font(bold=True)
        cell.fill = _HEAD_FILL
    codes.column_dimensions["A"].width = 24
    codes.column_dimensions["C"].width = 40

    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _cell_text(value: Any) -> str:
    """A cell as the text the user meant: whole numbers without ``.0``, dates as ``yyyy-MM-dd``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.hour or value.minute or value.second:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class SheetError(ValueError):
    """The file cannot be read as this roster's template (wrong format, missing columns)."""


def _bounded(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The streamed rows; ``SheetError`` once more than ``MAX_SHEET_ROWS`` have come."""
    for seen, row in enumerate(rows, start=1):
        if seen > MAX_SHEET_ROWS:
            raise SheetError(TOO_MANY_ROWS)
        yield row


def read_rows(roster: Roster, content: bytes) -> Sheet:
    """The data rows of an uploaded workbook, keyed by field code. Raises ``SheetError``."""
    if not content.startswith(b"PK\x03\x04"):
        raise SheetError("文件不是 Excel（.xlsx）格式，请使用页面提供的模板")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise SheetError("Excel 文件解压后过大")
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except SheetError:
        raise
    except Exception as exc:
        raise SheetError("无法读取 Excel 文件，请使用页面提供的模板（.xlsx）") from exc
    try:
        ws = wb.worksheets[0]
        rows = _bounded(ws.iter_rows(max_row=MAX_SHEET_ROWS + 1, values_only=True))
        names = [_cell_text(v) for v in next(rows, ())]
        codes = [_cell_text(v) for v in next(rows, ())]
        by_code = {f.code: f for f in roster.fields}
        by_name = {f.name: f for f in roster.fields}
        columns: dict[int, str] = {}
        for i, code in enumerate(codes):
            if code in by_code:
                columns[i] = code
        if not columns:  # no code row: map by the Chinese names of row 1
            for i, name in enumerate(names):
                f = by_name.get(name.rstrip(" *"))
                if f is not None:
                    columns[i] = f.code
        missing = [f.name for f in roster.fields if f.code not in columns.values()]
        if missing:
            raise SheetError("缺少列：" + "、".join(missing) + "。请使用页面提供的模板")
        sample = dict(zip((f.code for f in roster.fields), _sample(roster), strict=True))
        out: list[SheetRow] = []
        for number, raw in enumerate(rows, start=3):
            values = {
                code: _cell_text(raw[i]) if i < len(raw) else "" for i, code in columns.items()
            }
            if not any(values.values()) or values == sample:
                continue
            if len(out) >= MAX_ROWS:
                raise SheetError(f"一次最多导入 {MAX_ROWS} 行")
            out.append(SheetRow(number, values))
        return Sheet(out, {code: get_column_letter(i + 1) for i, code in columns.items()})
    finally:
        wb.close()
