"""The body rows of the portal's list tables (``_table.html``), built in Python.

A year's overview shows ~5,000 cells (365 days, 150 hospitals); through Jinja's per-cell loop
that was the largest part of the page's CPU. The markup is the macro's: one ``<tr>`` per row,
``class="num"`` from column ``numeric_from`` on, the first cell a link when ``links`` gives one,
every value escaped (markupsafe's escaping; objects with ``__html__`` are already safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

_SPECIAL = frozenset("<>&'\"")


def _cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    text = str(value)
    return str(escape(text)) if not _SPECIAL.isdisjoint(text) else text


def rows_html(
    rows: Sequence[Sequence[Any]], links: Sequence[str] | None = None, numeric_from: int = 1
) -> Markup:
    """``<tr>`` elements of ``rows`` (no empty-table row: the macro adds it)."""
    out: list[str] = []
    for i, row in enumerate(rows):
        href = links[i] if links else ""
        cells = []
        for k, value in enumerate(row):
            shown = _cell(value)
            if k == 0 and href:
                shown = f'<a href="{escape(href)}">{shown}</a>'
            cells.append(
                f'<td class="num">{shown}</td>' if k >= numeric_from else f"<td>{shown}</td>"
            )
        out.append(f"<tr>{''.join(cells)}</tr>\n")
    return Markup("".join(out))  # noqa: S704 (every value is escaped above)
