"""What predicates see: stored records (:class:`Rec`), the records around them (:class:`Index`),
and what they report (:class:`Verdict`).

Predicates are plain synchronous functions over an in-memory :class:`Index`. The engine fills the
index for a whole batch of records with a handful of queries (``engine.load_index``); the "test
this rule" form fills it from pasted records (``engine.try_rule``). So a rule's logic never runs a
query of its own, and the same logic serves the upload stream, sweeps and the portal.

Times in records are Beijing time strings (数据标准 V1.0 §通用约定); predicates compare them as
naive Beijing datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from imsp.clock import BEIJING
from imsp.exchange.codec import decode
from imsp.standard.mask import mask
from imsp.standard.model import load_standard

__all__ = ["Index", "Rec", "Verdict", "as_date", "as_number", "as_time", "text"]

_IDENTIFIER: Final = re.compile(r"(cert_?id|card_?no|mobile|phone)$", re.IGNORECASE)

#: dataset code → the field holding its business time (the standard's ``columns.business_time``).
BUSINESS_TIME: Final[dict[str, str]] = {
    ds.code: ds.columns["business_time"]
    for ds in load_standard().datasets.values()
    if "business_time" in ds.columns
}


def text(value: Any) -> str:
    """A field value as a stripped string ('' for null / empty)."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def as_time(value: Any) -> datetime | None:
    """``yyyy-MM-dd[ HH:mm:ss]`` as a naive Beijing datetime; None if empty or malformed."""
    s = text(value)
    if not s:
        return None
    try:
        return datetime.fromisoformat(s) if len(s) > 10 else datetime.fromisoformat(s + " 00:00:00")
    except ValueError:
        return None


def as_date(value: Any) -> date | None:
    t = as_time(value)
    return t.date() if t is not None else None


def as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


@dataclass(slots=True)
class Rec:
    """One stored record (the current version of a business key)."""

    id: int
    institution_id: int
    dataset: str
    key: str
    version: int
    created_at: datetime  # first received by the platform (aware)
    #: the document, or its stored encoding (``imsp.exchange.codec``) until first read: a round
    #: of the worker reads many records only to find they need no evaluation (their own change
    #: is still queued), and decoding was most of what reading them cost
    doc: dict[str, Any] | bytes
    voided: bool = False
    visit_no: str | None = None  # the record table's typed column (数据标准 columns.visit_no)
    business_time: datetime | None = None  # the record table's typed column (aware, UTC)
    #: times parsed from ``data`` (by :meth:`time_of`, :attr:`when`): base records are read by
    #: thousands of others, and ``data`` never changes once loaded
    memo: dict[str, datetime | None] | None = field(default=None, compare=False, repr=False)

    @property
    def data(self) -> dict[str, Any]:
        """The record's document (decoded at first use)."""
        doc = self.doc
        if doc.__class__ is dict:
            return doc
        return self._decode()

    def _decode(self) -> dict[str, Any]:
        doc = self.doc
        if not isinstance(doc, dict):
            doc = self.doc = decode(bytes(doc))
        return doc

    def __getitem__(self, name: str) -> str:
        doc = self.doc
        if doc.__class__ is not dict:
            doc = self._decode()
        value = doc.get(name)
        if value.__class__ is str:  # most fields: no call to text()
            return value.strip()
        return text(value)

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def time_of(self, name: str) -> datetime | None:
        """Field ``name`` as a naive Beijing datetime (:func:`as_time`), parsed once."""
        memo = self.memo
        if memo is None:
            memo = self.memo = {}
        elif name in memo:
            return memo[name]
        t = memo[name] = as_time(self.data.get(name))
        return t

    def date_of(self, name: str) -> date | None:
        t = self.time_of(name)
        return t.date() if t is not None else None

    @property
    def when(self) -> datetime | None:
        """The business time (naive Beijing)."""
        f = BUSINESS_TIME.get(self.dataset)
        return self.time_of(f) if f else None

    @property
    def day(self) -> date | None:
        w = self.when
        return w.date() if w is not None else None

    def ref(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "key": self.key, "version": self.version}


def _by_key(rec: Rec) -> str:
    return rec.key


@dataclass(slots=True)
class Index:
    """The records a batch's predicates may look at, held in memory."""

    now: datetime  # aware
    grace: timedelta
    by_key: dict[tuple[int, str, str], Rec] = field(default_factory=dict)
    by_visit: dict[tuple[int, str], list[Rec]] = field(default_factory=dict)
    items: dict[tuple[int, str], list[Rec]] = field(default_factory=dict)
    agreements: dict[int, list[Rec]] = field(default_factory=dict)
    org_codes: set[str] = field(default_factory=set)  # registered institutions + organization keys
    institution_org: dict[int, str] = field(default_factory=dict)  # institution id → USCC
    #: answers of :meth:`visit` and :meth:`items_of` (every rule of a record asks again)
    _answers: dict[tuple[Any, ...], list[Rec]] = field(default_factory=dict, repr=False)

    def add(self, rec: Rec) -> None:
        """Index one record (a later call for the same key replaces it)."""
        k = (rec.institution_id, rec.dataset, rec.key)
        if k in self.by_key:
            return
        if self._answers:
            self._answers.clear()
        self.by_key[k] = rec
        if rec.voided:
            return
        if rec.visit_no:
            self.by_visit.setdefault((rec.institution_id, rec.visit_no), []).append(rec)
        if rec.dataset == "prescription_item":
            self.items.setdefault((rec.institution_id, rec["recipeID"]), []).append(rec)
        elif rec.dataset == "agreement" and rec["protocolType"] == "3" and rec["status"] == "1":
            # only 互联网诊疗知情同意书 in force are ever looked at (R17)
            self.agreements.setdefault(rec.institution_id, []).append(rec)
        elif rec.dataset == "organization":
            self.org_codes.add(rec.key)

    def get(self, inst: int, dataset: str, key: str) -> Rec | None:
        """The live (not voided) record of ``dataset`` with business key ``key``."""
        if not key:
            return None
        r = self.by_key.get((inst, dataset, key))
        return r if r is not None and not r.voided else None

    def visit(self, inst: int, visit_no: str, dataset: str) -> list[Rec]:
        """Live records of ``dataset`` belonging to visit (业务号) ``visit_no``, by key."""
        recs = self.by_visit.get((inst, visit_no)) if visit_no else None
        if not recs:  # the usual answer: predicates ask this ~10 times per record
            return []
        k = (inst, visit_no, dataset)
        found = self._answers.get(k)
        if found is None:  # kept for the batch (cleared when a record is added)
            found = [r for r in recs if r.dataset == dataset]
            if len(found) > 1:
                found.sort(key=_by_key)
            self._answers[k] = found
        return found

    def items_of(self, inst: int, recipe_id: str) -> list[Rec]:
        k = (inst, recipe_id)
        found = self._answers.get(k)
        if found is None:
            found = self._answers[k] = sorted(self.items.get(k, ()), key=_by_key)
        return found

    def organ_code(self, rec: Rec) -> str:
        """The organ a record belongs to: its ``organID`` (checked equal to the uploading
        institution's at upload), else the institution's own code."""
        return rec["organID"] or self.institution_org.get(rec.institution_id, "")

    def organization(self, rec: Rec) -> Rec | None:
        return self.get(rec.institution_id, "organization", self.organ_code(rec))

    @property
    def today(self) -> date:
        return self.now.astimezone(BEIJING).date()


@dataclass(slots=True)
class Verdict:
    """What one rule found about one record: problems (the evidence), missing references, and the
    other records it compared with. Empty means compliant."""

    subject: Rec
    problems: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    involved: dict[tuple[str, str], Rec] = field(default_factory=dict)
    due: datetime | None = None  # when a pending check must be decided (grace period end)

    def _problem(
        self, severity: str, fieldname: str, value: Any, message: str, rec: Rec | None
    ) -> None:
        r = rec or self.subject
        if value is not None and _IDENTIFIER.search(fieldname):
            value = mask(text(value))  # evidence is shown to people: never a full ID number
        if r is not self.subject:
            self.involve(r)
        self.problems.append(
            {
                "severity": severity,
                "dataset": r.dataset,
                "key": r.key,
                "field": fieldname,
                "value": value,
                "message": message,
            }
        )

    def violation(self, fieldname: str, value: Any, message: str, rec: Rec | None = None) -> None:
        self._problem("violation", fieldname, value, message, rec)

    def risk(self, fieldname: str, value: Any, message: str, rec: Rec | None = None) -> None:
        self._problem("risk", fieldname, value, message, rec)

    def lacks(self, dataset: str, fieldname: str, value: str) -> None:
        """The record refers (``fieldname`` = ``value``) to a ``dataset`` record not (yet) stored."""
        item = {"dataset": dataset, "field": fieldname, "key": value}
        if item not in self.missing:
            self.missing.append(item)

    def involve(self, rec: Rec) -> None:
        self.involved.setdefault((rec.dataset, rec.key), rec)

    @property
    def severity(self) -> str | None:
        if not self.problems:
            return None
        return "violation" if any(p["severity"] == "violation" for p in self.problems) else "risk"
