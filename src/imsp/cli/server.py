"""Platform-side commands: ``serve``, ``db``, ``demo``."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace

import click

from imsp.cli.env import load_settings
from imsp.cli.partitions import partitions
from imsp.clock import SystemClock
from imsp.config import Settings
from imsp.errors import ConfigError
from imsp.logs import configure as configure_logging
from imsp.server import Endpoint, bind, check_database, prepare_database, serve_forever
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
@click.option("--host", default=None, help="监听地址（默认 IMSP_HOST 或 127.0.0.1）")
@click.option("--exchange-port", type=int, default=None, help="数据交换服务端口（默认 8888）")
@click.option(
    "--portal-port", type=int, default=None, help="资质管理系统端口（默认 8091；0 由系统分配）"
)
@click.option("--migrate", "run_migrations", is_flag=True, help="启动前执行数据库迁移")
@click.option("--demo", is_flag=True, help="初始化演示数据并打印演示凭据")
def serve(
    host: str | None,
    exchange_port: int | None,
    portal_port: int | None,
    run_migrations: bool,
    demo: bool,
) -> None:
    """启动数据交换服务与资质管理系统（同一进程，SIGTERM 优雅退出）。"""
    settings = load_settings()
    configure_logging(settings)
    host = host or settings.host
    asked = (
        Endpoint("数据交换服务", host, _port(exchange_port, settings.exchange.port)),
        Endpoint("资质管理系统", host, _port(portal_port, settings.portal.port)),
    )
    try:
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
