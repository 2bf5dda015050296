"""Identity: institutions, their exchange credentials (appId/appSecret), portal users, the audit log."""
