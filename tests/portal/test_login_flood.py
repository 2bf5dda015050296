"""A flood of failed sign-ins must not stall the event loop: argon2 runs on worker threads.

No timing threshold: the test records when each password verification started and ended and on
which thread, and when each ``/healthz`` request (same server, same event loop) was answered. If
hashing ran on the loop, no health check could be answered while a verification was running.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from imsp import cpu
from imsp.app import create_portal_app
from imsp.auth import passwords
from imsp.clock import FrozenClock
from imsp.config import PortalSettings, Settings
from tests.portal.client import csrf_of
from tests.support.live import live_server

FLOOD = 40


class _RecordingHasher:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    def verify(self, stored: str, password: str) -> bool:
        start = time.monotonic()
        try:
            return bool(self.real.verify(stored, password))
        finally:
            with self.lock:
                self.calls.append((threading.current_thread().name, start, time.monotonic()))


def test_health_is_answered_while_forty_failed_logins_are_hashed(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = _RecordingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    health: list[tuple[float, float, int]] = []
    done = threading.Event()
    # Past 8 failures the address is throttled before hashing; argon2 takes up to a second
    # on a loaded 2-core machine, hence the generous client timeouts.
    throttled = settings.model_copy(
        update={"portal": PortalSettings(login_free_failures_per_address=8)}
    )
    with live_server(create_portal_app(throttled, clock=clock)) as url:
        clients = [httpx.Client(base_url=url, timeout=120) for _ in range(FLOOD)]
        tokens = [csrf_of(c.get("/login").text) for c in clients]

        def fail(i: int) -> int:
            r = clients[i].post(
                "/login",
                data={"username": f"user{i}", "password": "wrong-pass-1", "csrf_token": tokens[i]},
            )
            return r.status_code

        def probe() -> None:
            with httpx.Client(base_url=url, timeout=120) as c:
                while not done.is_set():
                    start = time.monotonic()
                    status = c.get("/healthz").status_code
                    health.append((start, time.monotonic(), status))

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            with ThreadPoolExecutor(max_workers=FLOOD) as pool:
                statuses = list(pool.map(fail, range(FLOOD)))
        finally:
            done.set()
            prober.join()
            for c in clients:
                c.close()
    assert sorted(statuses) == [401] * 8 + [429] * (FLOOD - 8)
    assert len(hasher.calls) == 8
    on_loop = [name for name, _, _ in hasher.calls if not name.startswith(cpu.THREAD_PREFIX)]
    assert on_loop == [], f"argon2 ran on {on_loop}"
    assert all(status == 200 for _, _, status in health)
    # At least one health check was answered from start to end inside a verification.
    answered_during = [
        (h0, h1) for h0, h1, _ in health if any(v0 < h0 and h1 < v1 for _, v0, v1 in hasher.calls)
    ]
    assert answered_during
