"""A small hand-built standard (model objects built directly) exercising every validator feature.

The tests of the validator use it so they never depend on the packaged dataset files, which are
edited independently.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from imsp.standard.model import (
    CodeEntry,
    CodeTable,
    Condition,
    Dataset,
    Field,
    Rule,
    Standard,
)


def table(name: str, *rows: tuple[str, str] | tuple[str, str, tuple[str, ...]]) -> CodeTable:
    entries = tuple(CodeEntry(r[0], r[1], r[2] if len(r) > 2 else ()) for r in rows)
    return CodeTable(name=name, title=f"{name} 代码", source="test", note="", entries=entries)


TABLES = {
    t.name: t
    for t in (
        table("sex", ("0", "未知"), ("1", "男"), ("2", "女"), ("9", "未说明")),
        table("cert_type", ("01", "居民身份证", ("1",)), ("03", "护照", ("2",))),
        table("recipe_type", ("1", "西药"), ("2", "中成药"), ("3", "中药饮片")),
        table("icd", ("J06.900", "上呼吸道感染"), ("I10.x00", "高血压"), ("E11.900", "2型糖尿病")),
        table("frequency", ("qd", "每日一次"), ("bid", "每日两次"), ("99", "其他")),
    )
}


def f(code: str, type_: str, required: str = "Y", **kw: Any) -> Field:
    return Field(code=code, name=kw.pop("name", f"{code}名"), type=type_, required=required, **kw)  # type: ignore[arg-type]


ITEM_FIELDS = (
    f("itemName", "string", length=50, name="药品名称"),
    f("price", "decimal", length=10, scale=4, name="单价"),
    f("quantity", "decimal", length=10, scale=2, name="数量"),
    f("amount", "decimal", length=10, scale=2, name="金额"),
    f("frequency", "string", "N", length=10, table="frequency", name="频次"),
    f(
        "freqNote",
        "string",
        "C",
        length=50,
        when=(Condition("frequency", "in", ["99"]),),
        condition="频次为其他时必填",
        name="频次说明",
    ),
    f(
        "decoction",
        "string",
        "C",
        length=20,
        when=(Condition("recipeType", "in", ["3"]),),
        condition="中药饮片处方必填",
        name="煎法",
    ),
)

ADDRESS_FIELDS = (
    f("province", "string", length=20, name="省份"),
    f("postcode", "string", "N", length=6, format="postcode", name="邮编"),
)

FIELDS = (
    f("organID", "string", length=18, format="uscc", name="机构统一社会信用代码"),
    f("recipeID", "string", length=20, name="处方号"),
    f("recipeType", "string", length=1, table="recipe_type", name="处方类型"),
    f(
        "packetsNum",
        "int",
        "C",
        min=1,
        when=(Condition("recipeType", "in", ["3"]),),
        condition="中药饮片处方必填",
        name="帖数",
    ),
    f("patientCertType", "string", length=2, table="cert_type", name="患者证件类型"),
    f(
        "patientCertID",
        "string",
        "C",
        length=32,
        format="idcard",
        when=(Condition("age", "ge", 6),),
        condition="年满 6 周岁必填",
        name="患者证件号码",
    ),
    f("patientName", "string", length=20, name="患者姓名"),
    f("sex", "string", length=1, table="sex", name="性别"),
    f("birthday", "date", "N", name="出生日期"),
    f("age", "int", min=0, max=150, name="年龄"),
    f(
        "guardianName",
        "string",
        "C",
        length=50,
        when=(Condition("age", "lt", 6),),
        condition="未满 6 周岁必填",
        name="监护人姓名",
    ),
    f("mobile", "string", length=20, format="phone", name="联系电话"),
    f("icdCode", "string", length=100, table="icd", multi=True, name="诊断编码"),
    f("icdName", "string", length=200, name="诊断名称"),
    f("totalFee", "decimal", length=10, scale=2, min=0, name="处方金额"),
    f("datein", "datetime", name="开方时间"),
    f("checkDate", "datetime", "N", name="审方时间"),
    f("doctorCertID", "string", length=18, format="idcard", name="医师身份证号"),
    f("auditCertID", "string", "N", length=18, format="idcard", name="药师身份证号"),
    f("homepage", "string", "N", length=100, format="url", name="主页"),
    f("contactEmail", "string", "N", length=50, name="邮箱"),
    f("contactWechat", "string", "N", length=50, name="微信"),
    f("address", "object", "N", fields=ADDRESS_FIELDS, name="地址"),
    f("items", "list", min_items=1, fields=ITEM_FIELDS, name="药品明细"),
)

RULES = (
    Rule(
        "idcard",
        {"id": "patientCertID", "type": "patientCertType", "birthday": "birthday", "sex": "sex"},
    ),
    Rule("order", {"fields": ["datein", "checkDate"]}),
    Rule("sum", {"total": "totalFee", "list": "items", "field": "amount"}),
    Rule("product", {"list": "items", "result": "amount", "factors": ["price", "quantity"]}),
    Rule("pair", {"fields": ["icdCode", "icdName"]}),
    Rule("one_of", {"fields": ["contactEmail", "contactWechat"]}),
    Rule("not_equal", {"fields": ["doctorCertID", "auditCertID"]}),
)

TOY = Dataset(
    code="toy",
    service="uploadToy",
    name="测试处方",
    number=99,
    category="医疗服务",
    mandatory=True,
    key=("recipeID",),
    references=(),
    description="",
    decisions=(),
    columns={},
    fields=FIELDS,
    rules=RULES,
)


def standard(*datasets: Dataset) -> Standard:
    ds = datasets or (TOY,)
    return Standard(
        version="test",
        title="测试标准",
        meta={},
        datasets={d.code: d for d in ds},
        tables=TABLES,
    )


def dataset(**changes: Any) -> Dataset:
    return replace(TOY, **changes)


PATIENT_ID = "11010519491231002X"  # GB 11643-1999's example: born 1949-12-31, female


def record(**changes: Any) -> dict[str, Any]:
    """A valid record of TOY (fresh dict each call), with ``changes`` applied."""
    rec: dict[str, Any] = {
        "organID": "91110000802100433B",
        "recipeID": "RX0001",
        "recipeType": "1",
        "packetsNum": None,
        "patientCertType": "01",
        "patientCertID": PATIENT_ID,
        "patientName": "张三",
        "sex": "2",
        "birthday": "1949-12-31",
        "age": 75,
        "guardianName": "",
        "mobile": "13800138000",
        "icdCode": "J06.900|I10.x00",
        "icdName": "上呼吸道感染|高血压",
        "totalFee": 30.5,
        "datein": "2025-06-01 10:00:00",
        "checkDate": "2025-06-01 10:05:00",
        "doctorCertID": "440524188001010014",
        "auditCertID": "",
        "homepage": None,
        "contactEmail": "a@example.org",
        "contactWechat": None,
        "address": {"province": "河北", "postcode": "050000"},
        "items": [
            {
                "itemName": "阿莫西林胶囊",
                "price": 12.5,
                "quantity": 2,
                "amount": "25.00",
                "frequency": "bid",
                "freqNote": None,
                "decoction": "",
            },
            {
                "itemName": "布洛芬",
                "price": "5.5",
                "quantity": 1,
                "amount": 5.5,
                "frequency": "",
                "freqNote": None,
                "decoction": None,
            },
        ],
    }
    rec.update(changes)
    return rec
