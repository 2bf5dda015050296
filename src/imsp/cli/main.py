"""Entry point of the ``imsp`` command.

Sub-commands load lazily, so the hospital-side commands (``push``, ``validate``, ``token`` …) work
where only the client extra is installed, and ``imsp --help`` stays fast. A command whose
dependencies are missing says which extra to install instead of failing with a traceback.
"""

from __future__ import annotations

import importlib

import click

from imsp import __version__

#: name -> "module:attribute" of a click command or group. Server commands need the server extra.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": (
        "imsp.cli.server:serve",
        "启动服务：全部在一个进程（8888、8091），或单一角色 exchange／portal／worker 的 N 个进程",
    ),
    "db": ("imsp.cli.server:db", "数据库迁移与状态"),
    "demo": ("imsp.cli.server:demo", "演示数据"),
    "credentials": (
        "imsp.cli.exchange:credentials",
        "数据上报凭据 appId/appSecret：创建、更换、停用、列表",
    ),
    "exchange": ("imsp.cli.exchange:exchange", "交换日志与报文归档：查询、查看、追溯"),
    "supervise": ("imsp.cli.supervise:supervise", "监管规则：工作进程、全量或部分重新评估"),
    # Hospital side (imsp.client): no server extra needed.
    "push": ("imsp.cli.client:push", "上传数据集记录（.json/.jsonl/.csv）"),
    "validate": ("imsp.cli.client:validate", "离线校验数据集记录（与平台同一数据标准）"),
    "sample": ("imsp.cli.client:sample", "生成测试数据"),
    "token": ("imsp.cli.client:token", "获取访问令牌（授权码）"),
    "selfcheck": ("imsp.cli.client:selfcheck", "接入自检：令牌与全部上传服务"),
    "acceptance": (
        "imsp.cli.acceptance:acceptance",
        "接入确认：验收看板（医院端）、验收报告校验（平台端）",
    ),
    "video": ("imsp.cli.video:video", "视频调阅：参考视频服务（serve）与接口自检（check）"),
    "outbox": ("imsp.cli.outbox:outbox", "本地出站队列：状态、投递、暂存记录重发"),
    "standard": ("imsp.cli.standard:standard", "数据标准：导出 Schema、规范文档、测试数据"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target[0].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            help_text = f"需要安装服务器组件：pip install 'imsp[server]'（缺少 {missing}）"

            @click.command(
                name=cmd_name, help=help_text, context_settings={"ignore_unknown_options": True}
            )
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args: tuple[str, ...]) -> None:
                raise click.ClickException(help_text)

            return unavailable
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("命令 / Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imsp")
def cli() -> None:
    """河北省互联网医疗服务监管平台（IMSP）命令行工具。"""


def main() -> None:
    cli.main(prog_name="imsp")


if __name__ == "__main__":  # pragma: no cover
    main()
