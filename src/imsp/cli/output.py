"""Terminal output of the hospital-side commands: aligned tables (CJK-aware) and masking.

Printed output never shows a resident ID number in full (《个人信息保护法》第五十一条: 采取去标识化等
安全技术措施): any 18-character ID number in a message or a table cell is masked by the one rule of
``imsp.standard.mask`` (``130102********123X``). Files a person asked for (``--rejected``,
``--output``) keep the data as it is, so it can be fixed. :func:`table` is the CLI's one table
renderer (CJK-aware: a wide character takes two columns).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import click

from imsp.client.receipt import Receipt
from imsp.standard.mask import mask_text


def width(text: str) -> int:
    """Display columns of ``text`` in a terminal: East Asian wide and full-width take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, n: int) -> str:
    return text + " " * (n - width(text))


def _cut(text: str, n: int) -> str:
    if width(text) <= n:
        return text
    out = ""
    for c in text:
        if width(out + c) > n - 1:
            break
        out += c
    return out + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_col: int = 60) -> str:
    """A plain-text table; cells are masked and cut to ``max_col`` display columns."""
    cells = [[_cut(mask_text(str(c)), max_col) for c in row] for row in rows]
    widths = [width(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], width(c))
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip(), line]
    out += [
        "  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(out)


def echo_receipt(receipt: Receipt, *, title: str, elapsed: float | None, show: int = 10) -> None:
    """The summary table of one upload (or offline validation), then why records were rejected."""
    headers = ["数据集", "记录数", "通过", "新增", "更新", "拒绝"]
    row: list[object] = [
        receipt.dataset,
        receipt.total,
        receipt.success,
        receipt.created,
        receipt.updated,
        receipt.fail,
    ]
    if elapsed is not None:
        headers.append("耗时")
        row.append(f"{elapsed:.1f}s")
    click.echo(title)
    click.echo(table(headers, [row]))
    rejected = receipt.rejected
    if not rejected:
        return
    reasons: dict[tuple[str, str], int] = {}
    for r in rejected:
        for e in r.errors or ():
            reasons[(e.code, e.field)] = reasons.get((e.code, e.field), 0) + 1
        if not r.errors:
            reasons[(str(r.msg_code), "")] = reasons.get((str(r.msg_code), ""), 0) + 1
    click.echo("\n拒绝原因：")
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    click.echo(table(["问题代码", "字段", "记录数"], [(c, f or "-", n) for (c, f), n in top]))
    click.echo(f"\n被拒绝的记录（前 {min(show, len(rejected))} 条，共 {len(rejected)} 条）：")
    for r in rejected[:show]:
        click.echo(mask_text(f"  序号 {r.index}  业务主键 {r.key or '-'}  {r.msg_code} {r.msg}"))
        for e in r.errors[:5]:
            click.echo(mask_text(f"    - {e.field or '记录'}：{e.msg}"))
        if len(r.errors) > 5:
            click.echo(f"    - ……另有 {len(r.errors) - 5} 个问题")
