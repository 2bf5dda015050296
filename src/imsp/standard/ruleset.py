"""The supervision rule catalogue (监管规则目录) as typed, immutable data.

The catalogue lives in the standard's data (``data/<version>/supervision-rules.toml``) so that the
published interface spec and the regulator's portal show exactly the rules the platform checks.
Each rule's *logic* is a predicate in :mod:`imsp.supervision` bound to the rule's id; this module
only loads and cross-checks the data (ids, severities, dataset codes), so a mistake in the file
fails at start-up, never during evaluation.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final, Literal

from imsp.standard.model import StandardDataError, load_standard

__all__ = [
    "SEVERITY_LABELS",
    "RuleCatalogue",
    "Severity",
    "SupervisionRule",
    "load_rules",
]

Severity = Literal["violation", "risk"]

#: Chinese labels of the severities, as shown in the spec and the portal.
SEVERITY_LABELS: Final[dict[str, str]] = {"violation": "违规", "risk": "风险提示"}

_RULE_KEYS: Final = frozenset(
    {"id", "name", "citation", "citation_approx", "severity", "datasets", "version", "text"}
)
_ID = re.compile(r"R\d{2}")


@dataclass(frozen=True, slots=True)
class SupervisionRule:
    """One machine-checkable supervision rule (domain.md §D)."""

    id: str  # R01 …
    name: str
    citation: str
    citation_approx: bool  # the article number is not verified: shown as 条款号待核实
    severity: Severity  # the strongest severity the rule records
    datasets: tuple[str, ...]  # dataset codes it reads, the evaluated one first
    version: int
    text: str  # what exactly is checked, in Chinese

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABELS[self.severity]

    @property
    def citation_display(self) -> str:
        """The citation as published: approximate article numbers are marked, never asserted."""
        return f"{self.citation}（条款号待核实）" if self.citation_approx else self.citation


@dataclass(frozen=True, slots=True)
class RuleCatalogue:
    """The rules of one standard version, in id order."""

    version: str
    title: str
    rules: tuple[SupervisionRule, ...]

    def __iter__(self) -> Iterator[SupervisionRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, rule_id: object) -> bool:
        return any(r.id == rule_id for r in self.rules)

    def __getitem__(self, rule_id: str) -> SupervisionRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)


def _parse_rule(raw: dict[str, object], datasets: frozenset[str], where: str) -> SupervisionRule:
    unknown = set(raw) - _RULE_KEYS
    missing = _RULE_KEYS - set(raw)
    if unknown or missing:
        raise StandardDataError(
            f"{where}: unknown keys {sorted(unknown)}, missing {sorted(missing)}"
        )
    rid = raw["id"]
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise StandardDataError(f"{where}: id must look like R01, got {rid!r}")
    where = f"{where} {rid}"
    for k in ("name", "citation", "text"):
        v = raw[k]
        if not isinstance(v, str) or not v.strip():
            raise StandardDataError(f"{where}: `{k}` must be a non-empty string")
    severity = raw["severity"]
    if severity not in SEVERITY_LABELS:
        raise StandardDataError(f"{where}: severity must be violation or risk, got {severity!r}")
    version = raw["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StandardDataError(f"{where}: version must be a positive integer")
    if not isinstance(raw["citation_approx"], bool):
        raise StandardDataError(f"{where}: citation_approx must be true or false")
    ds = raw["datasets"]
    if not isinstance(ds, list) or not ds or not all(isinstance(d, str) for d in ds):
        raise StandardDataError(f"{where}: datasets must be a non-empty list of dataset codes")
    bad = sorted(set(ds) - datasets)
    if bad:
        raise StandardDataError(f"{where}: unknown datasets {bad}")
    return SupervisionRule(
        id=rid,
        name=str(raw["name"]),
        citation=str(raw["citation"]),
        citation_approx=bool(raw["citation_approx"]),
        severity="violation" if severity == "violation" else "risk",
        datasets=tuple(ds),
        version=version,
        text=str(raw["text"]),
    )


def parse_rules(
    text: str, *, datasets: frozenset[str], where: str = "supervision-rules.toml"
) -> RuleCatalogue:
    """Parse and check a catalogue file's text (``datasets``: the dataset codes it may name)."""
    raw = tomllib.loads(text)
    items = raw.get("rules")
    if not isinstance(items, list) or not items:
        raise StandardDataError(f"{where}: needs [[rules]]")
    rules = tuple(_parse_rule(r, datasets, where) for r in items)
    ids = [r.id for r in rules]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise StandardDataError(f"{where}: duplicate rule ids {dup}")
    if ids != sorted(ids):
        raise StandardDataError(f"{where}: rules must be listed in id order")
    return RuleCatalogue(
        version=str(raw.get("version", "")), title=str(raw.get("title", "")), rules=rules
    )


@cache
def load_rules(version: str = "v1") -> RuleCatalogue:
    """Load (once per process) and check the supervision rule catalogue of a standard version."""
    standard = load_standard(version)
    text = (
        resources.files("imsp.standard")
        .joinpath("data", version, "supervision-rules.toml")
        .read_text("utf-8")
    )
    return parse_rules(text, datasets=frozenset(standard.datasets))
