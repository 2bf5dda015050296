"""``imsp standard …``: the Data Standard's datasets, JSON Schemas, code tables, spec and test data.

Needs only the client dependencies (click, orjson) and ``imsp.standard``. Wherever a command takes
a dataset, its short code (``prescription``) and its service name (``uploadPrescriptionInfo``) are
both accepted.
"""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from imsp.cli.output import table
from imsp.standard.demo import DEMO_ORG_CODE
from imsp.standard.model import load_standard

_JSON = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE


@click.group(name="standard")
def standard() -> None:
    """数据标准：数据集一览、JSON Schema 与代码表导出、接口规范文档、测试数据。"""


@standard.command(name="list")
def list_datasets() -> None:
    """列出数据标准的全部数据集：序号、服务名、数据集代码、名称、节点数、业务主键。"""
    std = load_standard()
    rows = [
        (
            ds.number,
            ds.service,
            ds.code,
            ds.name,
            sum(1 for _ in ds.walk()),
            "+".join(ds.key),
            "是" if ds.mandatory else "否",
        )
        for ds in std.ordered()
    ]
    click.echo(table(["序号", "服务名", "代码", "名称", "节点数", "业务主键", "必须提供"], rows))


@standard.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """把每个数据集的 JSON Schema（<服务名>.schema.json）与代码表（codes/<表名>.json）写入 DIRECTORY。"""
    from imsp.standard.jsonschema import code_table_json, dataset_schema

    std = load_standard()
    codes = directory / "codes"
    codes.mkdir(parents=True, exist_ok=True)
    for ds in std.ordered():
        (directory / f"{ds.service}.schema.json").write_bytes(
            orjson.dumps(dataset_schema(ds, std), option=_JSON)
        )
    for name, t in std.tables.items():
        (codes / f"{name}.json").write_bytes(orjson.dumps(code_table_json(t), option=_JSON))
    click.echo(
        f"已导出 {len(std.datasets)} 个数据集的 JSON Schema 与 {len(std.tables)} 张代码表：{directory}"
    )


@standard.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/standard"),
    show_default=True,
    help="Markdown 输出目录",
)
@click.option("--check", is_flag=True, help="只检查：目录中的文档与数据标准不一致时以非零状态退出")
@click.option(
    "--pdf",
    "pdf_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="另生成可打印的 PDF（整本规范，嵌入中文字体），写到此文件",
)
def docs(out: Path, check: bool, pdf_path: Path | None) -> None:
    """生成《数据接口规范》Markdown 文档（与资质管理系统 /spec 页面内容相同），可另生成 PDF。"""
    from imsp.standard import spec

    if pdf_path is not None:
        from imsp.standard.spec.pdf import render_pdf

        pdf_path.parent.mkdir(parents=True, exist_ok=True)
        pdf_path.write_bytes(render_pdf())
        click.echo(f"已生成 PDF：{pdf_path}")

    if check:
        stale = spec.stale_docs(out)
        if stale:
            raise click.ClickException(
                f"{out} 中的文档已过期（{'、'.join(stale)}），请运行 imsp standard docs 重新生成"
            )
        click.echo(f"{out} 中的文档是最新的")
        return
    written = spec.write_docs(out)
    click.echo(f"已生成 {len(written)} 个文件：{out}")


@standard.command()
@click.argument("dataset")
@click.option("--count", "-n", type=click.IntRange(0, 1_000_000), default=10, show_default=True)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="随机种子（相同种子生成相同数据）"
)
@click.option(
    "--org", "org_code", default=DEMO_ORG_CODE, show_default=True, help="机构统一社会信用代码"
)
@click.option("--org-name", default=None, help="机构名称（默认按机构代码生成）")
def sample(dataset: str, count: int, seed: int, org_code: str, org_name: str | None) -> None:
    """生成 DATASET 的测试数据并以 JSON 数组输出（虚构数据；同一参数得到相同数据）。"""
    from imsp.standard.sample import SampleError, generate

    try:
        records = generate(dataset, count, seed=seed, org_code=org_code, org_name=org_name)
    except SampleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode())
