"""Real servers on loopback for end-to-end tests over TCP. Every server binds port 0 itself and
the test reads the port back — no "find a free port, release it, hope nobody takes it" race."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from imsp.config import Settings
from imsp.server import Endpoint, bind, serve_forever


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # signals belong to the test runner
        pass


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a port the kernel picks) until the block ends; yields the
    base URL."""
    server = _ThreadServer(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def refused_url() -> Iterator[str]:
    """A loopback URL where nothing accepts connections, for as long as the block runs: the port
    stays bound (so nobody else can take it) but never listens, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


#: How ``imsp serve`` announces its servers (``数据交换服务 / exchange: http://…``).
SERVE_URLS = re.compile(r"/ (exchange|portal|worker):\s+(https?://\S+)")


def served_urls(read_line: Callable[[], str], timeout: float = 60) -> dict[str, str]:
    """Read ``imsp serve`` output line by line until it has announced both servers; returns
    ``{"exchange": url, "portal": url}``."""
    urls: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    line = ""
    while len(urls) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("imsp serve did not announce its servers")
        line += read_line()
        if not line.endswith("\n"):  # nothing yet, or half a line still being written
            time.sleep(0.05)
            continue
        m = SERVE_URLS.search(line)
        line = ""
        if m:
            urls[m.group(1)] = m.group(2)
    return urls


@contextmanager
def imsp_serve(settings: Settings) -> Iterator[tuple[str, str]]:
    """``imsp serve``'s own server code (``imsp.server.serve_forever``: both apps, one event loop,
    sockets from ``imsp.server.bind``) in a thread on ports the kernel picks; yields the exchange's
    and the portal's base URLs. The database of ``settings`` must be migrated."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def run() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        await serve_forever(settings, endpoints, sockets, on_ready=ready.set, stop_event=stop)

    endpoints = (Endpoint("exchange", "127.0.0.1", 0), Endpoint("portal", "127.0.0.1", 0))
    sockets = (bind(endpoints[0]), bind(endpoints[1]))
    ports = [s.getsockname()[1] for s in sockets]
    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("imsp serve did not start")
        scheme = "https" if settings.tls else "http"
        yield f"{scheme}://127.0.0.1:{ports[0]}", f"{scheme}://127.0.0.1:{ports[1]}"
    finally:
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=30)
        for s in sockets:
            s.close()


class RoleProcess:
    """``imsp serve ROLE --workers N`` as a real process tree on a port the kernel picks, with
    the settings of a test passed as ``IMSP_`` variables (read back from what it announces)."""

    def __init__(
        self,
        settings: Settings,
        role: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        port: bool = True,
    ) -> None:
        listen = [] if not port else ["--health-port" if role == "worker" else "--port", "0"]
        cmd = [sys.executable, "-m", "imsp.cli.main", "serve", role, *listen, *args]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | {
            "IMSP_DATA_DIR": str(settings.data_dir),
            "IMSP_SUPERVISION__NICE": "0",
            "PYTHONUNBUFFERED": "1",
        }
        if settings.database_url:
            environment["IMSP_DATABASE_URL"] = settings.database_url
        for name in ("tls_cert_file", "tls_key_file", "redis_url"):
            value = getattr(settings, name)
            if value is not None:
                environment[f"IMSP_{name.upper()}"] = str(value)
        environment |= dict(env or {})
        self.proc = subprocess.Popen(
            cmd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a test's Ctrl+C is not the servers' business
        )
        self.seen: list[str] = []
        self.url = self._announced(role)

    def _announced(self, role: str, timeout: float = 90) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"imsp serve {role} ended: {self.stop()[1]}")
            self.seen.append(line)
            m = SERVE_URLS.search(line)
            if m:
                return m.group(2)
            if "个进程（无 HTTP 端口）" in line:
                return ""
        raise RuntimeError(f"imsp serve {role} did not announce itself")

    def children(self) -> list[int]:
        """The parent's live children (the worker processes)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[str, str]:
        """Send ``sig`` to the parent and wait; returns (stdout, stderr)."""
        if self.proc.poll() is None and sig != 0:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        return "".join(self.seen) + out, err

    def __enter__(self) -> RoleProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()  # also closes the pipes of a process that already ended
