"""Test-data generator (测试数据生成): valid, realistic, mutually consistent records for every dataset.

    >>> from imsp.standard.sample import generate, generate_all
    >>> rx = generate("prescription", 10, seed=1)            # or "uploadPrescriptionInfo"
    >>> everything = generate_all(10, seed=1)                 # dataset code → records, in upload order

Guarantees (each checked by ``tests/standard/test_sample*.py``):

* **Valid**: every record passes :func:`imsp.standard.validate.validator_for` and the dataset's
  published JSON Schema — they are built by walking the field definitions
  (:mod:`~imsp.standard.sample.engine`), with realistic values from a per-field realism layer
  (:mod:`~imsp.standard.sample.facts`).
* **Deterministic**: the same arguments give the same records, in any process.
* **Consistent** across the datasets generated with the same ``seed``, institution and ``count``:
  one institution (``organID`` = ``org_code`` everywhere), the same patients (GB 11643 ID numbers
  agreeing with birthday, sex and age), doctors and departments; prescriptions belong to real
  follow-up visits and their doctors, prescription items to their prescription and sum to its
  ``totalFee``; payments, appraisals, LIS/PACS reports refer to existing business records; times
  are ordered; business keys are unique.

* **Compliant** with every supervision rule (``imsp.supervision``, checked by
  ``tests/standard/test_sample_supervision.py``): generated test data uploaded during access
  confirmation (接入确认) raises no finding; violations in tests and benchmarks come only from
  explicit mutation.

``count`` is the number of business objects: it is the number of records for every dataset except
``prescription_item`` (all detail lines of ``count`` prescriptions), ``organization`` (one
record — its key is the institution itself) and ``doctor`` / ``department`` (at least two: every
institution has a prescriber and the pharmacist who reviews, and their departments).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import lru_cache
from typing import Any

from imsp.standard.demo import DEMO_ORG_CODE
from imsp.standard.model import Dataset, Standard, load_standard
from imsp.standard.sample.business import Business
from imsp.standard.sample.engine import Filler
from imsp.standard.sample.facts import FACTS, MINIMUMS, SINGLETONS, header
from imsp.standard.sample.world import SPAN_DAYS, SampleError, World, at

__all__ = [
    "DEFAULT_START",
    "SPAN_DAYS",
    "SampleError",
    "dependency_order",
    "generate",
    "generate_all",
]

#: First day of the generated business events (they span the following ``span_days`` days).
DEFAULT_START = date(2025, 6, 1)


@lru_cache(maxsize=4)
def _business(
    seed: int, org_code: str, org_name: str | None, bound: int, start: date, span_days: int
) -> Business:
    world = World(
        load_standard(), seed=seed, org_code=org_code, org_name=org_name, bound=bound,
        start=start, span_days=span_days,
    )  # fmt: skip
    return Business(world)


def _dataset(dataset: str | Dataset, std: Standard) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    try:
        return std.dataset(dataset)
    except KeyError:
        known = "、".join(d.code for d in std.ordered())
        raise SampleError(f"未知的数据集 {dataset!r}（可用：{known}，或其服务名）") from None


def _records(b: Business, ds: Dataset, count: int) -> Iterator[dict[str, Any]]:
    provider = FACTS.get(ds.code)
    filler = Filler(ds, b.w.std, anchor=at(b.w.start, 9))
    if ds.code in SINGLETONS:
        n = min(count, 1)
    else:
        n = max(count, MINIMUMS.get(ds.code, 0)) if count > 0 else 0
    for i in range(n):
        rng = b.w.rng(f"{ds.code}-record", i)
        facts_of = provider(b, i) if provider is not None else iter([header(b.w)])
        for facts in facts_of:
            yield filler.record(facts, rng)


def generate(
    dataset: str | Dataset,
    count: int,
    *,
    seed: int = 0,
    org_code: str = DEMO_ORG_CODE,
    org_name: str | None = None,
    start: date = DEFAULT_START,
    span_days: int = SPAN_DAYS,
) -> list[dict[str, Any]]:
    """``count`` records of ``dataset`` (short code, service name, path or object) for one
    institution, their business events on the ``span_days`` days from ``start`` (``1``: all on
    that day — registrations and payments made ahead of a visit may still fall up to two days
    before it). Raises :class:`SampleError` for an unknown dataset, an invalid ``org_code`` (it
    must be a valid unified social credit code) or ``span_days`` below 1."""
    if count < 0:
        raise SampleError("count 不能为负数")
    std = load_standard()
    ds = _dataset(dataset, std)
    b = _business(seed, org_code, org_name, max(count, 1), start, span_days)
    return list(_records(b, ds, count))


def generate_all(
    count: int,
    *,
    seed: int = 0,
    org_code: str = DEMO_ORG_CODE,
    org_name: str | None = None,
    start: date = DEFAULT_START,
    span_days: int = SPAN_DAYS,
) -> dict[str, list[dict[str, Any]]]:
    """Records of every dataset, keyed by dataset code, in :func:`dependency_order` (upload
    order); the arguments as for :func:`generate`."""
    std = load_standard()
    return {
        ds.code: generate(
            ds,
            count,
            seed=seed,
            org_code=org_code,
            org_name=org_name,
            start=start,
            span_days=span_days,
        )
        for ds in dependency_order(std)
    }


def dependency_order(std: Standard | None = None) -> list[Dataset]:
    """Datasets ordered so that each comes after those it references, base data (基本信息)
    first, otherwise by service number. Of two datasets referring to each other (department ↔
    doctor) the one with the lower rank goes first."""
    std = std or load_standard()
    rank = {d.code: (d.category != "基本信息", d.number) for d in std.datasets.values()}
    refs = {d.code: set(d.references) - {d.code} for d in std.datasets.values()}
    for code, targets in refs.items():
        for t in list(targets):
            if code in refs.get(t, set()) and rank[code] < rank[t]:
                targets.discard(t)
    done: list[Dataset] = []
    while refs:
        ready = [c for c, r in refs.items() if not r] or list(refs)
        code = min(ready, key=rank.__getitem__)
        done.append(std.datasets[code])
        del refs[code]
        for r in refs.values():
            r.discard(code)
    return done
