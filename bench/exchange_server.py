"""ASGI factory of the exchange service for ``uvicorn --factory`` (used by bench_ingest.py).

Settings come from the environment (``IMSP_DATABASE_URL``, ``IMSP_EXCHANGE__BENCH_ECHO`` …), so
uvicorn can start several worker processes, each building its own app.
"""

from __future__ import annotations

from fastapi import FastAPI

from imsp.app import create_exchange_app
from imsp.config import Settings
from imsp.server import settle


def create() -> FastAPI:
    app = create_exchange_app(Settings())
    settle()  # what `imsp serve` does at start-up
    return app
