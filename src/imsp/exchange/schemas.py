"""Wire shapes of the exchange service, for the OpenAPI document only.

Handlers build their JSON directly (orjson, no model round trip on the hot path); these Pydantic
models describe the same shapes for ``/openapi.json``, and a contract test checks real responses
against them. The upload bodies' schemas come from the Data Standard (``standard.jsonschema``) and
are plugged into the OpenAPI components by :func:`dataset_components`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from imsp.standard.jsonschema import dataset_schema
from imsp.standard.model import Dataset, Standard


class ErrorBody(BaseModel):
    """Every refused request: a gateway code from the catalogue and a Chinese message."""

    code: int = Field(description="网关代码，见《错误代码》（如 40101 缺少令牌、40103 令牌过期）")
    msg: str = Field(description="中文说明")
    data: Any = Field(default=None, description="通常为 null")


class TokenData(BaseModel):
    accessToken: str = Field(description="访问令牌；上传时放在请求头 accessToken 中")
    expiresIn: int = Field(description="有效期（秒），默认 86400")
    expireTime: str = Field(description="过期时间，yyyy-MM-dd HH:mm:ss（北京时间）")
    channel: str = Field(
        default="production",
        description="通道：test 测试（联调数据，不计入监管统计）/ production 正式",
    )


class TokenResponse(BaseModel):
    code: int = Field(description="200 成功")
    msg: str
    data: TokenData


class IssueOut(BaseModel):
    field: str = Field(description="节点路径，如 items[2].amount；整条记录为空串")
    code: str = Field(description="稳定的问题代码，如 required、value_set、organ_mismatch")
    msg: str = Field(description="中文说明，含字段名与错误值")


class RecordResult(BaseModel):
    index: int = Field(description="记录在报文数组中的下标（从 0 开始）")
    key: str | None = Field(description="业务主键（多个主键字段以 | 连接）；无法确定时为 null")
    msgCode: int = Field(
        description="逐条业务代码：200 成功、201 已存在并更新（或内容未变化）、202 试运行通过、"
        "-99 必填缺失、-98 非对象/为空、-97 值域错误、-96 格式类型长度错误、-94 逻辑错误、"
        "-93 机构不一致、-92 批内主键重复、-91 整批未入库"
    )
    msg: str
    errors: list[IssueOut] = Field(description="全部错误（通过时为空数组）")
    warnings: list[IssueOut] = Field(description="警告：未定义节点已忽略、代码别名已转换等")


class ReceiptData(BaseModel):
    exchangeId: str = Field(description="本次交换的编号（UUIDv7），联系平台时请提供")
    standardVersion: str = Field(description="校验本批记录所用的数据标准版本，如 1.1")
    total: int
    success: int
    fail: int
    results: list[RecordResult] = Field(description="每条记录一项，按报文顺序")
    channel: str = Field(
        default="production", description="通道：test 测试（联调数据）/ production 正式"
    )


class UploadResponse(BaseModel):
    code: int = Field(description="200：报文已处理，逐条结果见 data.results")
    msg: str = Field(description="汇总，如“处理完成：共 3 条，成功 2 条，失败 1 条”")
    data: ReceiptData


def component_name(ds: Dataset) -> str:
    """``prescription_item`` → ``PrescriptionItem``."""
    return "".join(part.capitalize() for part in ds.code.split("_"))


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = f"#/components/schemas/{prefix}{v.removeprefix('#/$defs/').capitalize()}"
            else:
                out[k] = _rewrite_refs(v, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def dataset_components(std: Standard, *, max_records: int) -> dict[str, Any]:
    """OpenAPI component schemas: ``<Dataset>Record`` (one record, JSON Schema 2020-12 from the
    standard) and ``<Dataset>Upload`` (a record or an array of 1..``max_records`` records)."""
    out: dict[str, Any] = {}
    for ds in std.ordered():
        name = component_name(ds)
        schema = dataset_schema(ds, std, max_items=max_records)
        for def_name, sub in schema.get("$defs", {}).items():
            out[f"{name}{def_name.capitalize()}"] = _rewrite_refs(sub, name)
        upload = {k: v for k, v in schema.items() if k not in ("$defs", "$schema", "$id")}
        out[f"{name}Upload"] = _rewrite_refs(upload, name)
    return out
