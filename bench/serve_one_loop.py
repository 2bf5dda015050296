"""Both servers in one process on one event loop — what ``imsp serve`` does — for benchmarks.

    python bench/serve_one_loop.py EXCHANGE_PORT PORTAL_PORT      (settings from IMSP_* variables)

It calls ``imsp.server.serve_forever`` as ``imsp serve`` does, but listens on sockets created with
``proto=IPPROTO_TCP``: with protocol 0 (``imsp.server.bind`` at the time of writing, issue 16
item 5) asyncio never sets TCP_NODELAY and every keep-alive answer waits ~40 ms for a delayed
ACK, which would hide in the figures what a benchmark of the event loop wants to see.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from imsp.config import Settings
from imsp.server import Endpoint, serve_forever


def listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


def main() -> None:
    exchange, portal = int(sys.argv[1]), int(sys.argv[2])
    endpoints = (
        Endpoint("数据交换服务", "127.0.0.1", exchange),
        Endpoint("资质管理系统", "127.0.0.1", portal),
    )
    asyncio.run(serve_forever(Settings(), endpoints, (listen(exchange), listen(portal))))


if __name__ == "__main__":
    main()
