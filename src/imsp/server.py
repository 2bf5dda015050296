"""``imsp serve``: the exchange service and the portal in one process, one event loop.

Start-up problems (unreachable database, schema not migrated, port in use) raise ``ConfigError``
with a one-line Chinese/English message, which the CLI prints without a traceback. SIGTERM and
SIGINT stop both servers gracefully (in-flight requests finish, connections close).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from sqlalchemy import create_engine, text

from imsp.app import create_exchange_app, create_portal_app
from imsp.clock import Clock, SystemClock
from imsp.config import Settings
from imsp.errors import ConfigError
from imsp.guard import guarded_protocol, loop_error_handler
from imsp.logs import uvicorn_log_config
from imsp.standard.model import load_standard
from imsp.standard.validate import validator_for
from imsp.storage import migrate
from imsp.storage.db import Database
from imsp.supervision.worker import run_worker


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def check_database(settings: Settings) -> None:
    """Fail fast, in one line, when the database cannot be reached."""
    if settings.is_sqlite:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"数据目录无法创建 / cannot create data directory {settings.data_dir}: {exc.strerror}"
            ) from exc
    engine = create_engine(settings.sync_url, connect_args=_connect_args(settings))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"数据库无法连接 / database unreachable: {_redact(settings)} ({reason})"
        ) from exc
    finally:
        engine.dispose()


def _connect_args(settings: Settings) -> dict[str, object]:
    return {} if settings.is_sqlite else {"connect_timeout": 5}


def _redact(settings: Settings) -> str:
    from sqlalchemy.engine.url import make_url

    return make_url(settings.sync_url).render_as_string(hide_password=True)


def prepare_database(settings: Settings, *, run_migrations: bool) -> None:
    check_database(settings)
    if run_migrations:
        migrate.upgrade(settings)
    elif migrate.unapplied_heads(settings):
        raise ConfigError(
            "数据库结构不是最新版本，请先运行 `imsp db upgrade` 或使用 `imsp serve --migrate` / "
            "database schema is not up to date: run `imsp db upgrade` or `imsp serve --migrate`"
        )


def bind(endpoint: Endpoint) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP; without it every keep-alive response waits ~40 ms for the
    # client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((endpoint.host, endpoint.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"{endpoint.name}端口 {endpoint.host}:{endpoint.port} 无法监听（{exc.strerror}）/ "
            f"cannot listen on {endpoint.host}:{endpoint.port}: {exc.strerror}"
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def settle() -> None:
    """Once per server process, after the apps are built and before the first request: compile
    every validator, then move everything alive into the garbage collector's permanent
    generation (``gc.freeze``). The standard's code tables and compiled validators are ~170,000
    objects that live as long as the process; without this every full collection walks them
    again — a 30-60 ms pause on whichever requests are in flight (``docs/performance.md``).
    A process-wide act, so it belongs to the server's start-up, never to building an app."""
    for ds in load_standard().ordered():
        validator_for(ds)
    gc.collect()
    gc.freeze()


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by ``serve_forever`` for both servers at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_forever(
    settings: Settings,
    endpoints: tuple[Endpoint, Endpoint],
    sockets: tuple[socket.socket, socket.socket],
    *,
    clock: Clock | None = None,
    on_ready: Callable[[], None] | None = None,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Serve both apps on ``sockets`` until SIGTERM/SIGINT — or, when ``stop_event`` is given
    (a server in a test's thread, where signals cannot be handled), until it is set."""
    clock = clock or SystemClock()
    db = Database(settings)
    apps = (
        create_exchange_app(settings, clock=clock, db=db),
        create_portal_app(settings, clock=clock, db=db),
    )
    servers = [
        _Server(
            uvicorn.Config(
                app,
                log_level="warning",
                log_config=uvicorn_log_config(),  # imsp.logs' format once configured
                access_log=False,  # imsp.access writes richer lines (exchange id, appId)
                lifespan="on",
                timeout_graceful_shutdown=10,
                server_header=False,
                # Forwarded headers are judged by the app (web.client_addr, trusted_proxies
                # only); uvicorn's default would believe them from loopback.
                proxy_headers=False,
                http=guarded_protocol(settings.server),
                timeout_keep_alive=settings.server.keep_alive_seconds,  # type: ignore[arg-type]
            )
        )
        for app in apps
    ]
    settle()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.set_exception_handler(loop_error_handler())

    def stop() -> None:
        stopping.set()
        for s in servers:
            s.should_exit = True

    signals = (signal.SIGTERM, signal.SIGINT) if stop_event is None else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop)
    watcher = None
    if stop_event is not None:

        async def watch() -> None:
            await stop_event.wait()
            stop()

        watcher = asyncio.create_task(watch())
    tasks = [
        asyncio.create_task(s.serve(sockets=[sock]))
        for s, sock in zip(servers, sockets, strict=True)
    ]
    worker = (
        asyncio.create_task(run_worker(db, settings=settings, clock=clock, stop=stopping))
        if settings.supervision.worker
        else None
    )
    try:
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        if on_ready and all(s.started for s in servers):
            on_ready()
        await asyncio.gather(*tasks)
    finally:
        stop()
        if worker is not None:
            await worker
        if watcher is not None:
            watcher.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
        await db.dispose()
