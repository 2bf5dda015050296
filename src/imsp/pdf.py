"""HTML → PDF for the platform's printable documents (验收报告, 备案登记表): WeasyPrint with the
Noto CJK fonts (fonts-noto-cjk, embedded as subsets) and one A4 page style.

WeasyPrint is imported only when a document is rendered. Rendering holds the CPU for a while:
call :func:`html_to_pdf` through ``imsp.cpu.offload`` (or another worker thread), never on the
event loop. ``imsp.standard.spec.pdf`` keeps its own copy of the font names: the standard package
imports nothing else from ``imsp``.
"""

from __future__ import annotations

from typing import Final

#: Serif body text as on official documents; sans for headings; both carry CJK.
SERIF: Final = '"Noto Serif CJK SC", serif'
SANS: Final = '"Noto Sans CJK SC", sans-serif'

#: A4 with page numbers in Chinese, black on white, tables with ruled cells that may break
#: between rows but not inside one. Documents add their own rules after this.
PAGE_CSS: Final = f"""
@page {{ size: A4; margin: 22mm 20mm 20mm 22mm;
  @bottom-center {{ content: "第 " counter(page) " 页 共 " counter(pages) " 页"; font: 9pt {SANS}; }} }}
body {{ font-family: {SERIF}; font-size: 10.5pt; line-height: 1.6; color: #000; }}
h1, h2 {{ font-family: {SANS}; page-break-after: avoid; }}
table {{ width: 100%; border-collapse: collapse; margin: 4pt 0; }}
th, td {{ border: 0.6pt solid #000; padding: 2.5pt 4pt; vertical-align: top; font-size: 9.5pt; }}
th {{ background: #eee; font-weight: bold; }}
tr {{ page-break-inside: avoid; }}
"""


def html_to_pdf(markup: str) -> bytes:
    """Render a complete HTML document to PDF bytes (CPU-heavy: off the event loop)."""
    from weasyprint import HTML  # heavy import, only where a document is rendered

    pdf: bytes = HTML(string=markup).write_pdf()
    return pdf
