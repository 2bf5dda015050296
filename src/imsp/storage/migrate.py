"""Alembic glue: migrations live in ``imsp/storage/migrations/versions`` and run on both databases.

Each domain owns one migration branch off the foundation revision (``0001``), so domains can add
tables independently; ``upgrade`` applies every head.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from imsp.config import Settings
from imsp.exchange.partitions import ensure, is_partition


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("imsp.storage") / "migrations"))
    cfg.attributes["sync_url"] = settings.sync_url
    return cfg


def upgrade(settings: Settings, target: str = "heads") -> None:
    """Migrate the configured database to the newest schema (idempotent)."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), target)
    if not settings.is_sqlite:
        ensure_partitions(settings)


def ensure_partitions(settings: Settings) -> list[str]:
    """The monthly partitions of this month and the next ones (PostgreSQL; the worker does the
    same every hour): ``imsp db upgrade`` leaves a database ready to take uploads."""
    engine = create_engine(settings.sync_url)
    try:
        with engine.begin() as conn:
            return ensure(conn, now=datetime.now(UTC))
    finally:
        engine.dispose()


def unapplied_heads(settings: Settings) -> list[str]:
    """Migration heads of this code the database has not reached (empty when the schema is
    current — or ahead, see ``missing_heads``)."""
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return missing_heads(current)


@functools.cache
def _script() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("imsp.storage") / "migrations"))
    return ScriptDirectory.from_config(cfg)


@functools.cache
def missing_heads(current: frozenset[str]) -> list[str]:
    """This code's migration heads that the database (at revisions ``current``) lacks.

    A head is present when it, or a revision after it, is applied. A database holding a revision
    this code does not know is *ahead*: a newer release migrated it first during a rolling
    upgrade. Migrations are expand-then-contract, so the older code still runs on it, and nothing
    counts as missing."""
    script = _script()
    known: set[str] = set()
    for rev in current:
        try:
            known.update(r.revision for r in script.iterate_revisions(rev, "base"))
        except Exception:  # a revision of newer code: the database is ahead of this node
            return []
    return sorted(h for h in script.get_heads() if h not in known)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, other: object
) -> bool:
    """Alembic's schema comparison: the models describe partitioned tables by their parent, so
    the monthly partitions (and detached ones kept after archiving) are not compared."""
    if type_ == "table" and name is not None and is_partition(name):
        return False
    table = getattr(obj, "table", None)
    return not (table is not None and is_partition(str(getattr(table, "name", ""))))
