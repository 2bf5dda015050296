"""D4 prescription rules: R19–R31, R33, R34."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from imsp.standard.model import load_standard
from imsp.supervision.facts import Index, Rec, Verdict, as_number
from imsp.supervision.predicates.base import predicate

TOLERANCE = 0.01 + 1e-9  # 数据标准 V1.0 §记录内规则: 金额允许 ±0.01 元


def _items(rec: Rec, idx: Index) -> list[Rec]:
    return idx.items_of(rec.institution_id, rec.key)


def _visit(rec: Rec, idx: Index) -> tuple[Rec | None, Rec | None]:
    """The prescription's follow-up record (门诊病历) and consultation with the same bussID."""
    ops = idx.visit(rec.institution_id, rec["bussID"], "outpatient")
    return (ops[0] if ops else None), idx.get(rec.institution_id, "consult", rec["bussID"])


@predicate("R19", "prescription")
def no_special_drugs(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["recipeCategory"] in ("4", "5"):
        v.violation("recipeCategory", rec["recipeCategory"], "在线开具麻醉药品、精神药品处方")
    for item in _items(rec, idx):
        cls = item["specialDrugClass"]
        if cls and cls != "0":
            v.violation("specialDrugClass", cls, f"在线开具特殊管理药品 {item['drname']}", item)


@predicate("R20", "prescription")
def treating_doctor(rec: Rec, idx: Index, v: Verdict) -> None:
    op, consult = _visit(rec, idx)
    visit = op or consult
    if visit is None:
        v.lacks("outpatient", "bussID", rec["bussID"])
        return
    v.involve(visit)
    if visit["doctorCertID"] != rec["doctorCertID"]:
        v.violation("doctorCertID", rec["doctorCertID"], "开方医师不是接诊医师", None)
    if op is not None:
        start, end = op.time_of("visitDate"), op.time_of("visitEndTime")
    else:
        assert consult is not None
        start, end = consult.time_of("applyDate"), consult.time_of("endDate")
    issued = rec.time_of("datein")
    if start is None or issued is None:
        return
    if issued < start:
        v.violation("datein", rec["datein"], f"开方时间早于就诊开始时间 {start:%Y-%m-%d %H:%M:%S}")
    if issued > (end or start) + timedelta(hours=24):
        v.violation("datein", rec["datein"], "开方时间晚于就诊结束后 24 小时")


@predicate("R21", "prescription")
def doctor_signature(rec: Rec, idx: Index, v: Verdict) -> None:
    if not rec["doctorSign"] and not rec["caCertSN"]:
        v.violation("doctorSign", None, "处方无医师电子签名")


@predicate("R22", "prescription")
def reviewed_before_payment(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["checkResult"] != "1":
        v.violation("checkResult", rec["checkResult"] or None, "处方未经药师审核通过")
    if not rec["auditDoctorCertID"]:
        v.violation("auditDoctorCertID", None, "处方无审方药师")
    issued, checked = rec.time_of("datein"), rec.time_of("checkDate")
    if issued is not None and checked is not None and checked < issued:
        v.violation("checkDate", rec["checkDate"], "审方时间早于开方时间")
    for pay in idx.visit(rec.institution_id, rec["bussID"], "payment"):
        if pay["recipeID"] != rec.key:
            continue
        paid = pay.time_of("payTime")
        if paid is None:
            continue
        if checked is None or rec["checkResult"] != "1":
            v.violation("payTime", pay["payTime"], "处方未经审核通过即已收费", pay)
        elif paid < checked:
            v.violation("payTime", pay["payTime"], f"收费早于审方时间 {rec['checkDate']}", pay)


@predicate("R23", "prescription")
def no_drugs_before_prescription(rec: Rec, idx: Index, v: Verdict) -> None:
    done = rec.time_of("verificationTime")
    if done is None:
        return
    issued, checked = rec.time_of("datein"), rec.time_of("checkDate")
    if issued is not None and done < issued:
        v.violation(
            "verificationTime", rec["verificationTime"], "取药/配送早于开方时间（先药后方）"
        )
    elif checked is not None and done < checked:
        v.violation("verificationTime", rec["verificationTime"], "取药/配送早于审方时间")


@predicate("R24", "prescription")
def prescriber_not_reviewer(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["auditDoctorCertID"] and rec["auditDoctorCertID"] == rec["doctorCertID"]:
        v.violation("auditDoctorCertID", rec["auditDoctorCertID"], "开方医师与审方药师为同一人")


@predicate("R25", "prescription")
def validity(rec: Rec, idx: Index, v: Verdict) -> None:
    period = as_number(rec.raw("effectivePeriod"))
    if period is not None and period > 3:
        v.violation("effectivePeriod", rec.raw("effectivePeriod"), "处方有效期超过 3 天")
    start, end = rec.date_of("startDate"), rec.date_of("endDate")
    if start is not None and end is not None and (end - start).days > 3:
        v.violation("endDate", rec["endDate"], f"处方有效期 {start}～{end} 超过 3 天")
    done = rec.date_of("verificationTime")
    if done is not None and end is not None and done > end:
        v.violation("verificationTime", rec["verificationTime"], f"处方过期（{end}）后仍取药/配送")


@predicate("R26", "prescription")
def seven_days(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["longTermFlag"] == "1":
        return
    limit = 3 if rec["recipeCategory"] == "2" else 7
    for item in _items(rec, idx):
        days = as_number(item.raw("useDays"))
        if days is not None and days > limit and not item["overLimitReason"]:
            v.violation(
                "useDays",
                item.raw("useDays"),
                f"{item['drname']} 用量超过 {limit} 天且未注明理由",
                item,
            )


@predicate("R27", "prescription")
def long_term(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["longTermFlag"] != "1":
        return
    for item in _items(rec, idx):
        days = as_number(item.raw("useDays"))
        if days is not None and days > 84:
            v.violation(
                "useDays", item.raw("useDays"), f"长期处方 {item['drname']} 用量超过 12 周", item
            )
        elif days is not None and days > 28:
            v.risk("useDays", item.raw("useDays"), f"长期处方 {item['drname']} 用量超过 4 周", item)
        if item["specialDrugClass"] not in ("", "0"):
            v.violation(
                "specialDrugClass", item["specialDrugClass"], "长期处方含特殊管理药品", item
            )
        if item["antibioticLevel"] in ("1", "2", "3"):
            v.risk("antibioticLevel", item["antibioticLevel"], "长期处方含抗菌药物", item)


@predicate("R28", "prescription")
def five_drugs(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["recipeType"] not in ("1", "2"):
        return
    declared = as_number(rec.raw("itemCount")) or 0
    n = max(int(declared), len(_items(rec, idx)))
    if n > 5:
        v.violation("itemCount", n, f"西药、中成药处方含 {n} 种药品，超过 5 种")


@predicate("R29", "prescription")
def special_antibiotics(rec: Rec, idx: Index, v: Verdict) -> None:
    for item in _items(rec, idx):
        level = item["antibioticLevel"]
        if level == "3":
            v.violation(
                "antibioticLevel", level, f"在线开具特殊使用级抗菌药物 {item['drname']}", item
            )
        elif level == "2":
            v.risk("antibioticLevel", level, f"在线开具限制使用级抗菌药物 {item['drname']}", item)


@cache
def _icd10() -> frozenset[str]:
    table = load_standard().tables["icd10"]
    return frozenset(table.codes) | frozenset(table.aliases)


@predicate("R30", "prescription")
def coded_diagnosis(rec: Rec, idx: Index, v: Verdict) -> None:
    codes = [c.strip() for c in rec["icdCode"].split("|")] if rec["icdCode"] else []
    names = [n.strip() for n in rec["icdName"].split("|")] if rec["icdName"] else []
    if not codes or not names:
        v.violation("icdCode", rec["icdCode"] or None, "处方未填写诊断编码或诊断名称")
        return
    if len(codes) != len(names):
        v.violation(
            "icdName", rec["icdName"], f"诊断编码 {len(codes)} 个与诊断名称 {len(names)} 个不对应"
        )
    unknown = [c for c in codes if c not in _icd10()]
    if unknown:
        v.violation("icdCode", "|".join(unknown), "诊断编码不在 ICD-10 国家临床版 2.0 代码表中")


@predicate("R31", "prescription")
def national_drug_code(rec: Rec, idx: Index, v: Verdict) -> None:
    for item in _items(rec, idx):
        if not item["countrydrcode"]:
            v.risk("countrydrcode", None, f"{item['drname']} 未填写国家药品编码", item)


@predicate("R33", "prescription")
def rational_drug(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["rationalFlag"] == "1" and not rec["rationalDrug"]:
        v.violation("rationalDrug", None, "已做合理用药判断但未上报判断结果")


def _money(value: object) -> float:
    n = as_number(value)
    return n if n is not None else 0.0


@predicate("R34", "prescription", "payment")
def totals(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec.dataset == "payment":
        _payment_totals(rec, v)
        return
    items = _items(rec, idx)
    for item in items:
        price, qty = as_number(item.raw("price")), as_number(item.raw("dosageTotal"))
        total = as_number(item.raw("totalPrice"))
        if (
            price is not None
            and qty is not None
            and total is not None
            and abs(price * qty - total) > TOLERANCE
        ):
            v.violation(
                "totalPrice",
                total,
                f"明细金额应为 单价 {price} × 总量 {qty} = {price * qty:.2f}",
                item,
            )
    declared = int(as_number(rec.raw("itemCount")) or 0)
    if items and len(items) >= declared:
        fee = _money(rec.raw("totalFee"))
        summed = sum(_money(i.raw("totalPrice")) for i in items)
        if abs(fee - summed) > TOLERANCE:
            v.violation(
                "totalFee", rec.raw("totalFee"), f"处方总金额与明细金额之和 {summed:.2f} 不符"
            )


def _payment_totals(rec: Rec, v: Verdict) -> None:
    total = _money(rec.raw("totalFee"))
    items = rec.raw("items")
    if isinstance(items, list) and items:
        summed = 0.0
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            amount = _money(item.get("amount"))
            summed += amount
            expect = _money(item.get("unitPrice")) * _money(item.get("quantity"))
            if abs(expect - amount) > TOLERANCE:
                v.violation(
                    f"items[{i}].amount",
                    item.get("amount"),
                    f"明细金额应为 单价 × 数量 = {expect:.2f}",
                )
        if abs(summed - total) > TOLERANCE:
            v.violation(
                "totalFee", rec.raw("totalFee"), f"缴费总金额与明细金额之和 {summed:.2f} 不符"
            )
    paid = (
        _money(rec.raw("individualPay")) + _money(rec.raw("fundPay")) + _money(rec.raw("otherPay"))
    )
    if abs(paid - total) > TOLERANCE:
        v.violation(
            "individualPay",
            rec.raw("individualPay"),
            f"个人支付 + 统筹支付 + 其他支付 = {paid:.2f}，与总金额不符",
        )
