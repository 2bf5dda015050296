"""Hosts for multi-host tests: Linux network namespaces made by the test, joined to one bridge.

A :class:`Network` is a private layer-2 segment (default ``10.254.1.0/24``, a test range that is
never the province's ``10.1.109.x``, and the unique-local ``fd00:254:1::/64``): one namespace
holds the bridge (the "switch"), and every :class:`Host` is a namespace of its own with a veth
pair whose one end (``eth0``, the host's addresses) sits in the host and whose other end is
plugged into the bridge. Nothing is added to the
root namespace — no interface, no route — so the segment is invisible outside the test and two
runs never see each other, whatever addresses they use.

Processes run inside a host with ``ip netns exec`` (:meth:`Host.spawn`, :meth:`Host.run`): real
processes, each seeing only its host's network. The test process itself stays in the root
namespace; :meth:`Host.call` runs a function on a thread that has entered the host's namespace
(``setns(2)`` is per thread), so sockets the function opens come from that host's address.

Cleanup: every namespace is named ``imspt-<pid>-<run>-<host>``. :meth:`Network.close` (also run by
the context manager and at interpreter exit) kills every process left in the run's namespaces and
deletes them — deleting a namespace destroys its veth ends with it. Namespaces of a test process
that died without cleaning up (``kill -9`` of pytest) are swept by :func:`sweep_stale` when the
next network is made: those whose ``<pid>`` no longer runs.

Needs root (``CAP_SYS_ADMIN``) and iproute2; :func:`unavailable` says why namespaces cannot be made
here, for a skip reason.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PREFIX = "imspt"
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def unavailable() -> str | None:
    """Why this process cannot make a network of hosts, or ``None`` when it can — probed by
    really making a namespace with a bridge and a veth pair in it, and deleting it."""
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN); the test runs as a normal user"
    probe = f"{PREFIX}-{os.getpid()}-probe-{secrets.token_hex(2)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed here: {made.stderr.strip()}"
    try:
        for what in (("br0", "type", "bridge"), ("v0", "type", "veth", "peer", "name", "v1")):
            link = _ip("-n", probe, "link", "add", *what, check=False)
            if link.returncode != 0:
                return f"`ip link add {' '.join(what)}` failed here: {link.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids(namespace: str) -> list[int]:
    out = _ip("netns", "pids", namespace, check=False).stdout
    return [int(p) for p in out.split()]


def _kill_all(namespace: str, sig: int = signal.SIGKILL) -> None:
    for pid in _pids(namespace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sweep_stale() -> list[str]:
    """Delete the namespaces (and kill their processes) of test runs whose process is gone;
    returns their names. Namespaces of live runs are left alone."""
    swept = []
    for name in namespaces():
        parts = name.split("-")
        if parts[0] != PREFIX or len(parts) < 3 or not parts[1].isdigit():
            continue
        if _alive(int(parts[1])):
            continue
        _kill_all(name)
        _ip("netns", "del", name, check=False)
        swept.append(name)
    return swept


class Process:
    """A process started in a host; its output goes to ``log``."""

    def __init__(self, host: Host, argv: Sequence[str], popen: subprocess.Popen[bytes], log: Path):
        self.host = host
        self.argv = list(argv)
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds."""
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL (a crash, not a stop) and reap."""
        if self.alive():
            self.popen.kill()
        self.popen.wait(timeout=10)

    def output(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of the log (for assertion messages)."""
        try:
            text = self.log.read_text("utf-8", "replace")
        except OSError:
            return ""
        return text[-tail:]


class Host:
    """One machine of the network: a namespace with ``eth0`` at ``address`` and ``address6``
    (and ``lo`` up)."""

    def __init__(
        self, network: Network, role: str, address: str, address6: str, namespace: str
    ) -> None:
        self.network = network
        self.role = role
        self.address = address
        self.address6 = address6  # on the segment's IPv6 /64
        self.namespace = namespace
        self.processes: list[Process] = []

    def __repr__(self) -> str:
        return f"Host({self.role!r}, {self.address})"

    def command(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        """``argv`` wrapped to run in this host (as ``user`` when given: ``setpriv`` execs in
        place, so the process id is the program's own)."""
        cmd = ["ip", "netns", "exec", self.namespace]
        if user is not None:
            cmd += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        return cmd + list(argv)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> Process:
        """Start ``argv`` in this host, stdout and stderr appended to ``log``. ``ip netns exec``
        execs the program in place: the returned process is the program itself."""
        with log.open("ab") as out:
            popen = subprocess.Popen(
                self.command(argv, user=user),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        proc = Process(self, argv, popen, log)
        self.processes.append(proc)
        return proc

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this host to completion; its output is captured."""
        return subprocess.run(
            self.command(argv, user=user),
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a fresh thread inside this host's namespace; its result (or
        its exception). Sockets must be opened inside ``fn`` (a socket keeps the namespace it
        was made in); threads ``fn`` starts inherit the namespace."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                _enter(self.namespace)
                box["result"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"netns-{self.role}", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every process in this host (``SIGSTOP`` freezes the machine)."""
        _kill_all(self.namespace, sig)

    def crash(self) -> None:
        """SIGKILL every process in this host at once — the machine dies, in-flight requests
        and all. The host's :class:`Process` objects are reaped."""
        _kill_all(self.namespace)
        for proc in self.processes:
            proc.kill()
        self.processes.clear()

    def pids(self) -> list[int]:
        return _pids(self.namespace)


_libc: Any = None


def _enter(namespace: str) -> None:
    """Move the calling thread into ``namespace`` (network only)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({namespace}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Network:
    """A private segment ``<subnet>.0/24`` and ``<subnet6>::/64`` behind one bridge; hosts are
    added with :meth:`host`.

    Use as a context manager (or call :meth:`close`): on exit every process of the run is killed
    and every namespace deleted, also when the test failed."""

    def __init__(self, subnet: str = "10.254.1", subnet6: str = "fd00:254:1") -> None:
        if subnet.startswith("10.1.109"):
            raise ValueError("10.1.109.x is the province's network; use a test range")
        sweep_stale()
        self.subnet = subnet
        self.subnet6 = subnet6
        self.run_id = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._closed = False
        atexit.register(self.close)
        try:
            self.switch = self._add_namespace("sw")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, suffix: str) -> str:
        name = f"{self.run_id}-{suffix}"
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def host(self, role: str, last_octet: int) -> Host:
        """A new host ``role`` at ``<subnet>.<last_octet>`` and ``<subnet6>::<last_octet>``,
        plugged into the bridge."""
        if role in self.hosts:
            raise ValueError(f"host {role!r} exists")
        if not 2 <= last_octet <= 254:
            raise ValueError("last octet must be 2..254")
        address = f"{self.subnet}.{last_octet}"
        address6 = f"{self.subnet6}::{last_octet}"
        namespace = self._add_namespace(role)
        port = f"v{last_octet}"  # the bridge's side, named in the switch namespace only
        _ip(
            "-n", self.switch, "link", "add", port, "type", "veth",
            "peer", "name", "eth0", "netns", namespace,
        )  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        # nodad: usable at once, no duplicate address detection delay (nobody else is here)
        _ip("-n", namespace, "addr", "add", f"{address6}/64", "dev", "eth0", "nodad")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        host = Host(self, role, address, address6, namespace)
        self.hosts[role] = host
        return host

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            for proc in host.processes:
                if proc.alive():
                    proc.popen.kill()
        for name in self._namespaces:
            _kill_all(name)
        for host in self.hosts.values():
            for proc in host.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=10)
        deadline = time.monotonic() + 10
        for name in reversed(self._namespaces):
            while _pids(name) and time.monotonic() < deadline:
                time.sleep(0.05)
            _ip("netns", "del", name, check=False)
        atexit.unregister(self.close)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
