"""The test-made network (``tests.support.netns``): hosts reach each other and nothing else, and
every namespace goes away — after a failure too, and after a test run that was killed."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.netns import Network

NETNS_UNAVAILABLE = netns.unavailable()
pytestmark = pytest.mark.skipif(
    NETNS_UNAVAILABLE is not None,
    reason=f"network namespaces cannot be created here: {NETNS_UNAVAILABLE}",
)


def _ours(prefix: str) -> list[str]:
    return [n for n in netns.namespaces() if n.startswith(prefix)]


def _greeting(address: str, port: int) -> str:
    """What a listener at ``address:port`` says, or the error's class name."""
    try:
        with socket.create_connection((address, port), timeout=2) as s:
            return s.recv(16).decode()
    except OSError as exc:
        return type(exc).__name__


def test_hosts_reach_each_other_on_the_test_subnet_and_not_the_root_namespace() -> None:
    with Network("10.254.7", "fd00:254:7") as net:
        server, client = net.host("server", 2), net.host("client", 3)
        # Listeners opened inside "server": all its addresses (IPv4 and IPv6), port 7000.
        listener = server.call(
            socket.create_server, ("::", 7000), family=socket.AF_INET6, dualstack_ipv6=True
        )

        def greet(times: int) -> None:
            for _ in range(times):
                conn, _ = listener.accept()
                with conn:
                    conn.sendall(b"hello")

        with listener, socket.create_server(("127.0.0.1", 0)) as root_listener:
            greeter = threading.Thread(target=greet, args=(2,))
            greeter.start()
            assert client.call(_greeting, server.address, 7000) == "hello"
            assert client.call(_greeting, server.address6, 7000) == "hello"
            greeter.join(timeout=5)
            # The client's 127.0.0.1 is its own: the root namespace's listener is not there.
            root_port = root_listener.getsockname()[1]
            assert client.call(_greeting, "127.0.0.1", root_port) == "ConnectionRefusedError"


def test_processes_and_namespaces_are_removed_even_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Network("10.254.8") as net:
        sleeper = net.host("h", 2).spawn(
            [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "h.log"
        )
        run_id = net.run_id
        assert len(_ours(run_id)) == 2  # the switch and the host
        raise RuntimeError("boom")
    assert not sleeper.alive()
    assert _ours(run_id) == []


def test_namespaces_of_a_run_that_died_are_swept_and_live_ones_kept() -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = f"{netns.PREFIX}-{int(gone.stdout)}-0badc0-sw"  # named after an exited process
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        with Network("10.254.9") as live:
            assert stale not in netns.namespaces()  # making a network swept the dead run's …
            netns.sweep_stale()
            assert len(_ours(live.run_id)) == 1  # … and sweeping never takes a live run's
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
