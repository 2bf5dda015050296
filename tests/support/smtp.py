"""A real SMTP server on loopback (aiosmtpd) for the notification e-mail tests: it accepts what
the portal's mailer sends and keeps the parsed messages; it can refuse the first deliveries
with a temporary error (451) to exercise the retries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any


@dataclass
class Inbox:
    """What the server received (``(recipients, message)``), and how many to refuse first."""

    refuse: int = 0
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 Temporary failure, try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def wait_for(self, n: int, timeout: float = 30) -> list[tuple[list[str], EmailMessage]]:
        """The received messages once there are ``n`` of them (fails after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            assert time.monotonic() < deadline, f"{len(self.received)} of {n} mails arrived"
            time.sleep(0.05)
        return list(self.received)


@contextmanager
def smtp_server(inbox: Inbox) -> Iterator[int]:
    """Serve SMTP on 127.0.0.1 (a port the kernel picks) until the block ends; yields the port."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            loop.create_server(
                lambda: SMTP(inbox, hostname="relay.test", loop=loop), "127.0.0.1", 0
            )
        )
        state["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "SMTP server did not start"
    try:
        yield int(state["port"])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
