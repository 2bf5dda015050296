"""Portal routes (filled in by the portal domain)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Register the portal routes on ``app``."""
