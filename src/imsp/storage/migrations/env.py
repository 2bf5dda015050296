"""Alembic environment: the URL comes from IMSP settings (``alembic_config``), never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import imsp.storage.registry  # noqa: F401  (imports every domain's models)
from imsp.storage.base import Base
from imsp.storage.migrate import include_object

config = context.config
url = config.attributes["sync_url"]
engine = create_engine(url, poolclass=pool.NullPool)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
