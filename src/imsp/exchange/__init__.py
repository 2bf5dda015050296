"""数据上报 (data exchange): token service, the upload services (one per dataset), ingest and receipts."""
