"""Real servers on loopback for end-to-end tests over TCP. Every server binds port 0 itself and
the test reads the port back — no "find a free port, release it, hope nobody takes it" race."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
SERVE_URLS = re.compile(r"/ (exchange|portal):\s+(http://\S+)")


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
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=30)
        for s in sockets:
            s.close()
