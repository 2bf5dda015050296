"""监管规则 and data quality (supervision): rules as data run over stored records (fed by the
exchange change feed, ``imsp.exchange.changes``), findings, metrics. Modules are added by the
supervision work."""
