"""Connection limits of ``imsp serve``: what keeps one client from holding the event loop's
connections, file descriptors or log (issue 16 item 4).

* A request's head (request line and headers) must arrive within ``header_timeout_seconds`` of
  the connection opening — or of its first byte, on a kept-alive connection — and its body within
  ``body_timeout_seconds`` of the head; otherwise the connection is closed. An idle kept-alive
  connection is closed after ``keep_alive_seconds`` (uvicorn's own timer).
* At most ``max_connections`` connections per server and process; one more is closed at once,
  before it costs anything but its accept.
* Errors the event loop reports itself (``accept()`` out of file descriptors …) are logged once
  per message and interval with a count of the repeats, never once per attempt.

Built on uvicorn's httptools protocol: the hooks below only start and stop one timer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from imsp.config import ServerSettings

log = logging.getLogger("imsp.server")


class Throttled:
    """Log a message at most once per ``every`` seconds, then say how many were left out."""

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._seen: dict[str, tuple[float, int]] = {}

    def __call__(self, key: str, emit: Callable[[int], None]) -> None:
        now = self.clock()
        last, left_out = self._seen.get(key, (-math.inf, 0))
        if now - last < self.every:
            self._seen[key] = (last, left_out + 1)
            return
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        emit(left_out)


def loop_error_handler(
    throttled: Throttled | None = None,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An event-loop exception handler that logs each kind of error at most once an interval."""
    throttle = throttled or Throttled()

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")
        exc = context.get("exception")

        def emit(left_out: int) -> None:
            more = f" (repeated {left_out} times since last logged)" if left_out else ""
            log.error("%s%s", message, more, exc_info=exc if left_out == 0 else None)

        throttle(message, emit)

    return handle


_refusals = Throttled()


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head/body deadlines and the connection cap."""

    limits: ClassVar[ServerSettings]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            cap = self.limits.max_connections
            _refusals(
                "cap",
                lambda n: log.warning(
                    "connection refused: %d connections open (cap %d)%s",
                    cap,
                    cap,
                    f"; {n} more refused since last logged" if n else "",
                ),
            )
            transport.abort()
            return
        self._arm(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request
            self._arm(self.limits.header_timeout_seconds)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.limits.body_timeout_seconds)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: ServerSettings) -> type[GuardedHttp]:
    """The protocol class for ``uvicorn.Config(http=…)`` with ``limits``."""
    return type("GuardedHttpWithLimits", (GuardedHttp,), {"limits": limits})
