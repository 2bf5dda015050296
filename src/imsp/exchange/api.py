"""HTTP edge of the exchange service (filled in by the exchange domain)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Register the exchange routes on ``app``."""
