"""The exchange protocol's code catalogue (数据标准 V1.0 §错误代码) — part of the published spec.

Two layers, as in the Tianjin/Ngari family of platforms but with distinct token codes:

* the gateway ``code`` of every response (``GATEWAY``): 200 on success, otherwise why the request
  as a whole was refused (malformed JSON, token missing/invalid/expired, too large, …);
* the per-record ``msgCode`` inside an upload receipt (``RECORD``): 200 stored, 201 updated, and
  negative codes for the reasons a single record was rejected.

Both the server and the hospital SDK read this module, so a client knows *by code* when to
refresh its token and resend (``TOKEN_ERRORS``) and when to retry later (``RETRYABLE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class GatewayCode:
    code: int
    http_status: int
    msg: str
    hint: str


@dataclass(frozen=True, slots=True)
class RecordCode:
    code: int
    msg: str
    hint: str


def _gw(code: int, http: int, msg: str, hint: str) -> GatewayCode:
    return GatewayCode(code, http, msg, hint)


GATEWAY: Final[dict[int, GatewayCode]] = {
    c.code: c
    for c in (
        _gw(200, 200, "成功", "请求已处理；上传服务逐条结果见 data.results"),
        _gw(40000, 400, "请求体不是合法的 JSON", "检查报文是否为 UTF-8 编码的 JSON 数组或对象"),
        _gw(40001, 400, "请求参数错误", "检查查询参数与报文结构"),
        _gw(40002, 401, "appId 不存在", "核对平台分配的 appId"),
        _gw(40004, 401, "appId 与 appSecret 不匹配", "核对 appSecret；多次失败将被限流"),
        _gw(40005, 401, "应用凭据已停用", "联系平台实施方重新分配或启用凭据"),
        _gw(40006, 400, "JSON 对象中有重复的键", "同一对象内每个键只能出现一次（RFC 8259 §4）"),
        _gw(40007, 400, "查询参数重复", "dryRun、atomic、appId、appSecret 各只能出现一次"),
        _gw(40008, 400, "请求头重复", "accessToken、Authorization 各只能出现一次"),
        _gw(40101, 401, "缺少访问令牌", "在请求头 accessToken 中携带令牌"),
        _gw(40102, 401, "访问令牌无效", "重新获取令牌后重发请求"),
        _gw(40103, 401, "访问令牌已过期", "重新获取令牌后重发请求"),
        _gw(40300, 403, "无权访问", "账号或令牌无权访问该资源"),
        _gw(40400, 404, "服务不存在", "核对服务地址"),
        _gw(40500, 405, "请求方法不允许", "上传服务使用 POST，令牌服务使用 GET"),
        _gw(41300, 413, "请求体过大", "拆分为多个较小的批次上传"),
        _gw(41301, 413, "单次上传记录数超过上限", "拆分为多个较小的批次上传"),
        _gw(
            41500,
            415,
            "Content-Type 必须为 application/json",
            "设置请求头 Content-Type: application/json",
        ),
        _gw(42900, 429, "请求过于频繁", "按响应头 Retry-After 指定的秒数后重试"),
        _gw(
            49900,
            499,
            "客户端中断",
            "客户端在收到应答前断开连接（或请求体未在时限内传完、连接被平台关闭），"
            "或请求在处理中被取消（平台停机超过等待时间）；"
            "客户端收不到此代码，它只记于平台的交换日志。客户端未收到回执，请求不算成功；"
            "若中断时写入已在进行，日志的入库条数为实际入库的记录。原样重发即可（按业务主键幂等）",
        ),
        _gw(50000, 500, "服务器内部错误", "稍后重试；如持续出现请联系平台实施方"),
        _gw(50300, 503, "服务暂不可用", "平台维护或数据库不可用，稍后重试"),
    )
}

#: Gateway codes after which the client should fetch a new token and resend once.
TOKEN_ERRORS: Final[frozenset[int]] = frozenset({40101, 40102, 40103})
#: Gateway codes after which the same request may be retried later unchanged.
RETRYABLE: Final[frozenset[int]] = frozenset({42900, 50000, 50300})


def _rc(code: int, msg: str, hint: str) -> RecordCode:
    return RecordCode(code, msg, hint)


RECORD: Final[dict[int, RecordCode]] = {
    c.code: c
    for c in (
        _rc(200, "成功", "记录已入库"),
        _rc(201, "已存在，已更新", "同一业务主键的记录已覆盖，历史版本保留"),
        _rc(202, "校验通过（试运行，未入库）", "dryRun=true 时仅校验不入库"),
        _rc(-99, "必填项缺失", "errors 中列出缺失或为空的节点"),
        _rc(-98, "数据为空或不是 JSON 对象", "每条记录须为 JSON 对象"),
        _rc(-97, "值域不合法", "代码须取自数据标准代码表"),
        _rc(-96, "格式、类型或长度错误", "见 errors 中各字段的说明"),
        _rc(-95, "关联数据不存在", "先上传被引用的基础数据"),
        _rc(-94, "数据逻辑错误", "时间先后、金额合计等记录内逻辑不成立"),
        _rc(-93, "机构不一致", "记录的 organID 须与访问令牌所属机构一致"),
        _rc(-92, "同批次业务主键重复", "同一批次内同一业务主键只能出现一次"),
        _rc(-91, "整批未入库", "atomic=true 时批内任一记录失败则整批不入库"),
        _rc(-1, "其他错误", "见 msg"),
    )
}


@dataclass(frozen=True, slots=True)
class ExchangeIssue:
    """A per-record issue the exchange service adds to the validator's (``issues.ISSUES``)."""

    code: str
    msg_code: int
    title: str
    severity: str = "error"  # "warning": reported in the receipt, the record is still stored


#: Issue codes (``errors[].code`` of a receipt) decided by the exchange service itself, beyond
#: the Data Standard validator's: they depend on the access token or on the batch as a whole.
EXCHANGE_ISSUES: Final[dict[str, ExchangeIssue]] = {
    i.code: i
    for i in (
        ExchangeIssue("organ_mismatch", -93, "记录的 organID 与访问令牌所属机构不一致"),
        ExchangeIssue("duplicate_key", -92, "同一批次内业务主键重复"),
        ExchangeIssue("key_missing", -99, "业务主键为空"),
        ExchangeIssue("key_too_long", -96, "业务主键过长"),
        # a warning only (the record is stored): supervision waits for the referenced record
        ExchangeIssue("reference_missing", -95, "关联数据不存在（警告，不拒收）", "warning"),
        ExchangeIssue("more_issues", 200, "问题过多，其余未逐条列出（见 msg 中的条数）"),
    )
}


#: A rejected record with several problems gets the msgCode of the first kind present in this
#: order — the most fundamental first: not an object, wrong institution, duplicate key in the
#: batch, missing, value set, format, reference, logic. The platform's receipts and the SDK's
#: offline validation both decide with :func:`record_msg_code`.
RECORD_CODE_PRIORITY: Final[tuple[int, ...]] = (-98, -93, -92, -99, -97, -96, -95, -94)


def record_msg_code(codes: set[int] | frozenset[int]) -> int:
    """The msgCode of a rejected record whose problems have the business ``codes``."""
    return next((c for c in RECORD_CODE_PRIORITY if c in codes), -1)
