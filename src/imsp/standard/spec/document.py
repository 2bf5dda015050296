"""A small document model and its two renderers: Markdown files and one self-contained HTML page.

The published spec is built once as a list of :class:`Part` (one Markdown file each) holding
blocks — headings, paragraphs, lists, tables, code. Inline text knows exactly two constructs,
so data text is never mistaken for markup elsewhere:

* ``` ``code`` ``` — a code span (single backticks);
* ``[label](#anchor)`` — a link to an anchor of any part (a heading's or an explicit one).

Markdown links become ``file.md#anchor`` across files; HTML links stay ``#anchor`` in the single
page. Output is deterministic: no timestamps, stable order, ``\\n`` line ends.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True, slots=True)
class Heading:
    level: int  # 1..4 within the part
    text: str
    anchor: str


@dataclass(frozen=True, slots=True)
class Para:
    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[str, ...]
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    anchor: str = ""  # an explicit anchor placed just before the table


@dataclass(frozen=True, slots=True)
class Code:
    text: str
    lang: str = ""


Block = Heading | Para | Bullets | Table | Code


@dataclass(slots=True)
class Part:
    """One Markdown file (``slug``.md) of the spec; in HTML, one section of the page."""

    slug: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def h(self, level: int, text: str, anchor: str) -> None:
        self.blocks.append(Heading(level, text, anchor))

    def p(self, text: str) -> None:
        self.blocks.append(Para(text))

    def ul(self, items: Sequence[str], *, ordered: bool = False) -> None:
        self.blocks.append(Bullets(tuple(items), ordered))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], anchor: str = "") -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(r) for r in rows), anchor))

    def code(self, text: str, lang: str = "") -> None:
        self.blocks.append(Code(text, lang))

    def anchors(self) -> Iterator[str]:
        for b in self.blocks:
            if isinstance(b, Heading) or (isinstance(b, Table) and b.anchor):
                yield b.anchor


# --------------------------------------------------------------------------- inline text

_INLINE: Final = re.compile(r"`([^`\n]+)`|\[([^\]\n]+)\]\(#([A-Za-z0-9_.:-]+)\)")


def _spans(text: str) -> Iterator[tuple[str, str, str]]:
    """(kind, text, anchor) spans: kind is "text", "code" or "link"."""
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            yield "text", text[pos : m.start()], ""
        if m.group(1) is not None:
            yield "code", m.group(1), ""
        else:
            yield "link", m.group(2), m.group(3)
        pos = m.end()
    if pos < len(text):
        yield "text", text[pos:], ""


def code(text: object) -> str:
    """``text`` as an inline code span (backticks inside are replaced, they cannot nest)."""
    return "`" + str(text).replace("`", "'") + "`"


def link(label: str, anchor: str) -> str:
    return f"[{label.replace(']', '］')}](#{anchor})"


_MD_ESCAPE: Final = str.maketrans({"\\": "\\\\", "*": "\\*", "<": "&lt;", ">": "&gt;", "_": "\\_"})


class Markdown:
    """Renders parts as GitHub-flavoured Markdown files."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.where = {a: p.slug for p in parts for a in p.anchors()}

    def inline(self, text: str, slug: str, *, cell: bool = False) -> str:
        out: list[str] = []
        for kind, s, anchor in _spans(text):
            if kind == "text":
                t = s.translate(_MD_ESCAPE)
            elif kind == "code":
                t = f"`{s}`"
            else:
                target = self.where.get(anchor)
                if target is None:
                    raise KeyError(f"unknown anchor #{anchor} in {slug}")
                href = f"#{anchor}" if target == slug else f"{target}.md#{anchor}"
                t = f"[{s.translate(_MD_ESCAPE)}]({href})"
            out.append(t)
        result = "".join(out)
        if cell:
            result = result.replace("|", "\\|").replace("\n", "<br>")
        return result

    def render(self, part: Part) -> str:
        lines: list[str] = []
        for b in part.blocks:
            if isinstance(b, Heading):
                lines += [
                    f'<a id="{b.anchor}"></a>',
                    "",
                    "#" * b.level + " " + self.inline(b.text, part.slug),
                    "",
                ]
            elif isinstance(b, Para):
                lines += [self.inline(b.text, part.slug), ""]
            elif isinstance(b, Bullets):
                for n, item in enumerate(b.items, 1):
                    mark = f"{n}." if b.ordered else "-"
                    lines.append(f"{mark} " + self.inline(item, part.slug).replace("\n", "\n  "))
                lines.append("")
            elif isinstance(b, Table):
                if b.anchor:
                    lines += [f'<a id="{b.anchor}"></a>', ""]
                lines.append(
                    "| " + " | ".join(self.inline(h, part.slug, cell=True) for h in b.header) + " |"
                )
                lines.append("|" + "|".join("---" for _ in b.header) + "|")
                for row in b.rows:
                    cells = (self.inline(c, part.slug, cell=True) for c in row)
                    lines.append("| " + " | ".join(cells) + " |")
                lines.append("")
            else:
                fence = "~~~~" if "```" in b.text else "```"
                lines += [fence + b.lang, b.text.rstrip("\n"), fence, ""]
        while lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines) + "\n"  # fmt: skip


class Html:
    """Renders all parts as one HTML page with a table of contents."""

    def inline(self, text: str) -> str:
        out: list[str] = []
        for kind, s, anchor in _spans(text):
            if kind == "text":
                out.append(html.escape(s, quote=False))
            elif kind == "code":
                out.append(f"<code>{html.escape(s, quote=False)}</code>")
            else:
                out.append(f'<a href="#{anchor}">{html.escape(s, quote=False)}</a>')
        return "".join(out).replace("\n", "<br>")

    def block(self, b: Block) -> str:
        if isinstance(b, Heading):
            level = min(b.level + 1, 6)  # h1 is the page title
            return f'<h{level} id="{b.anchor}">{self.inline(b.text)}</h{level}>'
        if isinstance(b, Para):
            return f"<p>{self.inline(b.text)}</p>"
        if isinstance(b, Bullets):
            tag = "ol" if b.ordered else "ul"
            items = "".join(f"<li>{self.inline(i)}</li>" for i in b.items)
            return f"<{tag}>{items}</{tag}>"
        if isinstance(b, Table):
            head = "".join(f"<th>{self.inline(h)}</th>" for h in b.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{self.inline(c)}</td>" for c in r) + "</tr>" for r in b.rows
            )
            ident = f' id="{b.anchor}"' if b.anchor else ""
            return f'<div class="t"{ident}><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
        lang = f' class="lang-{b.lang}"' if b.lang else ""
        return f"<pre><code{lang}>{html.escape(b.text.rstrip(chr(10)), quote=False)}</code></pre>"

    def page(self, title: str, parts: Sequence[Part], css: str) -> str:
        toc: list[str] = []
        body: list[str] = []
        for part in parts:
            body.append(f'<section id="part-{part.slug}">')
            for b in part.blocks:
                if isinstance(b, Heading) and b.level <= 2:
                    cls = "toc1" if b.level == 1 else "toc2"
                    toc.append(
                        f'<li class="{cls}"><a href="#{b.anchor}">{self.inline(b.text)}</a></li>'
                    )
                body.append(self.block(b))
            body.append("</section>")
        return (
            "<!DOCTYPE html>\n"
            '<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
            f'<nav class="toc"><h2>目录</h2><ul>{"".join(toc)}</ul></nav>\n'
            f'<main>\n<h1>{html.escape(title)}</h1>\n' + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
        )  # fmt: skip


CSS: Final = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.65 "Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",sans-serif;color:#1f2328;background:#fff}
nav.toc{position:fixed;top:0;left:0;bottom:0;width:290px;overflow:auto;padding:16px 12px;background:#f6f8fa;border-right:1px solid #d0d7de;font-size:13px}
nav.toc h2{margin:0 0 8px;font-size:15px}
nav.toc ul{list-style:none;margin:0;padding:0}
nav.toc li.toc2{padding-left:14px}
nav.toc a{color:#0b5394;text-decoration:none;display:block;padding:1px 0}
nav.toc a:hover{text-decoration:underline}
main{margin-left:290px;padding:24px 40px 80px;max-width:1280px}
h1{font-size:26px;border-bottom:2px solid #a51c1c;padding-bottom:8px;color:#a51c1c}
h2{font-size:22px;margin-top:40px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:18px;margin-top:28px}
h4,h5{font-size:16px;margin-top:20px}
code{font:13px/1.4 "DejaVu Sans Mono",Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;border-radius:3px}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:12px;overflow:auto;max-height:560px}
pre code{background:none;padding:0}
div.t{overflow-x:auto;margin:12px 0}
table{border-collapse:collapse;font-size:13px;min-width:60%}
th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#eef1f4;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
td code{white-space:nowrap}
@media print{nav.toc{display:none}main{margin:0;max-width:none}pre{max-height:none}}
@media (max-width:900px){nav.toc{position:static;width:auto;border-right:0}main{margin:0;padding:16px}}
""".strip()
