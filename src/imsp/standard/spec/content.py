"""Parts 1, 2, 5, 6 and the appendix of the published spec, and the index (README)."""

from __future__ import annotations

import json
from typing import Final

from imsp.standard.issues import ISSUES
from imsp.standard.jsonschema import CUSTOM_FORMATS, NOT_EXPRESSIBLE
from imsp.standard.model import Standard
from imsp.standard.protocol import EXCHANGE_ISSUES, GATEWAY, RECORD, RETRYABLE, TOKEN_ERRORS
from imsp.standard.spec.document import Part, code, link
from imsp.standard.spec.services import anchor, service_title, slug

#: Defaults of the exchange service (``imsp.config.ExchangeSettings``; a test keeps them equal).
MAX_RECORDS: Final = 1000
MAX_BODY_MB: Final = 16
TOKEN_TTL_SECONDS: Final = 86400
BASE_URL: Final = "http://10.1.109.89:8888"


def sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith(("。", "！", "？", "）")) else text + "。"


def exchange_issues() -> dict[str, tuple[str, int]]:
    """Issue codes the exchange service adds to the validator's (``protocol.EXCHANGE_ISSUES``)."""
    return {k: (v.title, v.msg_code) for k, v in EXCHANGE_ISSUES.items()}


# --------------------------------------------------------------------------- index


def readme(std: Standard) -> Part:
    meta = std.meta
    part = Part("README", std.title)
    part.h(1, std.title, "spec")
    part.table(
        ("项目", "内容"),
        [
            ("版本", f"V{std.release}"),
            ("发布日期", str(meta.get("released", ""))),
            ("发布", str(meta.get("publisher", ""))),
            (
                "适用范围",
                "河北省内所有开展互联网诊疗活动的医疗机构（互联网医院）向监管平台上传数据",
            ),
            ("字符编码", str(meta.get("encoding", "UTF-8"))),
        ],
    )
    part.p(
        "本规范是《河北省互联网医疗服务监管平台互联网医院数据接入工作说明》所称附录的 IMSP 版本。"
        "字段表、代码表、JSON Schema、示例与平台的校验程序出自同一份数据标准，彼此一致；"
        "示例记录均经平台校验程序校验通过。同一内容在资质管理系统（8091）的 " + code("/spec")
        + " 页面以 HTML 发布，并提供可打印的 PDF 版本。版本、兼容性与变更记录见"
        + link("附录", "appendix") + "。"
    )  # fmt: skip
    part.h(2, "目录", "toc")
    return part


def toc(std: Standard, parts: list[Part], index: Part) -> None:
    """Fill the index's table of contents (needs every part, so it runs last)."""
    items: list[str] = []
    for p in parts:
        if not p.slug.startswith("3-") or p.slug == "3-services":
            items.append(link(p.title, next(p.anchors())))
    index.ul(items)
    index.h(2, "上传服务一览", "toc-services")
    index.table(
        ("序号", "服务名称", "服务地址", "数据集代码", "分类", "是否必须提供"),
        [
            (str(ds.number), link(service_title(ds), anchor(ds)), code(ds.path), code(ds.code),
             ds.category, "是" if ds.mandatory else "否（建议提供）")
            for ds in std.ordered()
        ],
    )  # fmt: skip


# --------------------------------------------------------------------------- part 1


def overview(std: Standard) -> Part:
    meta = std.meta
    part = Part("1-overview", "1 概述")
    part.h(1, "1 概述", "overview")
    part.h(2, "1.1 范围", "scope")
    part.p(
        "本规范规定互联网医院向河北省互联网医疗服务监管平台上传基本信息与医疗服务数据的接口："
        f"授权码获取服务、{len(std.datasets)} 个数据上传服务、各数据集的节点与值域、代码表、"
        "错误代码与 JSON Schema。"
        "互联网医院开发厂商负责数据推送，采用实时上传方式。"
    )
    datasets = std.ordered()
    part.table(
        ("序号", "分类", "数据集", "服务地址", "是否必须提供", "业务主键", "节点数"),
        [
            (str(ds.number), ds.category, link(ds.name, anchor(ds)), code(ds.path),
             "是" if ds.mandatory else "否（建议提供）", " + ".join(code(k) for k in ds.key),
             str(sum(1 for _ in ds.walk())))
            for ds in datasets
        ],
    )  # fmt: skip
    part.h(2, "1.2 通用约定", "conventions")
    part.ul([sentence(c) for c in meta.get("conventions", [])])
    part.table(
        ("项目", "约定"),
        [
            ("字符编码", str(meta.get("encoding", ""))),
            ("日期", code(str(meta.get("date_format", "")))),
            ("日期时间", code(str(meta.get("datetime_format", "")))),
            ("时区", str(meta.get("timezone", ""))),
            ("多值分隔符", code(str(meta.get("multi_separator", "|")))),
            ("金额", str(meta.get("money", ""))),
        ],
    )
    part.p("节点类型与 JSON 表示：")
    part.table(
        ("类型", "JSON 表示", "长度列的含义", "示例"),
        [
            ("string", "字符串；代码类节点也是字符串", "最大字符数（按字符计，不按字节）", code('"高血压"')),
            ("int", "整数（不接受字符串、小数或 true/false）", "—", code("3")),
            ("decimal(p,s)", "数值，或纯数字字符串（不接受指数、千分位）", "p,s：总位数、小数位数上限", code("68.40") + " 或 " + code('"68.40"')),
            ("date", "字符串 yyyy-MM-dd，须为真实日期", "10", code('"2025-06-03"')),
            ("datetime", "字符串 yyyy-MM-dd HH:mm:ss（北京时间）", "19", code('"2025-06-03 09:20:15"')),
            ("list", "对象数组，元素节点另表列出", "—", code("[{…}]")),
            ("object", "对象，节点另表列出", "—", code("{…}")),
        ],
    )  # fmt: skip
    part.p(
        "必填列：“是”表示不能为空；“否”表示节点必须存在但值可以为 null 或空字符串；"
        "“条件”表示在说明列所述条件成立时必填。空字符串、只含空白的字符串与 null 都视为“空”。"
    )
    part.h(2, "1.3 传输与处理", "transport")
    part.ul(
        [
            f"接口地址：{code(BASE_URL + '/')}（卫生专网地址；不具备网络环境的机构联系河北省卫健委统计信息中心分配 VPN 帐号）。统一采用 HTTP 协议 REST 方式，后续将启用 HTTPS。",
            "服务仅支持 HTTP/1.1 及以上；上传服务一律 POST，授权码获取服务为 GET。请求与响应体均为 "
            + code("application/json") + "（UTF-8）；请求既可用 " + code("Transfer-Encoding: chunked") + "，也可用 " + code("Content-Length") + "。",
            "授权码获取服务是调用上传服务的前置服务：须先取得有效的访问令牌，并在每个上传请求的请求头 "
            + code("accessToken") + " 中携带（见 " + link("2 授权码获取服务", "token") + "）。",
            "所有头部和正文中的节点都必须存在；未在本规范中定义的节点不存储，回执中以警告提示。",
            f"请求体为 JSON 数组（一次 1～{MAX_RECORDS} 条记录，超过返回 41301）或单个 JSON 对象；请求体上限 {MAX_BODY_MB} MB（超过返回 41300）。以上为默认值，以平台配置为准。",
            "逐条校验、逐条回执：一条记录出错不影响同批其他记录入库（不同于“一条出错整批拒收”）；回执 " + code("data.results") + " 按报文顺序列出每条记录的结果与全部问题。",
            "幂等覆盖：同一机构、同一数据集、同一业务主键的记录再次上报时覆盖当前版本（msgCode 201），历史版本全部保留，不产生重复数据；内容未变化时不生成新版本。",
            "记录的 " + code("organID") + " 须与访问令牌所属机构一致（否则 msgCode -93）；同一批次内业务主键不得重复（-92）。",
            "试运行：查询参数 " + code("dryRun=true") + " 只校验不入库，通过的记录 msgCode 202，便于接入调试。",
            "整批提交：查询参数 " + code("atomic=true") + " 时批内任一记录未通过则整批不入库，其余记录 msgCode -91。",
            "网关错误（令牌、报文格式、大小、限流等）以响应的 " + code("code") + " 表示整个请求被拒绝，见 " + link("5 错误代码", "errors") + "。",
        ]
    )  # fmt: skip
    part.h(2, "1.4 回执结构", "receipt")
    part.code(
        json.dumps(
            {
                "code": 200,
                "msg": "处理完成：共 2 条，成功 1 条，失败 1 条",
                "data": {
                    "exchangeId": "0197a3c1-d2e4-7506-9728-394a5b6c7d8e",
                    "standardVersion": std.release,
                    "total": 2,
                    "success": 1,
                    "fail": 1,
                    "results": [
                        {"index": 0, "key": "RX20250603000002", "msgCode": 200, "msg": "成功", "errors": [], "warnings": []},
                        {"index": 1, "key": "RX20250603000003", "msgCode": -97, "msg": "值域不合法：recipeType",
                         "errors": [{"field": "recipeType", "code": "value_set", "msg": "处方类型(recipeType) 代码不在《处方类型代码》值域内：\"9\""}],
                         "warnings": []},
                    ],
                },
            },
            ensure_ascii=False,
            indent=2,
        ),
        "json",
    )  # fmt: skip
    part.table(
        ("节点", "说明"),
        [
            (code("code"), "网关代码：200 表示请求已处理，其他见 " + link("5.1", "err-gateway")),
            (code("msg"), "处理概要"),
            (code("data.exchangeId"), "本次请求在平台交换日志中的编号，可据此追溯原始报文"),
            (code("data.total / success / fail"), "记录总数、入库（或试运行通过）数、未通过数"),
            (code("data.results[].index"), "记录在报文中的序号，从 0 开始"),
            (code("data.results[].key"), "记录的业务主键（多个主键节点以 | 连接，节点值中的 \\ 与 | 前加 \\ 转义）；主键为空时为 null"),
            (code("data.results[].msgCode"), "逐条结果代码，见 " + link("5.2", "err-record")),
            (code("data.results[].errors[]"), "全部问题：" + code("field") + " 节点路径（如 " + code("items[2].amount") + "）、" + code("code") + " 问题代码（见 " + link("5.3", "err-issues") + "）、" + code("msg") + " 中文说明"),
            (code("data.results[].warnings[]"), "警告（未定义节点已忽略、代码别名已转换），不影响入库"),
        ],
    )  # fmt: skip
    part.h(2, "1.5 制定说明", "decisions")
    part.ul([sentence(d) for d in meta.get("decisions", [])])
    return part


# --------------------------------------------------------------------------- part 2


def token() -> Part:
    part = Part("2-token", "2 授权码获取服务")
    part.h(1, "2 授权码获取服务", "token")
    part.table(
        ("项目", "内容"),
        [
            ("服务地址", code("/auth/accesstoken/create") + f"（完整地址 {code(BASE_URL + '/auth/accesstoken/create')}）"),
            ("请求方式", "GET"),
            ("有效期", f"{TOKEN_TTL_SECONDS} 秒（1 天）；获取新令牌不会使尚未过期的旧令牌失效"),
            ("使用方式", "上传请求的请求头 " + code("accessToken: <令牌>") + "（也接受 " + code("Authorization: Bearer <令牌>") + "）"),
        ],
    )  # fmt: skip
    part.h(2, "2.1 请求参数", "token-params")
    part.table(
        ("参数", "位置", "类型", "必填", "说明"),
        [
            (
                code("appId"),
                "查询参数",
                "string",
                "是",
                "平台为机构分配的应用标识（一个 appId 只属于一个机构）",
            ),
            (
                code("appSecret"),
                "查询参数",
                "string",
                "是",
                "与 appId 对应的密钥；平台只保存其摘要，遗失须重新分配",
            ),
        ],
    )
    part.code(
        f"GET /auth/accesstoken/create?appId=<appId>&appSecret=<appSecret> HTTP/1.1\nHost: {BASE_URL.removeprefix('http://')}\n",
        "http",
    )
    part.h(2, "2.2 响应", "token-response")
    part.code(
        json.dumps(
            {"code": 200, "msg": "成功", "data": {"accessToken": "hbt_9xQ2…（不透明字符串）", "expiresIn": TOKEN_TTL_SECONDS, "expireTime": "2025-06-04 09:00:00"}},
            ensure_ascii=False,
            indent=2,
        ),
        "json",
    )  # fmt: skip
    part.table(
        ("节点", "类型", "说明"),
        [
            (code("data.accessToken"), "string", "访问令牌，作为不透明字符串保存和传送"),
            (code("data.expiresIn"), "int", "有效秒数"),
            (code("data.expireTime"), "datetime", "过期时间（北京时间）"),
        ],
    )
    fails = [GATEWAY[c] for c in (40001, 40002, 40004, 40005, 42900) if c in GATEWAY]
    part.p("获取失败时 " + code("code") + " 不为 200：" + "；".join(f"{c.code} {c.msg}" for c in fails) + "。多次失败会被限流（429，按 " + code("Retry-After") + " 等待后重试）。")  # fmt: skip
    part.h(2, "2.3 令牌过期的处理", "token-refresh")
    part.p(
        "access_token 超时时间 1 天。上传服务以不同代码区分令牌问题（"
        + "、".join(f"{c} {GATEWAY[c].msg}" for c in sorted(TOKEN_ERRORS))
        + "），客户端据此刷新令牌。数据接入工作说明第三章给出两种处理方式，可同时采用："
    )
    part.ul(
        [
            "方式一：根据 access_token 的过期时间（" + code("expiresIn") + " / " + code("expireTime") + "）建立任务调度，在过期前定期重新生成 access_token。",
            "方式二：封装工具类，通过工具类调用接口，在工具类中判断返回：如果是 access_token 的异常（上述代码），重新获取 access_token，然后重发请求（只重发一次）。",
            "网关代码 " + "、".join(str(c) for c in sorted(RETRYABLE)) + " 表示暂时不可用，同一请求可稍后原样重发；因上传是按业务主键幂等覆盖的，重发不会产生重复数据。",
        ]
    )  # fmt: skip
    return part


# --------------------------------------------------------------------------- part 5


def errors() -> Part:
    part = Part("5-errors", "5 错误代码")
    part.h(1, "5 错误代码", "errors")
    part.p("错误分三层：网关代码（响应的 " + code("code") + "，整个请求）、逐条结果代码（" + code("data.results[].msgCode") + "）、问题代码（" + code("data.results[].errors[].code") + "，每个问题一项）。")  # fmt: skip
    part.h(2, "5.1 网关代码", "err-gateway")
    part.table(
        ("code", "HTTP 状态", "含义", "处理建议", "客户端动作"),
        [
            (code(c.code), str(c.http_status), c.msg, c.hint,
             "刷新令牌后重发一次" if c.code in TOKEN_ERRORS else "稍后原样重试" if c.code in RETRYABLE else "—")
            for c in GATEWAY.values()
        ],
    )  # fmt: skip
    part.h(2, "5.2 逐条结果代码（msgCode）", "err-record")
    part.table(
        ("msgCode", "含义", "说明"),
        [(code(c.code), c.msg, c.hint) for c in RECORD.values()],
    )
    part.p("一条记录有多个问题时，msgCode 取最基本的一类（记录非对象、机构不一致、批内主键重复、必填缺失、值域、格式、关联、逻辑依次优先），" + code("errors") + " 仍列出全部问题。")  # fmt: skip
    part.h(2, "5.3 问题代码", "err-issues")
    rows = [
        (code(k.code), k.title, str(k.msg_code), "警告" if k.severity == "warning" else "错误")
        for k in ISSUES.values()
    ]
    rows += [
        (code(c), title, str(mc), "警告" if EXCHANGE_ISSUES[c].severity == "warning" else "错误")
        for c, (title, mc) in exchange_issues().items()
    ]
    part.table(("问题代码", "名称", "对应 msgCode", "级别"), rows)
    part.p(
        "数据集的记录内规则可声明自己的问题代码（见各服务的“记录内校验规则”表），对应 msgCode -94。"
    )
    return part


# --------------------------------------------------------------------------- part 6


def schema(std: Standard) -> Part:
    part = Part("6-schema", "6 JSON Schema 与自定义格式")
    part.h(1, "6 JSON Schema 与自定义格式", "schema")
    part.p(
        "每个数据集的请求体都有一份由同一数据标准生成的 JSON Schema（draft 2020-12），供医院离线校验。"
        "平台的校验程序与 Schema 对同一记录给出相同结论；少数 Schema 无法表达的检查见 6.3。"
    )
    part.h(2, "6.1 获取", "schema-get")
    part.table(
        ("内容", "地址或命令"),
        [
            ("数据集的 JSON Schema", code("GET /standard/v1/<数据集代码或服务名>.schema.json") + "，如 " + code("/standard/v1/uploadPrescriptionInfo.schema.json")),
            ("代码表", code("GET /standard/v1/codes/<表名>.json")),
        ],
    )  # fmt: skip
    part.h(2, "6.2 结构", "schema-shape")
    part.ul(
        [
            "根为 " + code("oneOf") + "：单条记录，或 1～N 条记录的数组；记录定义在 " + code("$defs/record") + "。",
            "记录的 " + code("required") + " 列出全部节点（所有节点都必须存在）；非必填节点也接受 null 与空白字符串。",
            "条件必填以 " + code("if") + "/" + code("then") + " 表达；代码表不超过 500 个代码时以 " + code("enum") + " 内联（含别名），更大的表用格式 " + code("code:<表名>") + "。",
            "扩展注解：" + "、".join(code(x) for x in ("x-imsp-dataset", "x-imsp-key", "x-imsp-rules", "x-imsp-table", "x-imsp-type", "x-imsp-required", "x-imsp-condition", "x-imsp-when", "x-imsp-unknown-nodes")) + "，与本规范的字段表一一对应。",
        ]
    )  # fmt: skip
    part.h(2, "6.3 自定义格式", "formats")
    part.p("Schema 中的 " + code("format") + " 在 draft 2020-12 中默认只是注解；校验时须启用格式检查（使用 Python " + code("jsonschema") + " 库时，可直接使用平台 Python SDK 提供的格式检查器 " + code("format_checker()") + "）。")  # fmt: skip
    part.table(("格式名", "要求"), [(code(k), v) for k, v in CUSTOM_FORMATS.items()])
    part.h(2, "6.4 Schema 不能表达的检查", "schema-limits")
    part.p("以下检查由平台校验程序执行，Schema 以 " + code("x-imsp-rules") + " 等注解说明：")
    part.table(("检查", "说明"), [(code(k), v) for k, v in NOT_EXPRESSIBLE.items()])
    part.h(2, "6.5 离线校验示例", "schema-example")
    part.code(
        "import json\n"
        "from jsonschema import Draft202012Validator\n"
        "from imsp.standard.jsonschema import format_checker\n\n"
        'schema = json.load(open("uploadPrescriptionInfo.schema.json", encoding="utf-8"))\n'
        'records = json.load(open("prescriptions.json", encoding="utf-8"))\n'
        "validator = Draft202012Validator(schema, format_checker=format_checker())\n"
        "for error in validator.iter_errors(records):\n"
        "    print(list(error.absolute_path), error.message)\n",
        "python",
    )
    return part


__all__ = [
    "BASE_URL",
    "MAX_BODY_MB",
    "MAX_RECORDS",
    "TOKEN_TTL_SECONDS",
    "errors",
    "overview",
    "readme",
    "schema",
    "slug",
    "toc",
    "token",
]
