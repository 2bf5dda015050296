"""``imsp supervise``: the supervision worker on its own, and sweeps (re-runs of rules)."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime, timedelta

import click
from sqlalchemy import select

from imsp.auth.models import Institution
from imsp.cli.env import load_settings
from imsp.cli.server import _fail
from imsp.clock import BEIJING, SystemClock
from imsp.config import Settings
from imsp.errors import ConfigError
from imsp.server import prepare_database
from imsp.standard.ruleset import load_rules
from imsp.storage.db import Database
from imsp.supervision.engine import Stats
from imsp.supervision.sweep import sweep as run_sweep
from imsp.supervision.worker import run_worker, worker_name


def _ready() -> Settings:
    settings = load_settings()
    try:
        prepare_database(settings, run_migrations=False)
    except ConfigError as exc:
        raise _fail(exc) from None
    return settings


@click.group()
def supervise() -> None:
    """监管规则：工作进程与重新评估。"""


@supervise.command("worker")
def worker() -> None:
    """单独运行监管规则工作进程（消费上传变更队列；SIGTERM/Ctrl+C 在本批完成后退出）。"""
    settings = _ready()
    if settings.supervision.nice:
        # uploads first: the worker runs at a lower CPU priority and catches up when they pause
        os.nice(settings.supervision.nice)

    async def go() -> None:
        db = Database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        name = worker_name()
        click.echo(f"监管规则工作进程已启动 / supervision worker {name}")
        try:
            await run_worker(db, settings=settings, clock=SystemClock(), stop=stop, worker=name)
        finally:
            await db.dispose()

    asyncio.run(go())


def _report(stats: Stats, seconds: float) -> list[str]:
    rate = stats.records / seconds if seconds > 0 else 0.0
    lines = [
        f"评估记录 / records: {stats.records}  用时 {seconds:.1f} 秒（{rate:,.0f} 条/秒）",
        f"新发现 {stats.raised} · 更新 {stats.updated} · 已整改-重新上传 {stats.rectified} "
        f"· 待关联 {stats.pending}",
    ]
    for rid in sorted(stats.checks):
        n, t = stats.checks[rid], stats.seconds.get(rid, 0.0)
        per = n / t if t > 0 else 0.0
        lines.append(f"  {rid}  {n:>9} 次  {t:8.2f} 秒  {per:>12,.0f} 条/秒")
    return lines


@supervise.command("sweep")
@click.option("--rule", "rules", multiple=True, help="只评估这些规则（可重复，如 --rule R19）")
@click.option("--org", default=None, help="只评估该机构（统一社会信用代码）")
@click.option("--since", default=None, help="只评估业务时间不早于该日期的记录（yyyy-MM-dd）")
@click.option("--batch", default=1000, show_default=True, help="每批记录数（每批一个事务）")
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="并行评估的进程数（仅 PostgreSQL；记录按 id 分给各进程，结果与单进程相同）",
)
def sweep(
    rules: tuple[str, ...], org: str | None, since: str | None, batch: int, jobs: int
) -> None:
    """全量或部分重新评估已存储的记录（规则变更后使用）。"""
    settings = _ready()
    catalogue = load_rules()
    unknown = [r for r in rules if r not in catalogue]
    if unknown:
        raise click.BadParameter(f"未知规则 {', '.join(unknown)}", param_hint="--rule")
    start: datetime | None = None
    if since:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=BEIJING)
        except ValueError:
            raise click.BadParameter("日期格式应为 yyyy-MM-dd", param_hint="--since") from None

    async def go() -> tuple[Stats, float]:
        db = Database(settings)
        try:
            inst_id: int | None = None
            if org:
                async with db.session() as s:
                    inst_id = await s.scalar(
                        select(Institution.id).where(Institution.org_code == org)
                    )
                if inst_id is None:
                    raise click.BadParameter(f"机构 {org} 不存在", param_hint="--org")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            stats = await run_sweep(
                db,
                now=SystemClock().now(),
                grace=timedelta(hours=settings.supervision.grace_hours),
                rule_ids=set(rules) or None,
                institution_id=inst_id,
                since=start,
                batch=batch,
                jobs=jobs,
            )
            return stats, loop.time() - t0
        finally:
            await db.dispose()

    stats, seconds = asyncio.run(go())
    for line in _report(stats, seconds):
        click.echo(line)
