"""监管 (supervision): the rule catalogue's predicates over uploaded data, findings and their workflow.

* :mod:`~imsp.supervision.predicates` — one small typed function per rule of the standard's
  catalogue (``imsp.standard.ruleset``), bound to the rule id.
* :mod:`~imsp.supervision.engine` — evaluates rules over stored records (incrementally, after each
  upload, and in sweeps), order-independently: a rule lacking the other side of a reference is
  *pending* until it arrives.
* :mod:`~imsp.supervision.findings` — the finding workflow (one transition table in
  :mod:`~imsp.supervision.workflow`): confirm, dismiss, rectify, answer, close, reopen.
* :mod:`~imsp.supervision.quality` — data quality and volume per institution, dataset and day,
  kept as rollups (:mod:`~imsp.supervision.rollup_models`) that the regulator's pages read.
"""
