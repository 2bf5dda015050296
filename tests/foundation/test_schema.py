"""The Alembic migrations and the ORM models describe the same schema, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from imsp.config import Settings
from imsp.storage import migrate, registry  # noqa: F401
from imsp.storage.base import Base


def test_migrations_match_models(settings: Settings) -> None:
    engine = create_engine(settings.sync_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": migrate.include_object}
        )
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []


def test_database_is_at_every_migration_head(settings: Settings) -> None:
    assert migrate.unapplied_heads(settings) == []
