"""Pre-fork supervision for ``imsp serve exchange|portal|worker --workers N``.

The parent does everything that can fail once and loudly — start-up checks, binding the port
(``imsp.server.bind``: ``IPPROTO_TCP`` so accepted connections get TCP_NODELAY), loading the
standard and freezing it (``imsp.server.settle``: the children share those pages copy-on-write)
— and then forks N children that each run the same server code as ``imsp serve`` on the
inherited socket (``imsp.server.serve_role``: the guarded protocol, HTTPS, graceful shutdown).
The kernel hands each new connection to one of the processes waiting in ``accept()``.

The parent then only supervises, synchronously, with every signal it cares about blocked and
taken with ``sigtimedwait`` (no handler races):

* a child that exits on its own (a crash, ``kill -9``, the OOM killer) is started again — at once,
  or, when it died within ``YOUNG_SECONDS`` of starting, after a pause that doubles from 1 s up
  to 30 s while it keeps dying young;
* SIGTERM / SIGINT: the parent closes its copy of the listening socket and sends SIGTERM to each
  child; each stops accepting (so once all have, new connections are refused), lets requests in
  flight finish (``server.shutdown_seconds``), and exits; stragglers get SIGKILL after that;
* SIGHUP: a rolling restart — N new children start, and each one that is ready retires one old
  child, so the port never stops answering (how a renewed certificate is picked up).

With ``--workers N`` > 1 and no ``PROMETHEUS_MULTIPROC_DIR`` in the environment, a fresh
temporary directory is created for the children's metrics files (prometheus_client's
multiprocess mode) and removed on exit; each child that ends is marked dead there.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imsp.metrics import multiprocess_mode, prepare_multiprocess_dir

log = logging.getLogger("imsp.server")

#: Environment variable of prometheus_client's multiprocess mode.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: A child that dies younger than this is restarted after a growing pause.
YOUNG_SECONDS = 10.0
MAX_PAUSE_SECONDS = 30.0

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
_PID = struct.Struct("=i")

#: What a child runs: its slot number and a callable to announce it is serving; returns the
#: child's exit status.
Target = Callable[[int, Callable[[], None]], int]


@dataclass(slots=True)
class _Child:
    slot: int
    started: float
    ready: bool = False
    retiring: bool = False  # to be replaced (SIGHUP): never restarted when it ends


@dataclass(slots=True)
class Supervisor:
    """Run ``target`` in ``workers`` forked children until SIGTERM/SIGINT (see the module doc).

    ``on_ready`` runs once, when every first child announced it is serving; ``on_stop`` when
    shutdown begins (the parent closes its listening sockets there)."""

    workers: int
    target: Target
    stop_seconds: float
    on_ready: Callable[[], None] = lambda: None
    on_stop: Callable[[], None] = lambda: None
    children: dict[int, _Child] = field(default_factory=dict)
    _pending: dict[int, float] = field(default_factory=dict)  # slot -> when to start it again
    _pause: dict[int, float] = field(default_factory=dict)  # slot -> its last restart pause
    _announced: bool = False

    def run(self) -> int:
        """Supervise until shut down; the exit status (0 unless children had to be killed)."""
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        ready_r, ready_w = os.pipe()
        os.set_blocking(ready_r, False)
        try:
            for slot in range(self.workers):
                self._spawn(slot, old_mask, ready_r, ready_w)
            return self._loop(old_mask, ready_r, ready_w)
        finally:
            os.close(ready_r)
            os.close(ready_w)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _loop(self, old_mask: set[int | signal.Signals], ready_r: int, ready_w: int) -> int:
        stopping_since: float | None = None
        while True:
            info = signal.sigtimedwait(_SIGNALS, 0.25)
            sig = info.si_signo if info is not None else None
            self._read_ready(ready_r)
            self._reap(restart=stopping_since is None)
            if sig in (signal.SIGTERM, signal.SIGINT) and stopping_since is None:
                stopping_since = time.monotonic()
                _notify("STOPPING=1")
                self.on_stop()
                self._pending.clear()
                self._signal_all(signal.SIGTERM)
            elif sig == signal.SIGHUP and stopping_since is None:
                log.warning("SIGHUP: replacing the %d worker processes one by one", self.workers)
                for c in self.children.values():
                    c.retiring = True
                for slot in range(self.workers):
                    self._spawn(slot, old_mask, ready_r, ready_w)
            if stopping_since is not None:
                if not self.children:
                    return 0
                if time.monotonic() - stopping_since > self.stop_seconds + 5:
                    self._signal_all(signal.SIGKILL)
                    self._reap(restart=False)
                    return 1
                continue
            now = time.monotonic()
            for slot, at in list(self._pending.items()):
                if now >= at:
                    del self._pending[slot]
                    self._spawn(slot, old_mask, ready_r, ready_w)

    def _spawn(
        self, slot: int, old_mask: set[int | signal.Signals], ready_r: int, ready_w: int
    ) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = 1
            try:
                _die_with_parent(parent)
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                os.close(ready_r)
                status = self.target(slot, lambda: _announce(ready_w))
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        self.children[pid] = _Child(slot, time.monotonic())

    def _read_ready(self, fd: int) -> None:
        with contextlib.suppress(BlockingIOError):
            data = os.read(fd, _PID.size * 64)
            for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
                child = self.children.get(pid)
                if child is None:
                    continue
                child.ready = True
                # a rolling restart: each new child that is ready retires an old one of its slot
                for old, c in self.children.items():
                    if c.retiring and c.slot == child.slot and not child.retiring:
                        _kill(old, signal.SIGTERM)
        if (
            not self._announced
            and self.children
            and all(c.ready for c in self.children.values() if not c.retiring)
        ):
            self._announced = True
            _notify("READY=1")
            self.on_ready()

    def _reap(self, *, restart: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            _metrics_dead(pid)
            if child.retiring or not restart:
                continue
            age = time.monotonic() - child.started
            young = age < YOUNG_SECONDS
            pause = min(max(1.0, 2 * self._pause.get(child.slot, 0.0)), MAX_PAUSE_SECONDS)
            pause = pause if young else 0.0
            self._pause[child.slot] = pause
            log.warning(
                "worker process %d (slot %d) ended (%s) after %.0f s; restarting in %.0f s",
                pid,
                child.slot,
                _describe(status),
                age,
                pause,
            )
            self._pending[child.slot] = time.monotonic() + pause

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in list(self.children):
            _kill(pid, sig)


def _metrics_dead(pid: int) -> None:
    """Tell prometheus_client's multiprocess mode that ``pid`` is gone (its live gauges stop
    counting); nothing when that mode or the library is not in use."""
    if not os.environ.get(METRICS_DIR_ENV):
        return
    try:
        multiprocess = importlib.import_module("prometheus_client.multiprocess")
    except ImportError:
        return
    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(pid)


def _die_with_parent(parent: int) -> None:
    """In a child: get SIGTERM (and so drain and exit) if the parent dies, even by SIGKILL —
    never keep serving as an orphan nobody supervises (Linux ``PR_SET_PDEATHSIG``)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _announce(fd: int) -> None:
    os.write(fd, _PID.pack(os.getpid()))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _notify(state: str) -> None:
    """Tell systemd (``Type=notify``) about the service's state; nothing without systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):  # an abstract socket
        path = "\0" + path[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(path)
        s.sendall(state.encode())


@contextlib.contextmanager
def metrics_dir(workers: int) -> Iterator[str | None]:
    """With several processes and no ``PROMETHEUS_MULTIPROC_DIR`` set, a fresh temporary one for
    the children (inherited through the environment), removed when the block ends; a configured
    one is emptied of earlier runs' files first."""
    configured = os.environ.get(METRICS_DIR_ENV)
    if configured:
        prepare_multiprocess_dir(Path(configured))  # a dead run's counts must not add up
        yield configured
        return
    if workers <= 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="imsp-metrics-")
    try:
        with multiprocess_mode(path):  # prometheus_client is imported already: switch it
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
