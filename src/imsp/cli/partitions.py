"""``imsp db partitions list|create|archive``: the monthly partitions of record, record_version and
exchange_log on PostgreSQL (``imsp.exchange.partitions``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError

from imsp.cli.env import load_settings
from imsp.cli.output import table
from imsp.clock import format_datetime
from imsp.config import Settings
from imsp.exchange import partitions as parts
from imsp.storage.db import db_error_name


def _settings() -> Settings:
    settings = load_settings()
    if settings.is_sqlite:
        raise click.ClickException(
            "SQLite 数据库不分区；分区只用于 PostgreSQL（IMSP_DATABASE_URL）"
        )
    return settings


def _connect(settings: Settings, *, autocommit: bool = False) -> Connection:
    engine = create_engine(settings.sync_url)
    conn = engine.connect()
    if autocommit:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    if not parts.is_partitioned(conn):
        conn.close()
        engine.dispose()
        raise click.ClickException("数据库尚未分区：请先执行 imsp db upgrade")
    return conn


def _month(value: str) -> datetime:
    try:
        m = parts.parse_month(value)
    except ValueError:
        raise click.BadParameter(f"月份应为 YYYY-MM：{value}") from None
    return datetime(m.year, m.month, 1, tzinfo=UTC)


@click.group("partitions")
def partitions() -> None:
    """按月分区（PostgreSQL）：查看、提前创建、归档（分离后导出，不做 DELETE）。"""


@partitions.command("list")
def partitions_list() -> None:
    """列出 record、record_version、exchange_log 的各月分区与已归档的月份。"""
    conn = _connect(_settings())
    try:
        found = parts.list_partitions(conn)
        archived = conn.execute(
            text(
                "SELECT parent, month, rows, location, archived_at FROM archived_partition"
                " ORDER BY month, parent"
            )
        ).all()
    finally:
        conn.close()
        conn.engine.dispose()
    click.echo(
        table(
            ("表", "分区", "月份", "行数（估计）", "大小"),
            [
                (
                    p.parent,
                    p.name,
                    f"{p.month:%Y-%m}" if p.month else "默认（兜底）",
                    f"{p.rows:,}",
                    f"{p.bytes / 1024 / 1024:.1f} MB",
                )
                for p in found
            ],
        )
    )
    if archived:
        click.echo("\n已归档：")
        click.echo(
            table(
                ("表", "月份", "行数", "归档位置", "归档时间"),
                [
                    (parent, f"{month:%Y-%m}", f"{rows:,}", location, format_datetime(at))
                    for parent, month, rows, location, at in archived
                ],
                max_col=200,
            )
        )


@partitions.command("create")
@click.option("--ahead", default=parts.AHEAD, show_default=True, help="提前创建的月数")
@click.option("--month", "months", multiple=True, help="另外创建的月份 YYYY-MM（可多次）")
def partitions_create(ahead: int, months: tuple[str, ...]) -> None:
    """创建本月及之后若干月的分区（后台工作进程每小时也会做）；兜底分区中该月的数据随之移入。"""
    wanted = [parts.month_of(_month(m)) for m in months]
    conn = _connect(_settings())
    try:
        try:
            created = parts.ensure(conn, now=datetime.now(UTC), ahead=ahead, months=wanted)
            conn.commit()
        except DBAPIError as exc:
            raise click.ClickException(
                f"未能创建分区（{db_error_name(exc)}），未做任何更改，请稍后重试"
            ) from None
    finally:
        conn.close()
        conn.engine.dispose()
    click.echo("已创建：" + "、".join(created) if created else "分区均已存在")


@partitions.command("archive")
@click.argument("month")
@click.option(
    "--to",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="导出文件目录（默认 IMSP_DATA_DIR/archive）",
)
@click.option("--keep", is_flag=True, help="分离并导出后在库内保留该表（默认删除）")
def partitions_archive(month: str, directory: Path | None, keep: bool) -> None:
    """归档一个已结束的月份 YYYY-MM：分离三张表的该月分区，pg_dump 导出，再删除（或 --keep 保留）。"""
    settings = _settings()
    target = parts.month_of(_month(month))
    conn = _connect(settings, autocommit=True)
    try:
        done = parts.archive(
            conn,
            url=settings.sync_url,
            month=target,
            directory=directory or settings.data_dir / "archive",
            keep=keep,
            now=datetime.now(UTC),
        )
    except parts.ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    except DBAPIError as exc:  # a lock not granted in time, a lost connection
        raise click.ClickException(
            f"数据库未能完成归档（{db_error_name(exc)}），已完成的表见 imsp db partitions list；"
            "请稍后重试"
        ) from None
    finally:
        conn.close()
        conn.engine.dispose()
    if not done:
        raise click.ClickException(f"{target:%Y-%m} 没有可归档的分区（不存在或已归档）")
    click.echo(
        table(
            ("表", "分区", "行数", "归档位置", "SHA-256"),
            [(a.parent, a.partition, f"{a.rows:,}", a.location, a.sha256 or "") for a in done],
            max_col=200,
        )
    )
