"""``imsp outbox``: the local outbox (出站队列) — status, drain, parked records, retry, purge."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path
from typing import Any

import click
import orjson

from imsp.cli.client import EXIT_FAILED, EXIT_REJECTED, connect, fail, with_config
from imsp.cli.output import table
from imsp.client import ClientError, DrainReport, Outbox, Sender
from imsp.client.config import ClientConfig
from imsp.client.records import write_json
from imsp.standard.mask import mask_text
from imsp.standard.model import load_standard

_STATE_NAMES = {
    "pending": "待发送",
    "inflight": "发送中",
    "delivered": "已送达",
    "parked": "已暂存",
}


@click.group()
def outbox() -> None:
    """本地出站队列：断网、平台维护时记录不丢失，恢复后自动补发。"""


@outbox.command()
@with_config
def status(cfg: ClientConfig) -> None:
    """各数据集待发送、发送中、已送达、已暂存（被拒绝）的记录数。"""
    with Outbox(cfg.outbox_path) as box:
        st = box.status()
    click.echo(f"出站队列：{cfg.outbox_path}")
    if not st.counts:
        click.echo("队列为空。")
        return
    std = load_standard()
    rows: list[list[Any]] = []
    for code in sorted(st.counts, key=lambda c: std.datasets[c].number):
        c = st.counts[code]
        rows.append([std.datasets[code].service, *(c.get(s, 0) for s in _STATE_NAMES)])
    rows.append(["合计", *(st.total(s) for s in _STATE_NAMES)])
    click.echo(table(["服务", *_STATE_NAMES.values()], rows))
    if st.oldest_pending is not None:
        since = dt.datetime.fromtimestamp(st.oldest_pending).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"最早的未送达记录入队于 {since}")
    if st.last_error:
        click.echo(f"最近一次投递失败：{mask_text(st.last_error)}")
    if st.total("parked"):
        click.echo(
            "有被拒绝的记录：imsp outbox parked --output 文件 导出，修正后 imsp outbox retry。"
        )


def _echo_report(r: DrainReport) -> None:
    line = f"本次送达 {r.delivered} 条，暂存（被拒绝）{r.parked} 条，批次 {r.batches}"
    if r.recovered:
        line += f"；接管上次中断的 {r.recovered} 条"
    click.echo(line)
    if r.error:
        click.echo(f"投递中止：{mask_text(r.error)}")


@outbox.command()
@click.option("--follow", is_flag=True, help="常驻运行：持续投递，平台不可用时按退避重试")
@click.option(
    "--idle", type=float, default=5.0, show_default=True, help="队列为空时的检查间隔（秒）"
)
@with_config
def drain(follow: bool, idle: float, cfg: ClientConfig) -> None:
    """把待发送记录投递到平台（--follow 常驻，SIGTERM/Ctrl+C 优雅退出）。"""
    with Outbox(cfg.outbox_path) as box, connect(cfg) as client, Sender(box, client) as sender:
        if not follow:
            report = sender.drain()
            _echo_report(report)
            if report.error:
                raise SystemExit(EXIT_FAILED)
            if report.parked:
                raise SystemExit(EXIT_REJECTED)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        click.echo(f"持续投递 {cfg.outbox_path} → {cfg.base_url}（Ctrl+C 停止）")

        def on_report(r: DrainReport) -> None:
            if r.batches or r.error or r.recovered:
                _echo_report(r)

        sender.run(stop, idle=idle, on_report=on_report)
        click.echo("已停止。")


@outbox.command()
@click.option("--dataset", help="只看该数据集")
@click.option("--output", "-o", help="导出为文件（.json/.jsonl），修正后用 retry --fixed 重新投递")
@with_config
def parked(dataset: str | None, output: str | None, cfg: ClientConfig) -> None:
    """被平台拒绝而暂存的记录及原因。"""
    with Outbox(cfg.outbox_path) as box:
        items = box.parked(dataset=dataset)
    if output:
        write_json(Path(output), [p.to_json() for p in items])
        click.echo(f"已导出 {len(items)} 条暂存记录到 {output}（含个人信息，请妥善保管）")
        return
    if not items:
        click.echo("没有暂存的记录。")
        return
    rows = [
        (p.id, p.dataset, p.key or "-", f"{p.msg_code} {p.msg}", "；".join(e.msg for e in p.errors))
        for p in items[:50]
    ]
    click.echo(table(["编号", "数据集", "业务主键", "回执", "问题"], rows, max_col=80))
    if len(items) > 50:
        click.echo(f"……共 {len(items)} 条，用 --output 导出全部")


@outbox.command()
@click.option("--id", "ids", type=int, multiple=True, help="只重发这些编号（可重复）")
@click.option("--dataset", help="只重发该数据集")
@click.option("--fixed", type=click.Path(exists=True, dir_okay=False), help="修正后的导出文件")
@with_config
def retry(ids: tuple[int, ...], dataset: str | None, fixed: str | None, cfg: ClientConfig) -> None:
    """把暂存的记录放回队列（--fixed 先用修正后的记录替换），再运行 drain 投递。"""
    replacements: dict[int, Any] = {}
    if fixed:
        try:
            raw = Path(fixed).read_bytes()
            items = (
                [orjson.loads(line) for line in raw.splitlines() if line.strip()]
                if fixed.endswith((".jsonl", ".ndjson"))
                else orjson.loads(raw)
            )
            replacements = {int(x["id"]): x["record"] for x in items}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            fail(ClientError(f"{fixed} 不是 imsp outbox parked --output 导出的格式（{exc}）"))
    with Outbox(cfg.outbox_path) as box:
        n = box.retry(ids or None, dataset=dataset, replacements=replacements)
    click.echo(f"已放回队列 {n} 条，运行 imsp outbox drain 投递。")


@outbox.command()
@click.option("--days", type=float, default=7, show_default=True, help="删除早于该天数的已送达记录")
@with_config
def purge(days: float, cfg: ClientConfig) -> None:
    """清理已送达的历史记录（待发送与暂存的记录不受影响）。"""
    with Outbox(cfg.outbox_path) as box:
        n = box.purge_delivered(older_than=days * 86400)
    click.echo(f"已清理 {n} 条已送达记录。")
