"""数据上报 (data exchange): token service, the 16 upload services, ingest and receipts."""
