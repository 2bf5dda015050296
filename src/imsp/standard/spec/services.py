"""Part 3 (the upload services, one per dataset) and part 4 (code tables) of the published spec."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

from imsp.standard.demo import DEMO_ORG_CODE
from imsp.standard.model import CodeTable, Dataset, Field, Rule, Standard, load_standard
from imsp.standard.protocol import RECORD
from imsp.standard.ruleset import load_rules
from imsp.standard.spec.document import Part, code, link
from imsp.standard.validate import validator_for

#: Field format name (FORMAT.md) → (Chinese description, JSON Schema format name).
FORMATS: Final[dict[str, tuple[str, str]]] = {
    "idcard": ("居民身份证号码，GB 11643 校验码", "gb11643-idcard"),
    "uscc": ("统一社会信用代码，GB 32100 校验码", "gb32100-uscc"),
    "mobile": ("11 位手机号码", "cn-mobile"),
    "phone": ("手机号码或带区号的固定电话", "cn-phone"),
    "postcode": ("6 位邮政编码", "cn-postcode"),
    "url": ("http(s) 网址", "http-url"),
    "sha256": ("64 位十六进制 SHA-256 摘要", "sha256-hex"),
    "workdate": ("出诊时段 yyyy-MM-dd HH:mm-HH:mm", "workdate"),
}
REQUIRED: Final = {"Y": "是", "N": "否", "C": "条件"}
RULE_KINDS: Final = {
    "order": ("时间先后", "time_order"),
    "sum": ("金额合计", "sum_mismatch"),
    "product": ("乘积", "product_mismatch"),
    "idcard": ("身份证号码", "idcard、idcard_birthday、idcard_sex"),
    "pair": ("多值个数对应", "pair_mismatch"),
    "one_of": ("至少填写一项", "one_of"),
    "not_equal": ("两项不得相同", "not_equal"),
    "add": ("金额合计（分项之和）", "sum_mismatch"),
    "age": ("年龄与出生日期", "age_mismatch"),
    "period": ("有效天数与起止日期", "period_mismatch"),
}
#: Code tables with more rows than this are described, not printed (icd10, icd10_tcm).
PRINT_LIMIT: Final = 1000
EXAMPLE_SEED: Final = 0
EXAMPLE_COUNT: Final = 10
EXCHANGE_ID: Final = "0197a3c1-d2e4-7506-9728-394a5b6c7d8e"  # a UUIDv7, as the platform issues


def service_title(ds: Dataset) -> str:
    """The service's name as in the instructions' table (患者信息上传服务 …)."""
    name = ds.name if ds.name.endswith(("信息", "协议")) else ds.name + "信息"
    return name + "上传服务"


def slug(ds: Dataset) -> str:
    return f"3-{ds.number:02d}-{ds.service}"


def anchor(ds: Dataset) -> str:
    return f"svc-{ds.service}"


# --------------------------------------------------------------------------- field tables


def length(f: Field) -> str:
    if f.type == "string":
        return str(f.length)
    if f.type == "decimal":
        return f"{f.length},{f.scale or 0}"
    if f.type == "date":
        return "10"
    if f.type == "datetime":
        return "19"
    return ""


def type_label(f: Field) -> str:
    return {"list": "list（数组）", "object": "object（对象）"}.get(f.type, f.type_label)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def domain(f: Field, std: Standard) -> str:
    parts: list[str] = []
    if f.table is not None:
        t = std.tables[f.table]
        parts.append(
            link(f"{t.name} {t.title}", f"code-{t.name}") + ("，多值以 | 分隔" if f.multi else "")
        )
    if f.format is not None:
        text, name = FORMATS[f.format]
        parts.append(f"{text}（格式 {code(name)}）")
    if f.min is not None and f.max is not None:
        parts.append(f"{_num(f.min)}～{_num(f.max)}")
    elif f.min is not None:
        parts.append(f"≥ {_num(f.min)}")
    elif f.max is not None:
        parts.append(f"≤ {_num(f.max)}")
    if f.type == "list":
        parts.append(f"至少 {max(f.min_items or 0, 1 if f.required == 'Y' else 0)} 条")
    return "；".join(parts)


_RULE_REF: Final = re.compile(r"(?<![A-Za-z0-9.\[])R\d{2}(?![0-9.])")


def rule_links(text: str) -> str:
    """Supervision rule IDs (R21) in data text as links to their entry in chapter 监管规则."""
    known = {r.id for r in load_rules()}
    return _RULE_REF.sub(lambda m: link(m[0], f"rule-{m[0]}") if m[0] in known else m[0], text)


def note(f: Field, path: str) -> str:
    parts: list[str] = []
    if f.required == "C":
        parts.append(f"条件必填：{f.condition or _when_text(f)}")
    if f.desc:
        parts.append(rule_links(f.desc))
    if f.since:
        parts.append(f"V{f.since} 新增；V1.0 的报文可以不含本节点")
    if f.type in ("list", "object"):
        parts.append(f"元素节点见 {code(path)} 节点表")
    return "。".join(p.rstrip("。") for p in parts) + ("。" if parts else "")


def _when_text(f: Field) -> str:
    ops = {"in": "取值为", "not_in": "取值不为", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
    out = []
    for c in f.when:
        if c.op == "present":
            out.append(f"{c.field} {'已填写' if c.value else '未填写'}")
        else:
            value = "、".join(map(str, c.value)) if isinstance(c.value, list) else str(c.value)
            out.append(f"{c.field} {ops[c.op]} {value}")
    return "且".join(out) + "时必填"


def example_value(f: Field, sample: Any) -> str:
    """The example column: the field's own ``example``, else the value in a generated record."""
    if f.type in ("list", "object"):
        return "见元素节点表"
    value = f.example if f.example is not None else sample
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        value = f"{value:.{f.scale or 0}f}" if f.scale is not None else repr(value)
    return code(value)


def field_rows(
    fields: tuple[Field, ...], prefix: str, std: Standard, sample: dict[str, Any] | None = None
) -> list[list[str]]:
    sample = sample or {}
    return [
        [code(prefix + f.code), f.name, type_label(f), length(f), REQUIRED[f.required],
         domain(f, std), example_value(f, sample.get(f.code)), note(f, prefix + f.code)]
        for f in fields
    ]  # fmt: skip


def _first(record: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = record
    for p in path.split("."):
        node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, list):
            node = node[0] if node else None
    return node if isinstance(node, dict) else {}


def nested(fields: tuple[Field, ...], prefix: str = "") -> Iterator[tuple[str, Field]]:
    """Every list/object field with its dotted path, depth first."""
    for f in fields:
        if f.fields:
            path = prefix + f.code
            yield path, f
            yield from nested(f.fields, path + ".")


FIELD_HEADER: Final = ("代码", "名称", "类型", "长度", "必填", "值域", "示例", "说明")


# --------------------------------------------------------------------------- rules, examples


def rule_fields(r: Rule) -> list[str]:
    p = r.params
    if r.kind == "sum":
        return [p["total"], f"{p['list']}.{p['field']}"]
    if r.kind == "product":
        base = f"{p['list']}." if p.get("list") else ""
        return [base + p["result"], *(base + x for x in p["factors"])]
    if r.kind == "idcard":
        return [str(p[k]) for k in ("id", "type", "birthday", "sex") if p.get(k)]
    if r.kind == "add":
        return [p["total"], *p["fields"]]
    if r.kind == "age":
        return [str(p[k]) for k in ("age", "birthday", "id") if p.get(k)] + list(p["at"])
    if r.kind == "period":
        return [p["days"], p["start"], p["end"]]
    return [str(x) for x in p.get("fields", [])]


def example_records(ds: Dataset, which: int = 0) -> list[dict[str, Any]]:
    """Generated records of the demo institution: record ``which`` (for prescription items, every
    line of prescription ``which``)."""
    from imsp.standard.sample import generate

    if ds.code == "prescription_item":
        lines = generate(ds, which + 1, seed=EXAMPLE_SEED)
        rid = lines[-1]["recipeID"]
        return [x for x in lines if x["recipeID"] == rid]
    return generate(ds, EXAMPLE_COUNT, seed=EXAMPLE_SEED)[which : which + 1]


CASE_POOL: Final = 60  # generated records searched for the cases below

#: Further complete examples (title, dataset, test on a record); the first matching record of the
#: generated pool is shown. A dataset without a matching case shows another ordinary record.
CASES: Final[tuple[tuple[str, str, Callable[[dict[str, Any]], bool]], ...]] = (
    ("退费", "payment", lambda r: r.get("chargeRefundCode") == "2"),
    ("退号退款", "register", lambda r: r.get("registerStatus") == "6"),
    ("已取消的预约", "register", lambda r: r.get("registerStatus") == "2"),
    ("中药饮片处方", "prescription", lambda r: r.get("recipeType") == "3"),
    ("长期处方", "prescription", lambda r: r.get("longTermFlag") == "1"),
    ("首诊：终止互联网诊疗", "outpatient", lambda r: r.get("visitType") == "0"),
    ("已取消的远程医疗申请", "telemedicine", lambda r: r.get("status") == "9"),
    ("被拒绝的远程医疗申请", "telemedicine", lambda r: r.get("status") == "8"),
    ("药师", "doctor", lambda r: r.get("personType") in ("31", "32")),
)
_CHILD: Final = "儿童患者（未满 6 周岁，填写监护人）"


def case_examples(ds: Dataset) -> list[tuple[str, list[dict[str, Any]]]]:
    """Complete example records of ``ds`` for the cases that apply to it (normal first record is
    shown in the request example): refunds, cancellations, a herbal prescription, a child with
    guardian… — taken from the sample world, so they validate by construction (a test checks)."""
    from imsp.standard.sample import generate

    if ds.code == "prescription_item":
        rx = generate("prescription", CASE_POOL, seed=EXAMPLE_SEED)
        lines = generate(ds, CASE_POOL, seed=EXAMPLE_SEED)
        out: list[tuple[str, list[dict[str, Any]]]] = []
        for title, field, value in (("中药饮片处方的明细", "recipeType", "3"),
                                    ("长期处方的明细", "longTermFlag", "1")):  # fmt: skip
            hit = next((r for r in rx if r.get(field) == value), None)
            if hit is not None:
                out.append((title, [x for x in lines if x["recipeID"] == hit["recipeID"]]))
        return out
    pool = generate(ds, CASE_POOL, seed=EXAMPLE_SEED)
    out = []
    for title, code_, test in CASES:
        if code_ == ds.code:
            hit = next((r for r in pool if test(r)), None)
            if hit is not None:
                out.append((title, [hit]))
    if any(f.code == "guardianName" for f in ds.fields):
        child = next((r for r in pool if isinstance(r.get("age"), int) and r["age"] < 6), None)
        if child is not None:
            out.append((_CHILD, [child]))
    if not out and len(pool) > 1:
        out.append(("另一条记录", [pool[1]]))
    return out


def receipt(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(1 for r in results if r["msgCode"] in (200, 201))
    n = len(results)
    return {
        "code": 200,
        "msg": f"处理完成：共 {n} 条，成功 {ok} 条，失败 {n - ok} 条",
        "data": {"exchangeId": EXCHANGE_ID, "standardVersion": load_standard().release, "total": n, "success": ok, "fail": n - ok, "results": results},
    }  # fmt: skip


def _result(index: int, key: str | None, code_: int, msg: str, errors: list[Any]) -> dict[str, Any]:
    return {
        "index": index,
        "key": key,
        "msgCode": code_,
        "msg": msg,
        "errors": errors,
        "warnings": [],
    }


def victim(ds: Dataset) -> Field:
    """The required node the failure example leaves empty: the first plain required string."""
    skip = set(ds.key) | {"organID", "organName"}
    return next(
        f for f in ds.fields
        if f.required == "Y" and f.type == "string" and f.table is None and f.code not in skip
    )  # fmt: skip


def example_receipts(
    ds: Dataset, singleton: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The example request body, its receipt, and the receipt of a batch whose last record leaves
    a required node empty — computed with the platform's own validator."""
    v = validator_for(ds)
    records = example_records(ds)
    ok = [_result(i, v.check(r, i).key, 200, RECORD[200].msg, []) for i, r in enumerate(records)]
    bad = dict((records if singleton else example_records(ds, 1))[0])
    f = victim(ds)
    bad[f.code] = ""
    at = 0 if singleton else 1
    verdict = v.check(bad, at)
    errors = [{"field": e.field, "code": e.code, "msg": e.msg} for e in verdict.errors]
    mc = verdict.errors[0].msg_code
    failed = _result(at, verdict.key, mc, f"{RECORD[mc].msg}：{f.code}", errors)
    mixed = [failed] if singleton else [ok[0], failed]
    return records, receipt(ok), receipt(mixed)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


# --------------------------------------------------------------------------- part 3


def service_part(ds: Dataset, std: Standard, n: int, *, singleton: bool, max_records: int) -> Part:
    """Section 3.``n``: one upload service."""
    sec = f"3.{n}"
    part = Part(slug(ds), f"{sec} {service_title(ds)}")
    a = anchor(ds)
    part.h(2, f"{sec} {service_title(ds)}（{ds.path}）", a)
    part.p(ds.description)
    refs = "、".join(
        link(f"{std.datasets[r].name}（{std.datasets[r].path}）", anchor(std.datasets[r]))
        for r in ds.references
    )
    part.table(
        ("项目", "内容"),
        [
            ("服务名称", service_title(ds)),
            ("服务地址", code(ds.path) + f"（完整地址 {code('http://10.1.109.89:8888' + ds.path)}）"),
            ("请求方式", "POST"),
            ("数据集代码", code(ds.code) + "（服务名与数据集代码均可用于 JSON Schema 地址与命令行）"),
            ("数据集分类", f"{ds.category}；{'必须提供' if ds.mandatory else '建议提供'}"),
            ("业务主键", " + ".join(code(k) for k in ds.key) + "（同一机构内唯一；重复上报按主键覆盖并保留历史版本）"),
            ("关联数据集", refs or "无"),
            ("单次记录数", f"1～{max_records} 条（默认上限，以平台配置为准）"),
        ],
    )  # fmt: skip
    part.h(3, f"{sec}.1 请求头与参数", f"{a}-headers")
    part.table(
        ("名称", "位置", "必填", "说明"),
        [
            ("Content-Type", "请求头", "是", code("application/json;charset=UTF-8")),
            ("accessToken", "请求头", "是", "授权码获取服务返回的访问令牌；也可用 " + code("Authorization: Bearer <令牌>")),
            ("Transfer-Encoding / Content-Length", "请求头", "二选一", code("Transfer-Encoding: chunked") + " 或 " + code("Content-Length") + " 均可"),
            ("dryRun", "查询参数", "否", code("true") + "：只校验不入库，逐条 msgCode 202"),
            ("atomic", "查询参数", "否", code("true") + "：批内任一记录未通过则整批不入库，其余记录 msgCode -91"),
        ],
    )  # fmt: skip
    part.h(3, f"{sec}.2 请求体", f"{a}-body")
    part.p(
        "请求体为 JSON 数组，每个元素是一条记录（也接受单个 JSON 对象）。记录的全部节点都必须存在；"
        "必填为“否”的节点可以为 null 或空字符串；必填为“条件”的节点在条件成立时必填。"
    )
    sample = example_records(ds)[0]
    part.table(FIELD_HEADER, field_rows(ds.fields, "", std, sample), anchor=f"{a}-fields")
    for path, f in nested(ds.fields):
        kind = "数组元素" if f.type == "list" else "对象"
        part.p(f"{code(path)}（{f.name}）{kind}的节点：")
        part.table(
            FIELD_HEADER,
            field_rows(f.fields, path + ".", std, _first(sample, path)),
            anchor=f"{a}-{path.replace('.', '-')}",
        )
    if ds.rules:
        part.h(3, f"{sec}.3 记录内校验规则", f"{a}-rules")
        part.table(
            ("规则", "涉及节点", "说明", "问题代码"),
            [(RULE_KINDS[r.kind][0], "、".join(code(x) for x in rule_fields(r)), r.desc,
              "、".join(code(c) for c in ([r.code] if r.code else RULE_KINDS[r.kind][1].split("、"))))
             for r in ds.rules],
        )  # fmt: skip
    part.h(3, f"{sec}.4 设计说明", f"{a}-decisions")
    part.ul([rule_links(d) for d in ds.decisions] or ["无。"])
    records, ok, mixed = example_receipts(ds, singleton)
    part.h(3, f"{sec}.5 请求示例", f"{a}-example")
    part.p(
        f"以下记录由平台的测试数据生成器为演示机构 {code(DEMO_ORG_CODE)} 生成，均为虚构数据，"
        "并经平台校验程序校验通过："
    )
    part.code(
        f"POST {ds.path} HTTP/1.1\nHost: 10.1.109.89:8888\nContent-Type: application/json;charset=UTF-8\naccessToken: hbt_…\n",
        "http",
    )
    part.code(_json(records), "json")
    part.h(3, f"{sec}.6 响应示例", f"{a}-response")
    part.p("全部记录通过校验并入库：")
    part.code(_json(ok), "json")
    if singleton:
        part.p(
            f"记录的必填节点 {code(victim(ds).code)} 为空时，该记录被拒收（逐条回执列出每一个问题）："
        )
    else:
        part.p(
            f"两条记录中第二条的必填节点 {code(victim(ds).code)} 为空：第一条照常入库，第二条被拒收并列出每一个问题："
        )
    part.code(_json(mixed), "json")
    cases = case_examples(ds)
    if cases:
        part.h(3, f"{sec}.7 更多示例", f"{a}-cases")
        part.p("以下完整记录同样由测试数据生成器生成，并经平台校验程序校验通过：")
        for title, recs in cases:
            part.p(f"{title}：")
            part.code(_json(recs), "json")
    return part


# --------------------------------------------------------------------------- part 4


def _users(std: Standard) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for ds in std.ordered():
        for path, f in ds.walk():
            if f.table is not None:
                users.setdefault(f.table, []).append(
                    link(f"{ds.code}.{path}", f"{anchor(ds)}-fields")
                )
    return users


def _table_rows(t: CodeTable, limit: int | None) -> tuple[tuple[str, ...], list[list[str]]]:
    entries = t.entries if limit is None else t.entries[:limit]
    has_alias = any(e.aliases for e in t.entries)
    has_note = any(e.note for e in t.entries)
    header = (
        ("代码", "名称")
        + (("别名（兼容写法）",) if has_alias else ())
        + (("说明",) if has_note else ())
    )
    rows = []
    for e in entries:
        row = [code(e.code), e.name]
        if has_alias:
            row.append("、".join(code(a) for a in e.aliases))
        if has_note:
            row.append(e.note)
        rows.append(row)
    return header, rows


def codes_part(std: Standard) -> Part:
    part = Part("4-codes", "4 代码表")
    part.h(1, "4 代码表", "codes")
    part.p(
        "代码类节点的取值必须是下列代码表中的代码（以字符串传送）；“别名”列为兼容其他平台的写法，平台接受后"
        "转换为标准代码并在回执中给出警告；“已撤销”的代码（如撤并前的行政区划）仍被接受，回执给出警告 "
        + code("code_retired") + "。每张代码表也以 JSON 发布：" + code("GET /standard/v1/codes/<表名>.json")
        + "（UTF-8；每个代码含 code、name、aliases、note）。"
    )  # fmt: skip
    users = _users(std)
    part.table(
        ("表名", "名称", "代码数", "来源"),
        [
            (link(n, f"code-{n}"), t.title, str(len(t.entries)), t.source)
            for n, t in std.tables.items()
        ],
    )
    for n, (name, t) in enumerate(std.tables.items(), 1):
        part.h(2, f"4.{n} {code(name)} {t.title}", f"code-{name}")
        facts = [f"来源：{t.source}。" if t.source else "", f"{t.note}。" if t.note else ""]
        part.p("".join(x.replace("。。", "。") for x in facts) + f"共 {len(t.entries)} 个代码。")
        if name in users:
            part.p("使用本表的节点：" + "、".join(users[name]) + "。")
        big = len(t.entries) > PRINT_LIMIT
        if big:
            part.p(
                f"本表代码较多，此处只列出前 10 个。完整代码表：{code(f'GET /standard/v1/codes/{name}.json')}。"
            )
        header, rows = _table_rows(t, 10 if big else None)
        part.table(header, rows)
    return part
