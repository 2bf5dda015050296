"""``imsp acceptance …`` — 接入确认.

* ``status`` (hospital kit): the institution's acceptance board, asked of the platform with its
  own access token — no server extra needed.
* ``verify REPORT.pdf`` (platform side): whether a file is a report the platform issued,
  byte for byte (its SHA-256 against the stored one).

Exit codes: 0 green / genuine; 1 items missing / not genuine; 3 the command could not run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click
import orjson

from imsp.cli.client import EXIT_REJECTED, connect, with_config
from imsp.cli.output import table
from imsp.client.config import ClientConfig


@click.group()
def acceptance() -> None:
    """接入确认：验收看板（医院端）、验收报告校验（平台端）。"""


def _verdict(ok: bool | None) -> str:
    return "达标" if ok else ("未评估" if ok is None else "未达标")


@acceptance.command("status")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@with_config
def status(as_json: bool, cfg: ClientConfig) -> None:
    """本机构的接入确认看板：每个验收项的要求、实测值、是否达标与缺项。"""
    with connect(cfg) as client:
        board = client.acceptance_status()
    if as_json:
        click.echo(orjson.dumps(board, option=orjson.OPT_INDENT_2).decode())
    else:
        _print(board)
    if not board.get("green"):
        raise SystemExit(EXIT_REJECTED)


def _print(board: dict[str, Any]) -> None:
    click.echo(f"机构：{board['institution']}（{board['orgCode']}）")
    click.echo(
        f"接入确认状态：{board['statusLabel']}    看板：{'全部达标' if board['green'] else '未达标'}"
    )
    click.echo(
        f"验收阈值版本：{board['thresholdsVersion']}    数据标准：{board['standardVersion']}"
    )
    for part in board["parts"]:
        click.echo("")
        click.echo(f"【{part['title']}】{'通过' if part['ok'] else '未通过'}")
        click.echo(
            table(
                ["验收项", "要求", "实测", "结论"],
                [
                    (i["label"], i["threshold"], i["measured"], _verdict(i["ok"]))
                    for i in part["items"]
                ],
            )
        )
    missing = board.get("missing") or []
    if missing:
        click.echo("")
        click.echo("尚缺：")
        for m in missing:
            click.echo(f"  - {m}")


@acceptance.command("verify")
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(report: Path) -> None:
    """校验验收报告 REPORT 是否为平台签发的原件（与存档的 SHA-256 逐字节一致）。"""
    from imsp.acceptance import service
    from imsp.cli.env import run
    from imsp.clock import format_datetime

    data = report.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    row = run(lambda s: service.verify(s, data=data))
    if row is None:
        click.echo(
            f"校验失败：{report.name} 不是平台签发的验收报告，或已被修改（SHA-256 {digest}）"
        )
        raise SystemExit(EXIT_REJECTED)
    inst = row.content.get("institution", {})
    click.echo(f"校验通过：{row.number}  {inst.get('name', '')}（{inst.get('orgCode', '')}）")
    click.echo(f"  签发：{format_datetime(row.issued_at)}  审核人：{row.reviewer}")
    click.echo(f"  SHA-256：{row.sha256}")
    if row.revoked_at is not None:
        click.echo(
            f"  注意：该接入确认已于 {format_datetime(row.revoked_at)} 撤销（{row.revoked_reason}）"
        )
