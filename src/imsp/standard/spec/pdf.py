"""The printable PDF of the whole spec (for the offline approval files): the same HTML page as
``/spec`` with a print stylesheet — A4, page numbers, a cover title, the Noto CJK fonts embedded.

WeasyPrint is imported lazily, so the hospital SDK (which uses ``imsp.standard``) does not need it.
Rendering is CPU-heavy (tens of seconds): call it from a command or a worker, never an event loop.
"""

from __future__ import annotations

from typing import Final

from imsp.standard.model import Standard, load_standard
from imsp.standard.spec import render_html

#: Print layout. Chinese text needs a CJK font; fonts-noto-cjk provides these (embedded as
#: subsets by WeasyPrint).
PRINT_CSS: Final = """
@page{size:A4;margin:18mm 14mm 18mm 14mm;
  @bottom-center{content:counter(page) " / " counter(pages);font:9pt "Noto Sans CJK SC",sans-serif;color:#555}
  @top-right{content:string(doctitle);font:8pt "Noto Sans CJK SC",sans-serif;color:#777}}
@page:first{@top-right{content:none}}
body{font:10pt/1.55 "Noto Serif CJK SC","Noto Sans CJK SC",serif}
main h1{string-set:doctitle content();font-size:20pt;margin-top:40mm}
nav.toc{display:none}
main{margin:0;padding:0;max-width:none}
section{break-before:page}
h1,h2,h3,h4{font-family:"Noto Sans CJK SC",sans-serif;break-after:avoid}
h2{font-size:15pt}h3{font-size:12pt}
code{font:8.5pt/1.35 "Noto Sans Mono CJK SC","DejaVu Sans Mono",monospace}
pre{white-space:pre-wrap;word-break:break-all;max-height:none;overflow:visible;font-size:8pt}
div.t{overflow:visible}
table{font-size:8pt;width:100%;min-width:0}
th{white-space:normal}
td code{white-space:normal;word-break:break-all}
td:first-child code{white-space:nowrap;word-break:normal}
section:first-of-type{break-before:auto}
tr{break-inside:avoid}
a{color:inherit;text-decoration:none}
"""


def render_pdf(std: Standard | None = None) -> bytes:
    """The whole spec as a PDF document (bytes)."""
    from weasyprint import HTML

    std = std or load_standard()
    # After the page's own <style>, so the print rules win the cascade (stylesheets passed to
    # write_pdf are user sheets and lose to the page's author sheet).
    page = render_html(std).replace("</head>", f"<style>{PRINT_CSS}</style>\n</head>", 1)
    out: bytes = HTML(string=page).write_pdf()
    return out


__all__ = ["PRINT_CSS", "render_pdf"]
