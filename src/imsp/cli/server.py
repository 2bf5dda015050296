"""Platform-side commands: ``serve``, ``db``, ``demo``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace

import click

from imsp.cli.env import load_settings
from imsp.cli.partitions import partitions
from imsp.clock import SystemClock
from imsp.config import Settings
from imsp.errors import ConfigError
from imsp.logs import configure as configure_logging
from imsp.prefork import Supervisor, metrics_dir
from imsp.server import (
    ROLES,
    Endpoint,
    Role,
    bind,
    check_database,
    check_tls,
    preload,
    prepare_database,
    run_loop,
    serve_forever,
    serve_role,
)
from imsp.storage import migrate
from imsp.storage.db import Database


def _port(option: int | None, default: int) -> int:
    return default if option is None else option


def _fail(exc: ConfigError) -> click.ClickException:
    return click.ClickException(str(exc))


async def _seed_and_report(settings: Settings, *, reset: bool) -> list[str]:
    from imsp.demo import seed_demo

    db = Database(settings)
    try:
        async with db.session() as s:
            seed = await seed_demo(s, clock=SystemClock(), reset=reset)
    finally:
        await db.dispose()
    lines = [
        f"演示机构 / demo institution: {seed.org_name}  organID={seed.org_code}",
        f"  appId={seed.app_id}",
    ]
    if seed.app_secret:
        lines.append(f"  appSecret={seed.app_secret}   （仅显示这一次 / shown once）")
    else:
        lines.append("  appSecret: 已在首次初始化时显示；重新生成：imsp demo seed --reset")
    lines.append("演示账号 / demo portal accounts:")
    for username, role, password in seed.users:
        shown = password if password else "（已存在，重新生成：imsp demo seed --reset）"
        lines.append(f"  {role:<10} {username:<14} {shown}")
    return lines


@click.command()
@click.argument("role", required=False, type=click.Choice(ROLES))
@click.option("--host", default=None, help="监听地址（默认 IMSP_HOST 或 127.0.0.1）")
@click.option("--exchange-port", type=int, default=None, help="数据交换服务端口（默认 8888）")
@click.option(
    "--portal-port", type=int, default=None, help="资质管理系统端口（默认 8091；0 由系统分配）"
)
@click.option(
    "--port", type=int, default=None, help="单一角色的端口（exchange 默认 8888，portal 默认 8091）"
)
@click.option(
    "--health-port",
    type=int,
    default=None,
    help="worker 角色的健康检查端口（/healthz、/readyz；默认不开）",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="单一角色的进程数（共用一个端口；崩溃的进程自动重启）",
)
@click.option("--migrate", "run_migrations", is_flag=True, help="启动前执行数据库迁移")
@click.option("--demo", is_flag=True, help="初始化演示数据并打印演示凭据")
def serve(
    role: Role | None,
    host: str | None,
    exchange_port: int | None,
    portal_port: int | None,
    port: int | None,
    health_port: int | None,
    workers: int,
    run_migrations: bool,
    demo: bool,
) -> None:
    """启动服务。

    不带 ROLE：数据交换服务、资质管理系统与后台任务在同一进程（演示与小型部署）。ROLE 为
    exchange、portal 或 worker 时只运行该角色的 --workers N 个进程（生产部署，见 deploy/）：
    SIGTERM 时不再接受新连接，进行中的请求（如慢速上传）完成后退出；SIGHUP 逐个替换进程
    （例如更换证书后）；意外退出的进程自动重启。"""
    settings = load_settings()
    configure_logging(settings)
    host = host or settings.host
    if role is None:
        if port is not None or health_port is not None or workers != 1:
            raise click.UsageError(
                "--port、--health-port、--workers 须与角色一起使用，如 imsp serve exchange --workers 2"
            )
        _serve_all(settings, host, exchange_port, portal_port, run_migrations, demo)
        return
    if exchange_port is not None or portal_port is not None or demo:
        raise click.UsageError("--exchange-port、--portal-port、--demo 只用于不带角色的 imsp serve")
    if health_port is not None and role != "worker":
        raise click.UsageError("--health-port 只用于 worker 角色；exchange、portal 用 --port")
    if port is not None and role == "worker":
        raise click.UsageError("worker 角色不提供业务端口；健康检查端口用 --health-port")
    _serve_role(settings, role, host, port, health_port, workers, run_migrations)


def _serve_all(
    settings: Settings,
    host: str,
    exchange_port: int | None,
    portal_port: int | None,
    run_migrations: bool,
    demo: bool,
) -> None:
    asked = (
        Endpoint("数据交换服务", host, _port(exchange_port, settings.exchange.port), settings.tls),
        Endpoint("资质管理系统", host, _port(portal_port, settings.portal.port), settings.tls),
    )
    try:
        check_tls(settings)
        prepare_database(settings, run_migrations=run_migrations)
        sockets = (bind(asked[0]), bind(asked[1]))
    except ConfigError as exc:
        raise _fail(exc) from None
    # Port 0 asks the kernel for a free port; announce the ones actually bound.
    endpoints = (
        replace(asked[0], port=sockets[0].getsockname()[1]),
        replace(asked[1], port=sockets[1].getsockname()[1]),
    )
    report = asyncio.run(_seed_and_report(settings, reset=False)) if demo else []

    def ready() -> None:
        for line in report:
            click.echo(line)
        click.echo(
            f"数据交换服务 / exchange: {endpoints[0].url}  (健康检查 {endpoints[0].url}/healthz)"
        )
        click.echo(
            f"资质管理系统 / portal:   {endpoints[1].url}  (健康检查 {endpoints[1].url}/healthz)"
        )
        click.echo("按 Ctrl+C 停止 / press Ctrl+C to stop")
        sys.stdout.flush()

    asyncio.run(serve_forever(settings, endpoints, sockets, on_ready=ready))


_ROLE_NAMES: dict[str, str] = {
    "exchange": "数据交换服务",
    "portal": "资质管理系统",
    "worker": "后台任务健康检查",
}


def _serve_role(
    settings: Settings,
    role: Role,
    host: str,
    port: int | None,
    health_port: int | None,
    workers: int,
    run_migrations: bool,
) -> None:
    default = {"exchange": settings.exchange.port, "portal": settings.portal.port}
    wanted = health_port if role == "worker" else _port(port, default[role])
    try:
        check_tls(settings)
        prepare_database(settings, run_migrations=run_migrations)
        sock = (
            None
            if wanted is None
            else bind(Endpoint(_ROLE_NAMES[role], host, wanted, settings.tls))
        )
    except ConfigError as exc:
        raise _fail(exc) from None
    endpoint = (
        None
        if sock is None
        else Endpoint(_ROLE_NAMES[role], host, sock.getsockname()[1], settings.tls)
    )
    if workers > 1 and role != "worker" and not settings.redis_url:
        click.echo(
            f"注意：未设置 IMSP_REDIS_URL，{workers} 个进程各自计数限流与登录失败次数 / "
            "without IMSP_REDIS_URL each process keeps its own rate limits",
            err=True,
        )
    if role == "worker" and settings.supervision.nice:
        # uploads first: the jobs run at a lower CPU priority and catch up when uploads pause
        os.nice(settings.supervision.nice)
    preload(role)

    def ready() -> None:
        if endpoint is None:
            click.echo(f"后台任务 / worker: {workers} 个进程（无 HTTP 端口）")
        else:
            click.echo(
                f"{endpoint.name} / {role}: {endpoint.url}  ({workers} 个进程；"
                f"健康检查 {endpoint.url}/healthz，就绪检查 {endpoint.url}/readyz)"
            )
        click.echo("SIGTERM 优雅退出，SIGHUP 逐个替换进程 / SIGTERM stops, SIGHUP reloads")
        sys.stdout.flush()

    def child(slot: int, announce: Callable[[], None]) -> int:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the parent's business
        run_loop(serve_role(settings, role, sock, on_ready=announce))
        return 0

    def stop() -> None:
        if sock is not None:
            sock.close()  # the children close theirs; then new connections are refused

    with metrics_dir(workers):
        supervisor = Supervisor(
            workers=workers,
            target=child,
            stop_seconds=settings.server.shutdown_seconds,
            on_ready=ready,
            on_stop=stop,
        )
        status = supervisor.run()
    raise SystemExit(status)


@click.group()
def db() -> None:
    """数据库迁移与状态。"""


@db.command("upgrade")
def db_upgrade() -> None:
    """迁移数据库到最新结构（可重复执行）。"""
    settings = load_settings()
    try:
        check_database(settings)
    except ConfigError as exc:
        raise _fail(exc) from None
    migrate.upgrade(settings)
    click.echo("数据库已是最新结构 / database schema is up to date")


@db.command("status")
def db_status() -> None:
    """显示数据库是否需要迁移。"""
    settings = load_settings()
    try:
        check_database(settings)
    except ConfigError as exc:
        raise _fail(exc) from None
    todo = migrate.unapplied_heads(settings)
    click.echo(
        "待迁移 / pending: " + ", ".join(todo) if todo else "数据库已是最新结构 / up to date"
    )
    if todo:
        raise SystemExit(1)


db.add_command(partitions)  # imsp db partitions list|create|archive (cli/partitions.py)


@click.group()
def demo() -> None:
    """演示数据。"""


@demo.command("seed")
@click.option("--reset", is_flag=True, help="重新生成演示 appSecret 与账号密码")
def demo_seed(reset: bool) -> None:
    """初始化演示机构、凭据与各角色账号（可重复执行）。"""
    settings = load_settings()
    try:
        prepare_database(settings, run_migrations=False)
    except ConfigError as exc:
        raise _fail(exc) from None
    for line in asyncio.run(_seed_and_report(settings, reset=reset)):
        click.echo(line)
