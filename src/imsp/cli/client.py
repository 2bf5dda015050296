"""Hospital-side commands: ``push``, ``validate``, ``sample``, ``token``, ``selfcheck``.

Thin: parse, call the SDK (``imsp.client``), print in Chinese. Installs and runs without the server
extra — nothing here imports fastapi, sqlalchemy or pydantic.

Exit codes: 0 everything accepted; 1 records rejected (or a self-check step failed); 2 wrong usage;
3 the command could not be completed (configuration, input file, credentials, network, platform).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson

from imsp.cli.output import echo_receipt, table
from imsp.client import Client, ClientError, Outbox, Receipt, Sender
from imsp.client import validate as offline_check
from imsp.client.config import ClientConfig
from imsp.client.receipt import rejected_json
from imsp.client.records import dataset as resolve
from imsp.client.records import read_records, write_json
from imsp.standard.mask import mask_text

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REJECTED = 1
EXIT_FAILED = 3

_CONNECTION = (
    "base_url",
    "app_id",
    "app_secret",
    "timeout",
    "retries",
    "batch_size",
    "outbox",
    "ca_file",
)


def with_config(f: F) -> F:
    """Connection options (flags > environment > config file) folded into ``cfg``; SDK errors
    printed as one masked line with the catalogue's hint, exit code 3."""

    @functools.wraps(f)
    def wrapper(*args: Any, config_file: str | None, **kw: Any) -> Any:
        flags = {name: kw.pop(name) for name in _CONNECTION}
        try:
            cfg = ClientConfig.load(flags=flags, config_file=config_file)
            return f(*args, cfg=cfg, **kw)
        except ClientError as exc:
            fail(exc)

    options = [
        click.option("--config", "config_file", help="配置文件（默认 ~/.config/imsp/client.toml）"),
        click.option("--base-url", help="平台地址，如 http://10.1.109.89:8888"),
        click.option("--app-id", help="平台分配的 appId"),
        click.option(
            "--app-secret", help="appSecret（建议用环境变量或配置文件，避免出现在进程列表）"
        ),
        click.option("--timeout", type=float, help="单次请求超时（秒，默认 30）"),
        click.option("--retries", type=int, help="失败重试次数（默认 5）"),
        click.option("--batch-size", type=int, help="每批记录数（默认 500）"),
        click.option("--outbox", help="出站队列文件（默认 ~/.local/share/imsp/outbox.db）"),
        click.option("--ca-file", help="平台 HTTPS 证书的 CA 证书文件（PEM；默认使用系统 CA）"),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def fail(exc: ClientError) -> NoReturn:
    if exc.partial is not None:
        p = exc.partial
        click.echo(
            f"中断前已处理 {p.total} 条（通过 {p.success}，拒绝 {p.fail}）；其余未上传。"
            "可直接重新运行（重复上传无害），或改用 --via-outbox。",
            err=True,
        )
    click.echo(f"错误：{mask_text(str(exc))}", err=True)
    if exc.hint:
        click.echo(f"处理建议：{exc.hint}", err=True)
    raise SystemExit(EXIT_FAILED)


def connect(cfg: ClientConfig) -> Client:
    cfg.require_connection()
    return Client(
        cfg.base_url,
        cfg.app_id,
        cfg.app_secret,
        timeout=cfg.timeout,
        retries=cfg.retries,
        batch_size=cfg.batch_size,
        ca_file=cfg.ca_file or None,
    )


def _write_rejected(path: str | None, receipt: Receipt, records: list[Any]) -> None:
    if path and receipt.rejected:
        write_json(Path(path), rejected_json(receipt.rejected, records))
        click.echo(f"\n被拒绝的记录及原因已写入 {path}（含个人信息，请妥善保管）")


# --------------------------------------------------------------------------- push


@click.command()
@click.argument("dataset")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="试运行：平台只校验不入库")
@click.option("--atomic", is_flag=True, help="整批要么全部入库、要么全部不入库")
@click.option("--rejected", "rejected_file", help="把被拒绝的记录及原因写入文件（.json/.jsonl）")
@click.option("--via-outbox", is_flag=True, help="先写入本地出站队列再投递（断网不丢数据）")
@with_config
def push(
    dataset: str,
    file: str,
    dry_run: bool,
    atomic: bool,
    rejected_file: str | None,
    via_outbox: bool,
    cfg: ClientConfig,
) -> None:
    """上传 FILE（.json/.jsonl/.csv）中的 DATASET 数据集记录（服务名或短代码均可）。"""
    ds = resolve(dataset)
    records = read_records(Path(file), ds)
    if not records:
        click.echo("文件中没有记录。")
        return
    if via_outbox:
        if dry_run or atomic:
            raise click.UsageError("--via-outbox 不能与 --dry-run/--atomic 同用")
        _push_via_outbox(cfg, ds.code, records, rejected_file)
        return
    started = time.monotonic()
    with connect(cfg) as client:
        if len(records) > client.batch_size:
            with click.progressbar(
                length=len(records),
                label=f"上传 {ds.service}",
                file=sys.stderr,
            ) as bar:
                done = [0]

                def advance(sent: int) -> None:
                    bar.update(sent - done[0])
                    done[0] = sent

                receipt = client.upload(
                    ds.code, records, dry_run=dry_run, atomic=atomic, progress=advance
                )
        else:
            receipt = client.upload(ds.code, records, dry_run=dry_run, atomic=atomic)
    mode = "试运行（未入库）" if dry_run else "上传完成"
    echo_receipt(
        receipt, title=f"{ds.name}（{ds.service}）{mode}：", elapsed=time.monotonic() - started
    )
    ids = receipt.exchange_ids
    if ids:
        more = f" 等 {len(ids)} 个批次" if len(ids) > 1 else ""
        click.echo(f"\n交换编号（联系平台实施方时请提供）：{ids[0]}{more}")
    _write_rejected(rejected_file, receipt, records)
    if not receipt.ok:
        raise SystemExit(EXIT_REJECTED)


def _push_via_outbox(
    cfg: ClientConfig, code: str, records: list[Any], rejected_file: str | None
) -> None:
    with Outbox(cfg.outbox_path) as outbox:
        ids = outbox.enqueue(code, records)
        click.echo(f"已写入出站队列 {outbox.path}：{len(ids)} 条")
        with connect(cfg) as client, Sender(outbox, client) as sender:
            report = sender.drain()
        if report.busy:
            click.echo("另一个发送进程（imsp outbox drain --follow）正在投递，记录将由它送达。")
            return
        outcome = outbox.outcome(ids)
    states = [s for s, _ in outcome.values()]
    receipt = Receipt(
        dataset=code,
        total=len(ids),
        success=states.count("delivered"),
        fail=states.count("parked"),
        results=tuple(r for _, r in outcome.values() if r is not None),
    )
    echo_receipt(receipt, title="出站队列投递结果：", elapsed=None)
    pending = len(ids) - receipt.success - receipt.fail
    if rejected_file:
        _write_rejected(rejected_file, receipt, records)
    if receipt.fail:
        click.echo(
            f"{receipt.fail} 条被拒绝，已暂存（parked）：修正后用 imsp outbox retry 重新投递。"
        )
        raise SystemExit(EXIT_REJECTED)
    if pending:
        click.echo(
            f"暂未送达 {pending} 条（{mask_text(report.error or '')}）：已安全保存在出站队列，"
        )
        click.echo("稍后运行 imsp outbox drain（或常驻 imsp outbox drain --follow）继续投递。")
        raise SystemExit(EXIT_FAILED)


# --------------------------------------------------------------------------- validate, sample


@click.command()
@click.argument("dataset")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejected", "rejected_file", help="把未通过的记录及原因写入文件（.json/.jsonl）")
def validate(dataset: str, file: str, rejected_file: str | None) -> None:
    """离线校验 FILE 中的 DATASET 记录（与平台使用同一数据标准，不联网）。"""
    try:
        ds = resolve(dataset)
        records = read_records(Path(file), ds)
    except ClientError as exc:
        fail(exc)
    receipt = offline_check(ds.code, records)
    echo_receipt(receipt, title=f"{ds.name}（{ds.service}）离线校验：", elapsed=None)
    _write_rejected(rejected_file, receipt, records)
    if not receipt.ok:
        raise SystemExit(EXIT_REJECTED)


@click.command()
@click.argument("dataset")
@click.option("--count", "-n", type=click.IntRange(1, 100_000), default=10, show_default=True)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="随机种子（相同种子生成相同数据）"
)
@click.option("--org", "org_code", help="机构统一社会信用代码（默认取配置 org_code 或演示机构）")
@click.option("--output", "-o", help="写入文件（.json/.jsonl）；默认输出到屏幕")
def sample(dataset: str, count: int, seed: int, org_code: str | None, output: str | None) -> None:
    """生成 DATASET 的测试数据（第四章：互联网医院生成测试数据），均为虚构。"""
    from imsp.standard import sample as generator

    try:
        ds = resolve(dataset)
        org = org_code or ClientConfig.load().org_code
    except ClientError as exc:
        fail(exc)
    records = generator.generate(ds.code, count=count, seed=seed, org_code=org)
    if output:
        write_json(Path(output), records)
        click.echo(f"已生成 {len(records)} 条 {ds.name}（{ds.service}）测试数据：{output}")
    else:
        click.echo(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode())


# --------------------------------------------------------------------------- token, selfcheck


@click.command()
@click.option("--raw", is_flag=True, help="只输出令牌本身（便于脚本使用）")
@with_config
def token(raw: bool, cfg: ClientConfig) -> None:
    """获取访问令牌（授权码），显示有效期与过期时间。"""
    with connect(cfg) as client:
        tok = client.token()
        refresh_at = client.tokens.refresh_at(tok)
    if raw:
        click.echo(tok.value)
        return
    click.echo(
        table(
            ["项目", "值"],
            [
                ("平台", cfg.base_url),
                ("appId", cfg.app_id),
                ("令牌", tok.masked + "（完整令牌：imsp token --raw）"),
                ("有效期", f"{tok.expires_in} 秒"),
                ("过期时间（平台）", tok.expire_time or "-"),
                ("本机计划刷新时间", refresh_at.strftime("%Y-%m-%d %H:%M:%S")),
            ],
        )
    )


@click.command()
@click.option("--count", "-n", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--org", "org_code", help="本机构统一社会信用代码（默认取配置 org_code）")
@with_config
def selfcheck(count: int, seed: int, org_code: str | None, cfg: ClientConfig) -> None:
    """接入自检：获取令牌，再用测试数据逐个服务试运行与正式上传，输出结果表。"""
    from imsp.client import selfcheck as check
    from imsp.standard import sample as generator

    org = org_code or cfg.org_code
    samples = generator.generate_all(count=count, seed=seed, org_code=org)
    click.echo(f"接入自检：{cfg.base_url}  机构 {org}  每个服务 {count} 条测试数据")
    with connect(cfg) as client:
        steps = check.run(client, samples)
    rows = [
        (s.name, s.title, s.dry_run or "-", s.real or "-", "通过" if s.ok else "未通过", s.reason)
        for s in steps
    ]
    click.echo(table(["服务", "名称", "试运行", "正式上传", "结论", "说明"], rows, max_col=70))
    failed = [s for s in steps if not s.ok]
    if failed:
        click.echo(f"\n{len(failed)} 项未通过，请按说明修正后重新自检。")
        raise SystemExit(EXIT_REJECTED)
    click.echo(f"\n全部 {len(steps)} 项通过，可以申请接入确认。")
