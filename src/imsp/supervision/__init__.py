"""监管 (supervision): rules over the uploaded data, findings, data quality and daily rollups."""
