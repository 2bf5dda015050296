"""Binding of predicates to rule ids (one predicate per rule of the catalogue, and vice versa)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final

from imsp.supervision.facts import Index, Rec, Verdict

Check = Callable[[Rec, Index, Verdict], None]


@dataclass(frozen=True, slots=True)
class Predicate:
    """A rule's logic: ``check`` judges one record of one of the ``subjects`` datasets."""

    rule_id: str
    subjects: tuple[str, ...]
    check: Check


PREDICATES: Final[dict[str, Predicate]] = {}

#: Datasets of business records (业务数据), as opposed to base data (基本信息).
BUSINESS: Final = (
    "register", "inspection", "telemedicine", "outpatient", "prescription", "payment",
    "appraise", "consult", "lis", "pacs",
)  # fmt: skip


def predicate(rule_id: str, *subjects: str) -> Callable[[Check], Check]:
    """Register ``fn`` as the logic of ``rule_id``, evaluated on records of ``subjects``."""

    def bind(fn: Check) -> Check:
        if rule_id in PREDICATES:
            raise ValueError(f"rule {rule_id} already has a predicate")
        PREDICATES[rule_id] = Predicate(rule_id, tuple(subjects), fn)
        return fn

    return bind


def years_before(d: date, years: int) -> date:
    """``d`` moved back by ``years`` (29 February becomes 28 February)."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def full_years(born: date, on: date) -> int:
    """实足年龄: completed years from ``born`` to ``on``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
