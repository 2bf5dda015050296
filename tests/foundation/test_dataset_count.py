"""The number of datasets comes from the standard, never from prose: a 17th dataset must not leave
a stated count of upload services wrong somewhere. Generated text (``docs/standard``, the spec) computes it from
``load_standard()`` and is kept current by ``tests/standard/test_spec.py``; hand-written text
names no count at all."""

from __future__ import annotations

import re
from pathlib import Path

from imsp.standard.model import load_standard

ROOT = Path(__file__).resolve().parents[2]
#: Generated from the standard (and checked to be current) — the count there is computed.
GENERATED = (ROOT / "docs" / "standard",)
#: Files another branch is rewriting at the same time (none now).
PENDING: dict[Path, str] = {}
SUFFIXES = {".py", ".md", ".html", ".toml", ".txt"}


def _prose_files() -> list[Path]:
    roots = [ROOT / "src", ROOT / "docs", ROOT / "tests", ROOT / "bench", ROOT / "scripts"]
    files = [ROOT / "README.md", ROOT / "ARCHITECTURE.md"]
    for root in roots:
        files += [p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    return [
        p
        for p in files
        if p not in PENDING
        and p != Path(__file__).resolve()  # its own examples
        and not any(p.is_relative_to(g) for g in GENERATED)
    ]


def _count_mentions(text: str, n: int) -> list[str]:
    pattern = re.compile(
        rf"(?<![\d.\w]){n}\s*(?:个|项)?\s*(?:upload|上传|数据集|datasets?\b|services?\b|`POST)",
        re.IGNORECASE,
    )
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


def test_no_hand_written_text_states_the_number_of_datasets() -> None:
    n = len(load_standard().datasets)
    found = [
        f"{p.relative_to(ROOT)}: {line[:100]}"
        for p in _prose_files()
        for line in _count_mentions(p.read_text("utf-8"), n)
    ]
    assert found == []


def test_the_check_finds_a_stated_count() -> None:
    assert _count_mentions("token service, the 16 upload services", 16)
    assert _count_mentions("对 16 个上传服务各用测试", 16)
    assert not _count_mentions("WS 364.16 CV08.50.002", 16)
    assert not _count_mentions("max_body_bytes = 16 * 1024", 16)
