"""ARCHITECTURE.md's tree is the source tree: every package it lists exists, every package under
``src/imsp`` is listed, and every listed domain is covered by the import rules."""

from __future__ import annotations

import re

from tests.foundation.test_import_rules import DOMAINS, EDGES, SRC

DOC = SRC.parents[1] / "ARCHITECTURE.md"
_ENTRY = re.compile(r"^  (\w+)(/|\.py)\s")


def listed() -> tuple[set[str], set[str]]:
    """(packages, modules) named in the tree block of ARCHITECTURE.md."""
    text = DOC.read_text("utf-8")
    block = text.split("```", 2)[1]
    packages: set[str] = set()
    modules: set[str] = set()
    for line in block.splitlines():
        m = _ENTRY.match(line)
        if m:
            (packages if m.group(2) == "/" else modules).add(m.group(1))
    return packages, modules


def on_disk() -> tuple[set[str], set[str]]:
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    modules = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    return packages, modules


def test_every_listed_package_and_module_exists() -> None:
    packages, modules = listed()
    real_packages, real_modules = on_disk()
    assert packages - real_packages == set()
    assert modules - real_modules == set()


def test_every_package_and_module_is_listed() -> None:
    packages, modules = listed()
    real_packages, real_modules = on_disk()
    assert real_packages - packages == set()
    assert real_modules - modules == set()


def test_every_listed_package_is_covered_by_the_import_rules() -> None:
    packages, _ = listed()
    assert packages == DOMAINS | EDGES
    assert DOMAINS.isdisjoint(EDGES)


def test_the_tree_parser_reads_the_block() -> None:
    packages, modules = listed()
    assert {"standard", "exchange", "portal"} <= packages and "app" in modules
