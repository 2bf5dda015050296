"""The published interface spec (数据接口规范), generated from the Data Standard's data files.

《河北省互联网医疗服务监管平台数据接口规范（IMSP 版）》 in the shape of an official appendix:
1 概述, 2 授权码获取服务, 3 the upload services (field tables with example values, rules,
design decisions, generated example requests and the receipts the platform's validator gives for
them), 4 代码表, 5 错误代码, 6 JSON Schema 与自定义格式, 7 监管规则, 8 一次在线复诊产生哪些数据, 9 客户端示例,
附录 (version, compatibility, change log). Renderings of one document:

* :func:`render_markdown` — ``{file name: text}``, written to ``docs/standard/`` by
  ``imsp standard docs`` (:func:`write_docs`; :func:`stale_docs` says what is out of date);
* :func:`render_html` — one self-contained page (own CSS, no external assets), served by the
  portal at ``/spec``.

Deterministic: the same standard gives byte-identical output (no timestamps).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from imsp.standard.model import Standard, load_standard
from imsp.standard.spec import content, guide, services, video
from imsp.standard.spec.document import CSS, Heading, Html, Markdown, Part, link

__all__ = [
    "CSS",
    "css_sha256",
    "parts",
    "render_html",
    "render_markdown",
    "stale_docs",
    "write_docs",
]


def parts(std: Standard | None = None) -> list[Part]:
    """The spec's parts in reading order; the first is the index (README)."""
    std = std or load_standard()
    index = content.readme(std)
    services_intro = Part("3-services", "3 上传服务")
    services_intro.h(1, "3 上传服务", "services")
    services_intro.p(
        f"{len(std.datasets)} 个上传服务的请求方式、请求头与参数相同（见 "
        + link("1.3 传输与处理", "transport")
        + "），各服务的节点见下列各节。每个服务的“设计说明”列出本规范相对于天津市监管接口规范等"
        "参考规范和本规范编制初稿（字段清单草案）所作的取舍及理由。"
    )
    singletons = {"organization"}
    # The one list of chapters, in reading order. A new chapter (监管规则, 视频调阅, …) is one more
    # entry here; numbered chapters take their number from their position after chapter 6.
    extra: list[Callable[[Standard, int], Part]] = [
        guide.supervision_rules,
        guide.flow,
        lambda _, n: guide.clients(n),
        lambda _, n: video.part(n),
    ]
    body = [
        content.overview(std),
        content.token(),
        services_intro,
        *(
            services.service_part(ds, std, n, singleton=ds.code in singletons,
                                  max_records=content.MAX_RECORDS)
            for n, ds in enumerate(std.ordered(), 1)
        ),
        services.codes_part(std),
        content.errors(),
        content.schema(std),
        *(chapter(std, n) for n, chapter in enumerate(extra, 7)),
        guide.appendix(std),
    ]  # fmt: skip
    content.toc(std, body, index)
    return [index, *body]


def _shifted(part: Part) -> Part:
    """The part with its headings moved up so that its first heading is a level-1 heading."""
    first = next(b.level for b in part.blocks if isinstance(b, Heading))
    if first == 1:
        return part
    blocks = [
        Heading(b.level - first + 1, b.text, b.anchor) if isinstance(b, Heading) else b
        for b in part.blocks
    ]
    return Part(part.slug, part.title, blocks)


def _markdown(std: Standard) -> dict[str, str]:
    ps = parts(std)
    md = Markdown(ps)
    return {f"{p.slug}.md": md.render(_shifted(p)) for p in ps}


@cache
def _default_markdown() -> dict[str, str]:
    return _markdown(load_standard())


def render_markdown(std: Standard | None = None) -> dict[str, str]:
    """Every Markdown file of the spec: ``{"README.md": …, "1-overview.md": …, …}``."""
    return dict(_default_markdown() if std is None else _markdown(std))


def _html(std: Standard) -> str:
    index, *rest = parts(std)
    # The page's <h1> is the title and its side bar the table of contents: drop the index's own.
    blocks = index.blocks[1:]
    toc = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.anchor == "toc")
    cover = Part(index.slug, index.title, blocks[:toc] + blocks[toc + 2 :])
    return Html().page(std.title, [cover, *rest], CSS)


@cache
def _default_html() -> str:
    return _html(load_standard())


def render_html(std: Standard | None = None) -> str:
    """The whole spec as one HTML page; its only style is the inline :data:`CSS`."""
    return _default_html() if std is None else _html(std)


def css_sha256() -> str:
    """``'sha256-…'`` source of the inline stylesheet, for a Content-Security-Policy."""
    digest = hashlib.sha256(CSS.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def write_docs(out: Path, std: Standard | None = None) -> list[Path]:
    """Write the Markdown files to ``out`` (created if needed) and delete other ``*.md`` files
    there — the directory holds generated files only. Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = render_markdown(std)
    for old in out.glob("*.md"):
        if old.name not in files:
            old.unlink()
    written = []
    for name, text in files.items():
        path = out / name
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8", newline="\n")
        written.append(path)
    return written


def stale_docs(out: Path, std: Standard | None = None) -> list[str]:
    """Names of the files in ``out`` that differ from what :func:`write_docs` would write
    (missing, changed, or no longer generated). Empty when the docs are current."""
    files = render_markdown(std)
    stale = [
        name
        for name, text in files.items()
        if not (out / name).exists() or (out / name).read_text("utf-8") != text
    ]
    stale += [p.name for p in sorted(out.glob("*.md")) if p.name not in files]
    return stale
