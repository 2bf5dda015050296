"""The logic of every rule of the catalogue, one typed predicate per rule id.

Importing this package registers them all in :data:`PREDICATES`.
"""

from __future__ import annotations

from imsp.supervision.predicates import prescriptions, records, staff, visits  # noqa: F401
from imsp.supervision.predicates.base import PREDICATES, Predicate

__all__ = ["PREDICATES", "Predicate"]
