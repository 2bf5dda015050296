"""Charts as server-rendered SVG (卫生专网内无互联网: no script, no chart library, no CDN).

Each function returns a small, self-contained ``<svg>`` with a ``<title>`` and an ``aria-label``;
pages always show the same numbers in a table beside the chart. Text inherits the page's CJK
font. Values are escaped; nothing from the input reaches the markup unescaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from markupsafe import Markup

BLUE: Final = "#1d4f91"
RED: Final = "#b42318"
GRID: Final = "#d9dfe7"
INK: Final = "#5f6b7a"


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 × 10^n at or above ``value`` (axis top)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"


def bars(title: str, items: Sequence[tuple[str, float]], *, width: int = 520) -> Markup:
    """Horizontal bars, one per labelled value (e.g. records per dataset)."""
    row, label_w, right = 26, 150, 70
    height = 30 + row * max(1, len(items))
    top = _nice_max(max((v for _, v in items), default=0))
    plot = width - label_w - right
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = 10 + i * row
        w = plot * value / top if top else 0
        shown = label if len(label) <= 10 else label[:9] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{escape(shown)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{BLUE}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12" '
            f'fill="{INK}">{escape(_fmt(value))}</text>'
        )
    if not items:
        parts.append(
            f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="13" '
            f'fill="{INK}">暂无数据</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated value is escaped above)


def columns(
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    width: int = 960,
    height: int = 220,
    highlight: frozenset[str] = frozenset(),
) -> Markup:
    """Vertical columns over time (e.g. records per day); ``highlight`` labels drawn in red
    (silent days). Every 7th label is written under the axis to stay readable."""
    left, bottom, top_pad = 56, 28, 12
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = _nice_max(max((v for _, v in items), default=0))
    n = max(1, len(items))
    step = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        value = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{INK}">{escape(_fmt(value))}</text>'
        )
    label_every = max(1, n // 8)
    for i, (label, value) in enumerate(items):
        h = plot_h * value / top if top else 0
        x = left + i * step
        color = RED if label in highlight else BLUE
        parts.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{top_pad + plot_h - h:.1f}" '
            f'width="{max(1.0, step * 0.7):.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(label)}：{escape(_fmt(value))}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'font-size="11" fill="{INK}">{escape(label[5:] if len(label) == 10 else label)}'
                "</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated value is escaped above)
