"""Hospital-side video commands: ``imsp video serve`` (the reference service) and
``imsp video check URL`` (conformance of a hospital's own service). No server extra needed.

Exit codes of ``check``: 0 every item passed; 1 an item failed; 3 the check could not run.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click

from imsp.cli.output import table

EXIT_FAILED = 1


@click.group()
def video() -> None:
    """视频调阅：参考视频服务与接口自检。"""


@video.command()
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True,
              path_type=Path), help="MP4 视频所在目录")  # fmt: skip
@click.option("--index", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="索引文件（JSON 数组：file、visitNo、patientName、idCardNo、doctorName…）")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--cert", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="自签名证书与凭据的保存目录（默认 DIR/.imsp-video）")  # fmt: skip
@click.option(
    "--app-id", envvar="IMSP_VIDEO_APP_ID", help="为平台分配的 appId（默认首次启动时生成）"
)
@click.option("--app-secret", envvar="IMSP_VIDEO_APP_SECRET", help="与 appId 对应的 appSecret")
@click.option("--token-ttl", default=7200, show_default=True, type=click.IntRange(10, 86400))
@click.option("--url-ttl", default=300, show_default=True, type=click.IntRange(1, 600),
              help="播放地址有效秒数")  # fmt: skip
def serve(
    directory: Path,
    index: Path | None,
    host: str,
    port: int,
    cert: Path | None,
    key: Path | None,
    state_dir: Path | None,
    app_id: str | None,
    app_secret: str | None,
    token_ttl: int,
    url_ttl: int,
) -> None:
    """启动参考视频服务（HTTPS），按视频调阅协议提供 MP4 视频。"""
    from imsp.client import videoservice as vs

    state = state_dir or directory / ".imsp-video"
    if (cert is None) != (key is None):
        raise click.UsageError("--cert 与 --key 须同时提供")
    if cert is None or key is None:
        cert, key = vs.self_signed(state, [host, "localhost"] if host != "localhost" else [host])
        click.echo(f"使用自签名证书 {cert}（平台登记此文件为 CA 证书）")
    if not (app_id and app_secret):
        app_id, app_secret = _credentials(state)
    try:
        recordings = vs.load_recordings(directory, index)
    except (ValueError, KeyError, OSError) as exc:
        raise click.ClickException(f"无法读取视频目录或索引：{exc}") from exc
    config = vs.ServiceConfig(app_id, app_secret, recordings, token_ttl=token_ttl, url_ttl=url_ttl)
    server = vs.VideoServer((host, port), config, tls=vs.tls_context(cert, key))
    click.echo(f"参考视频服务 {server.url}  视频 {len(recordings)} 个  appId {app_id}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _credentials(state: Path) -> tuple[str, str]:
    """The appId/appSecret kept in ``state`` (generated and printed once on first start)."""
    path = state / "credentials.json"
    if path.exists():
        data = json.loads(path.read_text("utf-8"))
        return str(data["appId"]), str(data["appSecret"])
    state.mkdir(parents=True, exist_ok=True)
    app_id, secret = "vid" + secrets.token_hex(8), "vds_" + secrets.token_urlsafe(32)
    path.write_text(json.dumps({"appId": app_id, "appSecret": secret}), "utf-8")
    path.chmod(0o600)
    click.echo(f"已生成平台调用凭据（保存在 {path}，请在监管平台登记）：appSecret {secret}")
    return app_id, secret


@video.command()
@click.argument("url")
@click.option("--app-id", required=True, envvar="IMSP_VIDEO_APP_ID")
@click.option("--app-secret", required=True, envvar="IMSP_VIDEO_APP_SECRET")
@click.option("--visit-no", required=True, help="一个有视频的就诊流水号")
@click.option("--id-card-no", default="", help="该就诊患者的身份证件号码（检查按证件号检索）")
@click.option("--patient-name", default="", help="该就诊患者的姓名（检查按姓名检索）")
@click.option("--ca", type=click.Path(dir_okay=False, exists=True), help="CA 证书（PEM）")
@click.option("--max-wait", default=605.0, show_default=True, type=float,
              help="为检查播放地址过期最多等待的秒数")  # fmt: skip
def check(
    url: str,
    app_id: str,
    app_secret: str,
    visit_no: str,
    id_card_no: str,
    patient_name: str,
    ca: str | None,
    max_wait: float,
) -> None:
    """视频调阅接口自检：令牌、各检索条件、Range、播放地址有效期与错误代码。"""
    from imsp.client import videocheck

    target = videocheck.Target(
        url, app_id, app_secret, visit_no, id_card_no, patient_name,
        verify=ca or True, max_wait=max_wait,
    )  # fmt: skip
    click.echo(f"视频调阅接口自检：{url}")
    items = videocheck.run(target)
    rows = [(n, i.title, "通过" if i.ok else "未通过", i.detail) for n, i in enumerate(items, 1)]
    click.echo(table(["序号", "检查项", "结论", "说明"], rows, max_col=80))
    failed = [i for i in items if not i.ok]
    if failed:
        click.echo(f"\n{len(failed)} 项未通过：" + "、".join(i.title for i in failed))
        raise SystemExit(EXIT_FAILED)
    click.echo(f"\n全部 {len(items)} 项通过。")
