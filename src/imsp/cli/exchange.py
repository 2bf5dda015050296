"""``imsp credentials …`` (appId/appSecret) and ``imsp exchange …`` (exchange log, request archive).

Identifiers in records are masked in every output (``imsp.standard.mask``); the one way to get the
exact bytes of an archived request is ``imsp exchange show ID --body FILE``, which is audited.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from imsp.auth import credentials as creds
from imsp.auth.service import CHANNELS
from imsp.cli.env import load_settings, run
from imsp.cli.output import table
from imsp.clock import BEIJING, SystemClock, format_datetime
from imsp.exchange import history, queries, tokens
from imsp.shared_state import open_state
from imsp.standard.mask import mask_key, mask_record
from imsp.standard.model import Dataset, load_standard


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    click.echo(table(headers, rows))


def _when(value: datetime | None) -> str:
    return format_datetime(value) if value is not None else "-"


# --------------------------------------------------------------------------- credentials


@click.group()
def credentials() -> None:
    """数据上报凭据（appId/appSecret）：创建、更换密钥、停用、列表。"""


@credentials.command("create")
@click.argument("org_code")
@click.option("--name", "institution_name", default="", help="机构名称（新机构必填）")
@click.option("--label", default="数据上报", show_default=True, help="凭据用途说明")
@click.option(
    "--channel",
    type=click.Choice(["test", "production"]),
    default="production",
    show_default=True,
    help="通道：test 测试（联调，不计入监管统计）/ production 正式",
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def credentials_create(
    org_code: str, institution_name: str, label: str, channel: str, as_json: bool
) -> None:
    """为机构 ORG_CODE（统一社会信用代码）创建 appId/appSecret；密钥只显示这一次。"""
    now = SystemClock().now()
    issued = run(
        lambda s: creds.create_credential(
            s,
            org_code=org_code,
            institution_name=institution_name,
            now=now,
            name=label,
            channel=channel,
        )
    )
    _show_secret(
        issued.app_id,
        issued.app_secret,
        issued.org_code,
        issued.institution_name,
        as_json,
        channel=issued.channel,
    )


def _show_secret(
    app_id: str, secret: str, org: str, name: str, as_json: bool, *, channel: str = "production"
) -> None:
    if as_json:
        _echo_json(
            {
                "appId": app_id,
                "appSecret": secret,
                "organID": org,
                "institution": name,
                "channel": channel,
            }
        )
        return
    click.echo(f"机构 / institution: {name}  organID={org}")
    click.echo(f"  通道 / channel: {CHANNELS[channel]}（{channel}）")
    click.echo(f"  appId={app_id}")
    click.echo(f"  appSecret={secret}   （仅显示这一次 / shown once）")


@credentials.command("rotate")
@click.argument("app_id")
@click.option("--revoke-tokens", is_flag=True, help="同时作废已签发的访问令牌（密钥泄露时使用）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def credentials_rotate(app_id: str, revoke_tokens: bool, as_json: bool) -> None:
    """为 APP_ID 生成新密钥，旧密钥立即失效；已签发的令牌默认在到期前仍可用。"""
    now = SystemClock().now()
    issued, revoked = run(
        lambda s: tokens.rotate_secret(s, app_id=app_id, now=now, revoke=revoke_tokens)
    )
    _show_secret(
        issued.app_id,
        issued.app_secret,
        issued.org_code,
        issued.institution_name,
        as_json,
        channel=issued.channel,
    )
    if revoke_tokens:
        _announce()
    if revoke_tokens and not as_json:
        click.echo(f"  已作废访问令牌 / tokens revoked: {revoked}")


@credentials.command("revoke")
@click.argument("app_id")
def credentials_revoke(app_id: str) -> None:
    """停用 APP_ID：不再签发令牌，已签发的令牌随即失效（配置 IMSP_REDIS_URL 时各节点 1 秒内，否则各服务进程最迟 token_cache_seconds 秒内）。"""
    now = SystemClock().now()
    info = run(lambda s: tokens.revoke_credential(s, app_id=app_id, now=now))
    _announce()
    click.echo(f"已停用 / revoked: {info.app_id}  {info.institution_name}（{info.org_code}）")


def _announce() -> None:
    """After the revocation committed: every node drops its token cache (within 1 s with
    ``IMSP_REDIS_URL``; else each server process's cache expires within token_cache_seconds)."""
    settings = load_settings()

    async def main() -> bool:
        shared = open_state(settings)
        try:
            return await tokens.announce_revocation(shared)
        finally:
            await shared.close()

    if not asyncio.run(main()):
        click.echo(
            "注意：未能通知各节点（Redis 不可达），已签发的令牌最迟 "
            f"{settings.exchange.token_cache_seconds:g} 秒后失效 / nodes not notified",
            err=True,
        )


@credentials.command("list")
@click.option("--org", "org_code", default=None, help="只列出该机构（统一社会信用代码）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def credentials_list(org_code: str | None, as_json: bool) -> None:
    """列出全部凭据（不含密钥）。"""
    rows = run(lambda s: creds.list_credentials(s, org_code=org_code))
    if as_json:
        _echo_json(
            [
                {
                    "appId": r.app_id,
                    "organID": r.org_code,
                    "institution": r.institution_name,
                    "label": r.name,
                    "status": r.status,
                    "channel": r.channel,
                    "createdAt": _when(r.created_at),
                    "rotatedAt": _when(r.rotated_at),
                    "revokedAt": _when(r.revoked_at),
                }
                for r in rows
            ]
        )
        return
    _table(
        ("appId", "organID", "机构", "用途", "通道", "状态", "创建", "更换密钥", "停用"),
        [
            (
                r.app_id,
                r.org_code,
                r.institution_name,
                r.name,
                CHANNELS.get(r.channel, r.channel),
                r.status,
                _when(r.created_at),
                _when(r.rotated_at),
                _when(r.revoked_at),
            )
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- exchange log


@click.group()
def exchange() -> None:
    """交换日志与报文归档：查询、查看、按记录追溯到原始报文。"""


_RELATIVE = re.compile(r"^(\d+)([mhd])$")


def parse_since(value: str, now: datetime) -> datetime:
    """``30m``/``12h``/``7d`` ago, or ``yyyy-MM-dd[ HH:mm:ss]`` in Beijing time."""
    m = _RELATIVE.match(value.strip())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=BEIJING)
    except ValueError:
        raise click.BadParameter("应为 30m、12h、7d 或 yyyy-MM-dd[ HH:mm:ss]") from None


def _log_json(r: queries.LogRow) -> dict[str, Any]:
    return {
        "exchangeId": str(r.id),
        "time": format_datetime(r.at),
        "organID": r.org_code,
        "appId": r.app_id,
        "service": r.service,
        "code": r.code,
        "total": r.total,
        "success": r.success,
        "fail": r.fail,
        "size": r.size,
        "latencyMs": round(r.latency_ms, 2),
        "client": r.client_addr,
        "dryRun": r.dry_run,
        "atomic": r.atomic,
        "channel": r.channel,
        "chunked": r.chunked,
        "archived": r.archived,
    }


@exchange.command("log")
@click.option("--org", "org_code", default=None, help="机构统一社会信用代码")
@click.option("--service", default=None, help="服务名，如 uploadPrescriptionInfo、accesstoken")
@click.option("--since", default=None, help="起始时间：30m、12h、7d 或 yyyy-MM-dd[ HH:mm:ss]")
@click.option("--failed", is_flag=True, help="只看被拒绝的请求或含失败记录的请求")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def exchange_log(
    org_code: str | None,
    service: str | None,
    since: str | None,
    failed: bool,
    limit: int,
    as_json: bool,
) -> None:
    """列出交换日志（最新在前）：每个请求，无论是否被接受。"""
    start = parse_since(since, SystemClock().now()) if since else None
    rows = run(
        lambda s: queries.list_log(
            s, org_code=org_code, service=service, since=start, failed=failed, limit=limit
        )
    )
    if as_json:
        _echo_json([_log_json(r) for r in rows])
        return
    _table(
        ("时间", "exchangeId", "organID", "服务", "代码", "总/成功/失败", "字节", "耗时ms", "来源"),
        [
            (
                format_datetime(r.at),
                r.id,
                r.org_code or "-",
                r.service
                + (" (dryRun)" if r.dry_run else "")
                + (" [测试]" if r.channel == "test" else ""),
                r.code,
                f"{r.total}/{r.success}/{r.fail}",
                r.size,
                f"{r.latency_ms:.1f}",
                r.client_addr,
            )
            for r in rows
        ],
    )


def _exchange_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"不是有效的 exchangeId：{value}") from None


@exchange.command("show")
@click.argument("exchange_id")
@click.option(
    "--body",
    "body_file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="把原始报文（逐字节）写入该文件（- 为标准输出）；此操作记入审计日志",
)
def exchange_show(exchange_id: str, body_file: Path | None) -> None:
    """查看一次交换：日志、报文摘要校验、本次写入的记录版本；可导出原始报文。"""
    xid = _exchange_id(exchange_id)
    now = SystemClock().now()
    export_to = str(body_file) if body_file is not None else None
    found = run(lambda s: history.show_exchange(s, exchange_id=xid, now=now, export_to=export_to))
    if found is None:
        note = run(lambda s: queries.archive_note_for_exchange(s, xid))
        if note is not None:
            raise click.ClickException(f"交换记录已归档：{note.text()}")
        raise click.ClickException(f"交换记录不存在 / unknown exchange: {xid}")
    row, archived, versions = found.log, found.archived, found.versions
    if body_file is not None:
        if archived is None:
            raise click.ClickException("该请求的报文未归档（被拒绝的请求或试运行不保存报文）")
        if str(body_file) == "-":
            sys.stdout.buffer.write(archived.body)
            sys.stdout.buffer.flush()
            return
        body_file.write_bytes(archived.body)
    for k, v in _log_json(row).items():
        click.echo(f"{k:<11} {v}")
    if archived is not None:
        state = "一致 / intact" if archived.intact else "不一致！/ MISMATCH"
        click.echo(f"sha256      {archived.sha256}  {state}")
        if body_file is not None:
            click.echo(f"报文已写入 / body written to {body_file} ({len(archived.body)} bytes)")
    std = load_standard()
    if versions:
        click.echo("写入的记录版本 / stored versions:")
        _table(
            ("位置", "数据集", "业务主键", "版本", "当前"),
            [
                (
                    v.position,
                    v.dataset,
                    mask_key(std.dataset(v.dataset), v.key),
                    v.version,
                    _current(v),
                )
                for v in versions
            ],
        )


def _current(v: queries.StoredVersion) -> str:
    if v.archived_month is not None:  # the version is online, its record's row archived
        return f"记录行已归档（{v.archived_month:%Y-%m}）"
    return "是" if v.current else ""


@exchange.command("record")
@click.argument("dataset")
@click.argument("key")
@click.option("--org", "org_code", required=True, help="机构统一社会信用代码")
def exchange_record(dataset: str, key: str, org_code: str) -> None:
    """显示一条记录当前存储的版本（已脱敏的 JSON）。

    record.data 以压缩编码存储（规范化 JSON + zstd 字典压缩），psql 中无法用 JSON 运算符读取，
    请用本命令查看。"""
    std = load_standard()
    try:
        ds = std.dataset(dataset)
    except KeyError:
        raise click.BadParameter(f"未知数据集 {dataset}") from None
    found = run(lambda s: queries.current_record(s, org_code=org_code, dataset=ds.code, key=key))
    if found is None:
        note = run(lambda s: history.archived_record(s, org_code=org_code, dataset=ds, key=key))
        last = run(lambda s: history.last_online_version(s, org_code=org_code, dataset=ds, key=key))
        if last is not None and last.content is not None:
            # its row is archived, its last version (stored in a later month) is online
            _audit_view(org_code, ds, key, "cli_exchange_record")
            v = last.version
            click.echo(
                f"{ds.name}（{ds.code}） {mask_key(ds, key)}  organID={org_code}  版本 {v.version}"
                f"  更新于 {format_datetime(v.at)}  exchangeId {v.exchange_id}"
            )
            where = f"：{note.text()}" if note is not None else ""
            click.echo(f"记录的存储行已归档{where}；以下内容由该版本的请求报文重现（在线）")
            _echo_json(mask_record(ds, last.content))
            return
        if note is not None:
            raise click.ClickException(f"记录已归档：{note.text()}")
        raise click.ClickException("记录不存在 / no such record")
    _audit_view(org_code, ds, key, "cli_exchange_record")
    click.echo(
        f"{ds.name}（{ds.code}） {mask_key(ds, key)}  organID={org_code}  版本 {found.version}"
        f"  更新于 {format_datetime(found.updated_at)}  exchangeId {found.exchange_id}"
        f"  存储 {found.stored_bytes} 字节"
    )
    _echo_json(mask_record(ds, found.data))


def _audit_view(org_code: str, ds: Dataset, key: str, where: str) -> None:
    """Audit the viewing of a record's content; committed before anything of it is shown."""
    now = SystemClock().now()
    shown = mask_key(ds, key)
    run(
        lambda s: history.audit_record_view(
            s, org_code=org_code, dataset=ds, shown_key=shown, where=where, now=now
        )
    )


@exchange.command("trace")
@click.argument("dataset")
@click.argument("key")
@click.option("--org", "org_code", required=True, help="机构统一社会信用代码")
@click.option("--show", "show_records", is_flag=True, help="同时显示每个版本的记录内容（已脱敏）")
def exchange_trace(dataset: str, key: str, org_code: str, show_records: bool) -> None:
    """追溯一条记录：每个版本来自哪次交换、报文中的第几条、何时、哪个 appId。"""
    std = load_standard()
    try:
        ds = std.dataset(dataset)
    except KeyError:
        raise click.BadParameter(f"未知数据集 {dataset}") from None

    trace = run(
        lambda s: history.trace_key(
            s, org_code=org_code, dataset=ds, key=key, with_content=show_records
        )
    )
    traced = trace.versions
    note = run(lambda s: history.archived_record(s, org_code=org_code, dataset=ds, key=key))
    if not traced:
        if note is not None:
            raise click.ClickException(f"记录已归档：{note.text()}")
        raise click.ClickException("记录不存在 / no such record")
    click.echo(f"{ds.name}（{ds.code}） {mask_key(ds, key)}  organID={org_code}")
    _table(
        ("版本", "时间", "exchangeId", "位置", "appId", "当前"),
        [
            (
                v.version,
                format_datetime(v.at),
                v.exchange_id,
                v.position,
                v.app_id,
                _current(v),
            )
            for v in (t.version for t in traced)
        ],
    )
    kept = run(lambda s: history.record_archive_notes(s, trace.records))
    for line in trace.record_notes(kept):
        click.echo(line)
    for gap in trace.offline:
        click.echo(gap.text())
    if note is not None and note.month not in kept and not any(r.archived for r in trace.records):
        # sent again after its month was archived, none of its versions online: counted anew
        click.echo(f"更早的版本已归档（此后重新上报，版本从 1 重新计数）：{note.text()}")
    if show_records:
        _audit_view(org_code, ds, key, "cli_exchange_trace")
        for t in traced:
            click.echo(f"— 版本 {t.version.version}：")
            if t.content is None:
                click.echo("  （报文未归档）")
            else:
                _echo_json(mask_record(ds, t.content))
