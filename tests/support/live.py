"""A real uvicorn server on a free loopback port, in a thread — for end-to-end tests over TCP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from imsp.config import Settings
from imsp.server import Endpoint, bind, serve_forever


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # signals belong to the test runner
        pass


@contextmanager
def live_server(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields the base URL."""
    port = port or free_port()
    server = _ThreadServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


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
