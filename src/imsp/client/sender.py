"""The outbox's sender: takes batches from an :class:`~imsp.client.outbox.Outbox` and delivers them.

* ``drain()`` sends until nothing is pending or the platform cannot be reached; ``run()`` keeps
  draining until stopped, waiting with backoff (and ``Retry-After``) through outages.
* One sender per outbox file, across processes: the sender holds ``<outbox>.lock`` (an OS file lock,
  released by the kernel if the process dies), so every ``inflight`` record it finds on start is an
  orphan of a crashed sender and is sent again (harmless: the platform's upsert is idempotent).
* Failures are sorted by whose fault they are. Outage, 429, 5xx, a lost answer: the batch goes back
  to ``pending``, untouched. A record the platform rejects: ``parked`` with its errors. A request the
  platform refuses as a whole (e.g. too large): the batch is halved until the responsible record is
  alone, and that record is parked. Bad credentials: the batch goes back, and the error is reported.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from imsp.client.client import Client
from imsp.client.errors import (
    AuthError,
    ConfigurationError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    ServerError,
    TransportError,
)
from imsp.client.outbox import Outbox
from imsp.client.records import dataset as resolve

log = logging.getLogger("imsp.client")


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What one ``drain()`` did. ``error`` says why it stopped early (``None``: queue empty);
    ``retryable`` whether waiting helps (outage, rate limit) or a person must act (credentials)."""

    batches: int = 0
    delivered: int = 0
    parked: int = 0
    recovered: int = 0
    error: str | None = None
    retryable: bool = True
    retry_after: float | None = None
    busy: bool = False


class _FileLock:
    """An exclusive, non-blocking OS lock on a file (flock on POSIX, msvcrt on Windows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def acquire(self) -> bool:
        fh = open(self.path, "a+b")  # noqa: SIM115 (held for the lock's lifetime)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()).encode())
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the lock
            self._fh = None


class Sender:
    """Delivers one outbox through one client. Use ``with`` or call ``close()`` to free the lock."""

    def __init__(self, outbox: Outbox, client: Client, *, batch_size: int | None = None) -> None:
        self.outbox = outbox
        self.client = client
        self.batch_size = batch_size or client.batch_size
        self._flock = _FileLock(outbox.path.with_name(outbox.path.name + ".lock"))
        self._held = False
        self._mutex = threading.Lock()

    def close(self) -> None:
        with self._mutex:
            if self._held:
                self._flock.release()
                self._held = False

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire(self) -> int | None:
        """Take the lock (once); on taking it, recover orphans. ``None`` if another sender has it."""
        if self._held:
            return 0
        if not self._flock.acquire():
            return None
        self._held = True
        recovered = self.outbox.recover()
        if recovered:
            log.warning("outbox: %d in-flight records of a previous sender queued again", recovered)
        return recovered

    def drain(
        self,
        *,
        max_batches: int | None = None,
        progress: Callable[[DrainReport], None] | None = None,
    ) -> DrainReport:
        """Send pending records until none is left (or ``max_batches``), or a failure stops it."""
        with self._mutex:
            recovered = self._acquire()
            if recovered is None:
                return DrainReport(busy=True, error="另一个发送进程正在处理该出站队列")
            return self._drain(recovered, max_batches, progress)

    def _drain(
        self,
        recovered: int,
        max_batches: int | None,
        progress: Callable[[DrainReport], None] | None,
    ) -> DrainReport:
        batches = delivered = parked = 0
        size = self.batch_size

        def report(**kw: Any) -> DrainReport:
            return DrainReport(batches, delivered, parked, recovered, **kw)

        while max_batches is None or batches < max_batches:
            claim = self.outbox.claim(size)
            if claim is None:
                return report()
            try:
                receipt = self.client.upload_batch(resolve(claim.dataset), claim.records)
            except RequestRejected as exc:
                if len(claim.ids) > 1:  # bisect until the responsible record is alone
                    self.outbox.release(claim.ids, str(exc))
                    size = max(1, len(claim.ids) // 2)
                    continue
                self.outbox.park(claim.ids, msg_code=exc.code, msg=exc.msg)
                parked += 1
                batches += 1
                continue
            except (TransportError, ServerError, ProtocolError) as exc:
                self.outbox.release(claim.ids, str(exc))
                return report(error=str(exc))
            except RateLimited as exc:
                self.outbox.release(claim.ids, str(exc))
                return report(error=str(exc), retry_after=exc.retry_after)
            except (AuthError, ConfigurationError) as exc:
                self.outbox.release(claim.ids, str(exc))
                return report(error=str(exc), retryable=False)
            except BaseException:
                self.outbox.release(claim.ids, "发送中断")
                raise
            d, p = self.outbox.settle(claim, receipt)
            delivered += d
            parked += p
            batches += 1
            if progress is not None:
                progress(report())
        return report()

    def run(
        self,
        stop: threading.Event,
        *,
        idle: float = 5.0,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        on_report: Callable[[DrainReport], None] | None = None,
    ) -> None:
        """Drain until ``stop`` is set: every ``idle`` seconds when the queue is empty, with
        exponential backoff (at least ``Retry-After``) while the platform is unreachable."""
        rng = random.Random()  # noqa: S311 (jitter)
        failures = 0
        while not stop.is_set():
            try:
                result = self.drain()
            except (sqlite3.Error, OSError) as exc:  # a busy or full disk: wait, keep the queue
                log.exception("outbox: drain failed")
                result = DrainReport(error=f"本地出站队列暂不可用（{type(exc).__name__}: {exc}）")
            if on_report is not None:
                on_report(result)
            if result.error is None:
                failures = 0
                wait = idle
            else:
                failures += 1
                ceiling = min(max_backoff, backoff * 2 ** min(failures, 20))
                wait = max(result.retry_after or 0.0, rng.uniform(ceiling / 2, ceiling))
                log.warning("outbox: %s; next attempt in %.1fs", result.error, wait)
            stop.wait(wait)
