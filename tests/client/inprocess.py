"""An httpx (sync) transport that serves requests with an ASGI app in this process.

The SDK is synchronous; ``httpx.ASGITransport`` is async-only and starlette's ``TestClient`` speaks
httpx2. This bridge runs the app on an anyio event loop in a helper thread (with its lifespan) and
hands it each request exactly as the SDK built it — headers (``Transfer-Encoding: chunked``,
``accessToken``) and body chunks included — so contract tests exercise the real app and the real
SDK with nothing mocked in between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any

import anyio.from_thread
import httpx


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c


class InProcessTransport(httpx.BaseTransport):
    """Use as a context manager (it owns an event loop thread and the app's lifespan)."""

    def __init__(self, app: Callable[..., Any], client: tuple[str, int] = ("127.0.0.1", 50000)):
        self.app = app
        self._asgi = httpx.ASGITransport(app, raise_app_exceptions=False, client=client)
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._lifespan: AbstractContextManager[Any] | None = None
        self.requests: list[httpx.Request] = []  # what arrived, for assertions

    def __enter__(self) -> InProcessTransport:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        router = getattr(self.app, "router", None)
        if router is not None and hasattr(router, "lifespan_context"):
            self._lifespan = self._portal.wrap_async_context_manager(
                router.lifespan_context(self.app)
            )
            self._lifespan.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lifespan is not None:
            self._lifespan.__exit__(None, None, None)
            self._lifespan = None
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = self._portal = None

    def close(self) -> None:  # the SDK closes its transport; the fixture owns this one
        pass

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self._portal is not None, "use InProcessTransport as a context manager"
        chunks = list(request.stream)  # type: ignore[arg-type]
        self.requests.append(request)
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=_Chunks(chunks),
            extensions=request.extensions,
        )

        async def send() -> tuple[int, httpx.Headers, bytes]:
            response = await self._asgi.handle_async_request(forwarded)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(send)
        return httpx.Response(status, headers=headers, content=content, request=request)
