"""The realism layer: field code → value for each dataset, read off the shared world.

Common blocks (header, patient, guardian, clinician — ``blocks.toml``) have one provider each
(:mod:`.blocks`); every dataset adds the codes only it has (:mod:`.basedata`, :mod:`.care`). A
provider returns plain Python values (``datetime``, ``date``, ``Decimal`` …);
:mod:`imsp.standard.sample.engine` puts them in wire form, fills every field the facts leave out
from its definition and applies the dataset's rules.

``FACTS`` maps a dataset code to a function yielding the facts of the records of business object
*i*: one record, or — for prescription items — every line of prescription *i*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from imsp.standard.sample import basedata, care
from imsp.standard.sample.blocks import BLOCK_KEYS, Facts, header
from imsp.standard.sample.business import Business
from imsp.standard.sample.world import MIN_STAFF

__all__ = ["BLOCK_KEYS", "FACTS", "MINIMUMS", "SINGLETONS", "Facts", "header"]

Provider = Callable[[Business, int], Facts]


def _one(p: Provider) -> Callable[[Business, int], Iterator[Facts]]:
    def each(b: Business, i: int) -> Iterator[Facts]:
        yield p(b, i)

    return each


#: dataset code → facts of business object *i* (one record, or several for prescription items).
FACTS: Final[dict[str, Callable[[Business, int], Iterator[Facts]]]] = {
    "organization": _one(basedata.organization),
    "department": _one(basedata.department),
    "doctor": _one(basedata.doctor),
    "patient": _one(basedata.patient),
    "register": _one(care.register),
    "outpatient": _one(care.outpatient),
    "prescription": _one(care.prescription),
    "prescription_item": care.prescription_items,
    "inspection": _one(care.inspection),
    "telemedicine": _one(care.telemedicine),
    "consult": _one(care.consult),
    "payment": _one(care.payment),
    "appraise": _one(care.appraise),
    "lis": _one(care.lis),
    "pacs": _one(care.pacs),
    "agreement": _one(basedata.agreement),
}
#: Datasets with a single record per institution (their business key is the institution).
SINGLETONS: Final = frozenset({"organization"})
#: Datasets with at least this many records (for any count ≥ 1): the staff every world has —
#: a prescriber and the reviewing pharmacist — and their departments (world.MIN_STAFF).
MINIMUMS: Final = {"doctor": MIN_STAFF, "department": MIN_STAFF}
