"""Time as a dependency: every component asks a ``Clock``, so tests can move time (token expiry)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

#: 北京时间 — the standard's datetimes are Beijing time (数据标准 V1.0 §通用约定).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(BEIJING)


class FrozenClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, 0, tzinfo=BEIJING)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


def format_datetime(value: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time."""
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
