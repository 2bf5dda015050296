"""The exchange service's OpenAPI document (``/openapi.json``): what FastAPI derives from the
routes, plus the standard's dataset schemas, the documented errors of each operation and the
rules the edge enforces that a generated schema would not say (no NUL in any string).

The document is the contract checked by ``tests/exchange/test_schemathesis.py``: every answer
the service gives must be one documented here, and what the document calls valid is accepted.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from imsp.exchange import schemas
from imsp.standard.model import Dataset, Standard

#: No NUL anywhere (PostgreSQL text and JSONB cannot hold it; the edge refuses it with 40000).
NO_NUL: Final = "^[^\\u0000]*$"
#: The standard's string patterns that would let NUL through, and their NUL-free forms (the
#: others — blank, decimal — exclude it already). One pattern per string keeps the schema one
#: that generators and validators handle well (an ``allOf`` of patterns does not).
_NUL_FREE: Final = {
    "\\S": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
    "^(19|[2-9][0-9])[0-9]{2}-": "^(19|[2-9][0-9])[0-9]{2}-[^\\u0000]*$",
    "^[^|]+(\\|[^|]+)*$": "^[^|\\u0000]+(\\|[^|\\u0000]+)*$",
}

ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": schemas.ErrorBody, "description": text}
    for status, text in (
        (
            400,
            "40000 请求体不是合法的 JSON（含 NUL 字符）；40001 请求参数错误；40006 JSON 对象中有"
            "重复的键；40007 查询参数重复；40008 请求头重复",
        ),
        (401, "40101 缺少令牌；40102 令牌无效；40103 令牌过期（重新获取令牌后重发）"),
        (413, "41300 请求体过大；41301 记录数超过上限"),
        (415, "41500 Content-Type 必须为 application/json"),
        (429, "42900 请求过于频繁（见 Retry-After）"),
        (503, "50300 服务暂不可用（见 Retry-After）"),
    )
}

UPLOAD_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {"model": schemas.UploadResponse, "description": "回执（逐条结果）"},
    **ERRORS,
}

NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": schemas.ErrorBody, "description": "40400 数据集或代码表不存在"}
}

TOKEN_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {"model": schemas.TokenResponse, "description": "成功"},
    400: ERRORS[400],
    401: {
        "model": schemas.ErrorBody,
        "description": "40002 appId 不存在；40004 appSecret 不匹配；40005 凭据已停用",
    },
    429: ERRORS[429],
    503: ERRORS[503],
}

TOKEN_PARAMETERS: Final[dict[str, Any]] = {
    "parameters": [
        {
            "name": n,
            "in": "query",
            "required": True,
            # Blank is refused (40001): at least one character that is not white space.
            "schema": {"type": "string", "pattern": "\\S"},
        }
        for n in ("appId", "appSecret")
    ]
}


#: The values a query flag takes (``edge.flag``); anything else is 40001.
_FLAG: Final[dict[str, Any]] = {"type": "string", "enum": ["true", "false", "1", "0"]}


def path_parameter(name: str) -> dict[str, Any]:
    return {
        "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]
    }


def upload_doc(ds: Dataset, max_records: int) -> dict[str, Any]:
    """``openapi_extra`` of one upload service: its header, flags and body."""
    name = schemas.component_name(ds)
    return {
        "parameters": [
            {
                "name": "accessToken",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "访问令牌（也可用 Authorization: Bearer <令牌>），只能出现一次",
            },
            {
                "name": "dryRun",
                "in": "query",
                "required": False,
                "schema": _FLAG,
                "description": "true（或 1）：只校验不入库（逐条 msgCode 202）",
            },
            {
                "name": "atomic",
                "in": "query",
                "required": False,
                "schema": _FLAG,
                "description": "true（或 1）：批内任一记录失败则整批不入库（其余记录 msgCode -91）",
            },
        ],
        "description": "其他查询参数一律拒绝（40001）",
        "requestBody": {
            "required": True,
            "description": f"一条记录（JSON 对象）或 1..{max_records} 条记录的 JSON 数组，UTF-8；"
            "同一对象内键不得重复，任何字符串（含键名）不得含 NUL 字符（\\u0000）",
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}Upload"}}
            },
        },
    }


def forbid_nul(node: Any) -> None:
    """Say in ``node`` (a JSON Schema, changed in place) that no string holds NUL: every string
    without a pattern gets ``NO_NUL``; a pattern that would allow NUL is narrowed."""
    if isinstance(node, list):
        for item in node:
            forbid_nul(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in list(node.items()):
        if key != "not":  # a constraint added under "not" would widen, not narrow
            forbid_nul(value)
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "string" in kinds and "enum" not in node and "const" not in node:
        pattern = node.get("pattern")
        node["pattern"] = NO_NUL if pattern is None else _NUL_FREE.get(pattern, pattern)


def install(app: FastAPI, std: Standard, *, max_records: int) -> None:
    """Make ``app.openapi()`` return the document described above (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=f"数据交换服务：授权码获取服务与 {len(std.datasets)} 个上传服务。",
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            datasets = copy.deepcopy(schemas.dataset_components(std, max_records=max_records))
            forbid_nul(datasets)
            components.update(datasets)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
