"""``imsp serve``: the exchange service and the portal in one process, one event loop — and the
one process of a role (``imsp serve exchange|portal|worker``; ``imsp.prefork`` runs N of them).

Start-up problems (unreachable database, schema not migrated, port in use, an unreadable
certificate) raise ``ConfigError`` with a one-line Chinese/English message, which the CLI prints
without a traceback. SIGTERM and SIGINT stop the servers gracefully: no new connection is
accepted, requests in flight (a slow upload) finish within ``server.shutdown_seconds``.
With ``tls_cert_file`` and ``tls_key_file`` both servers speak HTTPS only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import signal
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from imsp.app import (
    create_exchange_app,
    create_health_app,
    create_portal_app,
    install_worker_meters,
)
from imsp.clock import Clock, SystemClock
from imsp.config import Settings
from imsp.errors import ConfigError
from imsp.guard import guarded_protocol, loop_error_handler
from imsp.logs import uvicorn_log_config
from imsp.standard.model import load_standard
from imsp.standard.validate import validator_for
from imsp.storage import migrate
from imsp.storage.db import Database
from imsp.supervision.meters import WorkerMeters
from imsp.supervision.worker import run_worker


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


Role = Literal["exchange", "portal", "worker"]
ROLES: Final[tuple[Role, ...]] = ("exchange", "portal", "worker")

#: TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are not affected).
CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"


def check_tls(settings: Settings) -> None:
    """Fail fast, in one line, when HTTPS is half-configured or its files are unusable."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if (cert is None) != (key is None):
        raise ConfigError(
            "HTTPS 须同时设置 IMSP_TLS_CERT_FILE 与 IMSP_TLS_KEY_FILE / "
            "set both IMSP_TLS_CERT_FILE and IMSP_TLS_KEY_FILE for HTTPS"
        )
    if cert is None or key is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise ConfigError(
                f"证书或私钥无效，或二者不匹配 / invalid certificate or key: {cert}, {key} "
                f"({exc.reason or exc})"
            ) from exc
        raise ConfigError(
            f"证书或私钥文件无法读取 / cannot read certificate or key: "
            f"{exc.filename or cert} ({exc.strerror})"
        ) from exc


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


#: What each role's app imports when it is built: loaded once by the pre-fork parent.
_ROLE_MODULES: Final[dict[str, tuple[str, ...]]] = {
    "exchange": ("imsp.exchange.api", "imsp.acceptance.api", "imsp.supervision.references"),
    "portal": ("imsp.portal.pages",),
    "worker": (),
}


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (uvicorn[standard] brings it; it sets
    TCP_NODELAY on every TCP connection itself), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def preload(role: Role) -> None:
    """In the pre-fork parent: import what ``role``'s app needs and ``settle`` (compile the
    validators, freeze the heap), so each forked child shares those pages copy-on-write instead
    of building its own copy, and starts faster."""
    for name in _ROLE_MODULES[role]:
        importlib.import_module(name)
    settle()


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by ``run_servers`` for all servers at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """How every IMSP server runs an app: the guarded protocol (``imsp.guard``), no access log,
    graceful shutdown, and HTTPS when a certificate is configured."""
    tls: dict[str, object] = {}
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls = {
            "ssl_certfile": str(settings.tls_cert_file),
            "ssl_keyfile": str(settings.tls_key_file),
            "ssl_version": ssl.PROTOCOL_TLS_SERVER,
            "ssl_ciphers": CIPHERS,
        }
    return uvicorn.Config(
        app,
        log_level="warning",
        log_config=uvicorn_log_config(),  # imsp.logs' format once configured
        access_log=False,  # imsp.access writes richer lines (exchange id, appId)
        lifespan="on",
        timeout_graceful_shutdown=settings.server.shutdown_seconds,  # type: ignore[arg-type]
        server_header=False,
        # Forwarded headers are judged by the app (web.client_addr, trusted_proxies
        # only); uvicorn's default would believe them from loopback.
        proxy_headers=False,
        http=guarded_protocol(settings.server),
        timeout_keep_alive=settings.server.keep_alive_seconds,  # type: ignore[arg-type]
        **tls,  # type: ignore[arg-type]
    )


async def serve_forever(
    settings: Settings,
    endpoints: tuple[Endpoint, Endpoint],
    sockets: tuple[socket.socket, socket.socket],
    *,
    clock: Clock | None = None,
    on_ready: Callable[[], None] | None = None,
    stop_event: asyncio.Event | None = None,
) -> None:
    """``imsp serve``: both apps on ``sockets``, and the supervision worker unless
    ``supervision.worker`` is off, until SIGTERM/SIGINT — or, when ``stop_event`` is given
    (a server in a test's thread, where signals cannot be handled), until it is set."""
    clock = clock or SystemClock()
    db = Database(settings)
    apps = (
        create_exchange_app(settings, clock=clock, db=db),
        create_portal_app(settings, clock=clock, db=db),
    )
    worker = settings.supervision.worker
    # the worker's meters on the exchange's /metrics (which samples the change feed already)
    meters = install_worker_meters(apps[0], queue=False) if worker else None
    await run_servers(
        settings,
        list(zip(apps, sockets, strict=True)),
        db=db,
        clock=clock,
        worker=worker,
        meters=meters,
        on_ready=on_ready,
        stop_event=stop_event,
    )


async def serve_role(
    settings: Settings,
    role: Role,
    sock: socket.socket | None,
    *,
    clock: Clock | None = None,
    on_ready: Callable[[], None] | None = None,
    stop_event: asyncio.Event | None = None,
) -> None:
    """One process of ``role``: the exchange or the portal app on ``sock``; or the background
    jobs (the supervision worker: change feed, due checks, rollups) with, when ``sock`` is given,
    only ``/healthz``, ``/readyz`` and the worker's ``/metrics`` on it."""
    clock = clock or SystemClock()
    db = Database(settings)
    factory = {
        "exchange": create_exchange_app,
        "portal": create_portal_app,
        "worker": create_health_app,
    }[role]
    pairs = [] if sock is None else [(factory(settings, clock=clock, db=db), sock)]
    meters = getattr(pairs[0][0].state, "worker_meters", None) if pairs else None
    await run_servers(
        settings,
        pairs,
        db=db,
        clock=clock,
        worker=role == "worker",
        meters=meters,
        on_ready=on_ready,
        stop_event=stop_event,
    )


async def run_servers(
    settings: Settings,
    pairs: list[tuple[FastAPI, socket.socket]],
    *,
    db: Database,
    clock: Clock,
    worker: bool,
    meters: WorkerMeters | None = None,
    on_ready: Callable[[], None] | None,
    stop_event: asyncio.Event | None,
) -> None:
    """Serve each app on its socket (and run the supervision worker when ``worker``) in this
    event loop until SIGTERM/SIGINT or ``stop_event``; then stop accepting, let requests in
    flight finish, stop the worker after its round, and close the database."""
    servers = [_Server(server_config(app, settings)) for app, _ in pairs]
    sockets = [sock for _, sock in pairs]
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
    jobs = (
        asyncio.create_task(
            run_worker(db, settings=settings, clock=clock, stop=stopping, meters=meters)
        )
        if worker
        else None
    )
    try:
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        if on_ready and all(s.started for s in servers):
            on_ready()
        if tasks:
            await asyncio.gather(*tasks)
        else:  # a worker without a health port: run until told to stop
            await stopping.wait()
    finally:
        stop()
        if jobs is not None:
            await jobs
        if watcher is not None:
            watcher.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
        await db.dispose()
