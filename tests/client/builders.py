"""Test data for the SDK tests: the standard's own generator (``imsp.standard.sample``), so what the
SDK sends is what a hospital following 第四章 would send."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from imsp.config import Settings
from imsp.standard.demo import DEMO_ORG_CODE
from imsp.standard.sample import generate


def sample(dataset: str, count: int, *, seed: int = 1, org_code: str = DEMO_ORG_CODE) -> list[Any]:
    return generate(dataset, count, seed=seed, org_code=org_code)


def stored(settings: Settings, dataset: str | None = None) -> list[tuple[str, str, int]]:
    """(dataset, key, version) of every record the platform holds, in key order."""
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            sql = "SELECT dataset, key, version FROM record"
            params: dict[str, str] = {}
            if dataset is not None:
                sql += " WHERE dataset = :ds"
                params["ds"] = dataset
            rows = conn.execute(text(sql + " ORDER BY dataset, key"), params).all()
    finally:
        engine.dispose()
    return [(r[0], r[1], r[2]) for r in rows]


def logged_codes(settings: Settings) -> list[int]:
    """The gateway code of every request in the exchange log, oldest first."""
    engine = create_engine(settings.sync_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT code FROM exchange_log ORDER BY at, id")).all()
    finally:
        engine.dispose()
    return [r[0] for r in rows]
