"""Storage: engine and sessions, the declarative base, migrations, the raw request archive."""
