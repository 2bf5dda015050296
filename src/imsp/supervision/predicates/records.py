"""D5 records and traceability, D6 telemedicine, D7 cross-dataset and platform rules: R35–R47."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Final

from imsp.clock import BEIJING
from imsp.standard.ruleset import load_rules
from imsp.standard.validate import validator_for
from imsp.supervision.facts import Index, Rec, Verdict, as_number
from imsp.supervision.predicates.base import BUSINESS, predicate


@predicate("R35", "prescription")
def medical_record(rec: Rec, idx: Index, v: Verdict) -> None:
    ops = idx.visit(rec.institution_id, rec["bussID"], "outpatient")
    if not ops:
        if idx.get(rec.institution_id, "consult", rec["bussID"]) is None:
            v.lacks("outpatient", "bussID", rec["bussID"])
        return  # a prescription from a consultation is R18's business
    op = ops[0]
    for f, label in (("chiefComplaint", "主诉"), ("presentHistory", "现病史")):
        if not op[f]:
            v.violation(f, None, f"开具处方的复诊病历缺少{label}", op)
    if not (
        op["diagnosisCode"] or op["diagnosisName"] or op["tcmDiseaseCode"] or op["tcmDiseaseName"]
    ):
        v.violation("diagnosisName", None, "开具处方的复诊病历缺少诊断", op)


@predicate("R36", "outpatient", "consult")
def process_data(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec.dataset == "consult" and rec["answerFlag"] != "1":
        return
    if not rec["processDataURL"]:
        v.risk("processDataURL", None, "未提供诊疗过程数据（图文、音视频）地址")


@predicate("R37", "prescription", "inspection", "lis", "pacs")
def time_order(rec: Rec, idx: Index, v: Verdict) -> None:
    inst = rec.institution_id
    if rec.dataset in ("prescription", "inspection"):
        field = "datein" if rec.dataset == "prescription" else "applyTime"
        ops = idx.visit(inst, rec["bussID"], "outpatient")
        visit = ops[0] if ops else idx.get(inst, "consult", rec["bussID"])
        if visit is None:
            return
        start = visit.time_of("visitDate" if visit.dataset == "outpatient" else "applyDate")
        t = rec.time_of(field)
        if start is not None and t is not None and t < start:
            v.violation(field, rec[field], f"早于就诊时间 {start:%Y-%m-%d %H:%M:%S}", None)
            v.involve(visit)
        return
    apply = idx.get(inst, "inspection", rec["applyId"])
    if apply is None:
        return
    field = "samplingTime" if rec.dataset == "lis" else "examTime"
    t, applied = rec.time_of(field), apply.time_of("applyTime")
    if t is not None and applied is not None and t < applied:
        v.involve(apply)
        v.violation(field, rec[field], f"早于检查检验申请时间 {apply['applyTime']}")


@predicate("R38", "prescription")
def delivery_traceable(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["verificationStatus"] != "1" and not rec["verificationTime"]:
        return
    if not rec["deliveryType"]:
        v.risk("deliveryType", None, "已核销处方未填写核销方式")
    if not rec["verificationTime"]:
        v.risk("verificationTime", None, "已核销处方未填写核销时间")
    if rec["deliveryType"] == "1" and not rec["deliveryFirm"]:
        v.risk("deliveryFirm", None, "物流配送的处方未填写配送企业")


@predicate("R40", "telemedicine")
def tele_consent(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["consentFlag"] != "1":
        v.violation("consentFlag", rec["consentFlag"], "远程医疗未取得患者书面知情同意")


@predicate("R41", "telemedicine")
def tele_opinion(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["status"] != "2":
        return
    if not rec["opinion"]:
        v.violation("opinion", None, "已完成的远程医疗无受邀方意见")
    doctors = rec.raw("invitedDoctors")
    if not isinstance(doctors, list) or not doctors:
        v.violation("invitedDoctors", None, "已完成的远程医疗无受邀医师")
    if not rec["reportSign"]:
        v.risk("reportSign", None, "远程医疗意见报告无签名")


@predicate("R42", "telemedicine")
def tele_parties(rec: Rec, idx: Index, v: Verdict) -> None:
    for f in ("applyOrgCode", "invitedOrgCode"):
        code = rec[f]
        if code and code not in idx.org_codes:
            v.risk(f, code, "远程医疗一方不是平台登记的医疗机构")


#: dataset → (field, referenced dataset) checked by R43 beyond patient/doctor/department/organ.
_LINKS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "prescription_item": (("recipeID", "prescription"),),
    "lis": (("applyId", "inspection"),),
    "pacs": (("applyId", "inspection"),),
    "payment": (("recipeID", "prescription"), ("applyId", "inspection")),
}
_BASE: Final = (
    ("patientId", "patient"),
    ("doctorCertID", "doctor"),
    ("applyDoctorCertID", "doctor"),
    ("deptID", "department"),
    ("applyDeptID", "department"),
)


def _grace_over(rec: Rec, idx: Index, v: Verdict) -> bool:
    """Whether the grace period since the record was first received has passed; if not, the
    verdict is pending until then."""
    due = rec.created_at + idx.grace
    if idx.now >= due:
        return True
    v.due = due
    return False


@predicate("R43", *BUSINESS, "prescription_item")
def references_exist(rec: Rec, idx: Index, v: Verdict) -> None:
    inst = rec.institution_id
    missing: list[tuple[str, str, str]] = []  # (dataset, field, key)
    for f, ds in _BASE:
        value = rec[f]
        if value and idx.get(inst, ds, value) is None:
            missing.append((ds, f, value))
    organ = idx.organ_code(rec)
    if organ and idx.get(inst, "organization", organ) is None:
        missing.append(("organization", "organID", organ))
    for f, ds in _LINKS.get(rec.dataset, ()):
        value = rec[f]
        if value and idx.get(inst, ds, value) is None:
            missing.append((ds, f, value))
    if rec.dataset == "prescription":
        buss = rec["bussID"]
        if not idx.visit(inst, buss, "outpatient") and idx.get(inst, "consult", buss) is None:
            missing.append(("outpatient", "bussID", buss))
        declared = int(as_number(rec.raw("itemCount")) or 0)
        have = len(idx.items_of(inst, rec.key))
        if have < declared:
            missing.append(
                ("prescription_item", "recipeID", f"{rec.key}（已收 {have}/{declared} 条）")
            )
    if not missing:
        return
    if not _grace_over(rec, idx, v):
        for ds, f, key in dict.fromkeys(missing):
            v.lacks(ds, f, key)
        return
    for ds, f, key in dict.fromkeys(missing):
        v.violation(f, key, f"关联数据不存在：{_DATASET_NAMES.get(ds, ds)}")


_DATASET_NAMES: Final = {
    "patient": "患者信息", "doctor": "人员信息", "department": "科室信息",
    "organization": "机构信息", "prescription": "处方信息", "prescription_item": "处方明细",
    "inspection": "检查检验申请", "outpatient": "门诊病历", "consult": "在线咨询",
    "register": "预约挂号", "telemedicine": "远程医疗",
}  # fmt: skip

#: 业务类型 (business_type) → where an evaluation's business record is (dataset, start field).
_CONSULT = (("consult", "applyDate"),)
_TARGETS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "1": _CONSULT, "2": _CONSULT, "3": _CONSULT,
    "4": (("outpatient", "visitDate"),),
    "5": (("prescription", "datein"), ("outpatient", "visitDate")),
    **{str(n): (("telemedicine", "applyTime"),) for n in range(8, 15)},
    "16": (("register", "appointDate"),),
}  # fmt: skip
_ANY = (
    ("consult", "applyDate"), ("outpatient", "visitDate"), ("register", "appointDate"),
    ("telemedicine", "applyTime"), ("prescription", "datein"),
)  # fmt: skip
_BY_VISIT: Final = frozenset({"outpatient", "prescription"})


@predicate("R44", "appraise")
def appraisal_after_business(rec: Rec, idx: Index, v: Verdict) -> None:
    inst, buss = rec.institution_id, rec["bussID"]
    business: Rec | None = None
    start_field = ""
    for ds, f in _TARGETS.get(rec["businessType"], _ANY):
        found = idx.visit(inst, buss, ds) if ds in _BY_VISIT else [idx.get(inst, ds, buss)]
        hit = next((r for r in found if r is not None), None)
        if hit is not None:
            business, start_field = hit, f
            break
    if business is None:
        if _grace_over(rec, idx, v):
            v.violation("bussID", buss, "评价对应的业务记录不存在")
        else:
            v.lacks(_TARGETS.get(rec["businessType"], _ANY)[0][0], "bussID", buss)
        return
    v.involve(business)
    start, evaluated = business.time_of(start_field), rec.time_of("evaluationTime")
    if start is not None and evaluated is not None and evaluated < start:
        v.violation(
            "evaluationTime", rec["evaluationTime"], f"评价早于业务开始时间 {business[start_field]}"
        )


@predicate("R45", *BUSINESS)
def uploaded_next_day(rec: Rec, idx: Index, v: Verdict) -> None:
    day = rec.day
    if day is None:
        return
    received = rec.created_at.astimezone(BEIJING)
    deadline = datetime(day.year, day.month, day.day, tzinfo=BEIJING) + timedelta(days=2)
    if received >= deadline:
        late = (received.date() - day).days - 1
        v.risk(
            "updateTime", received.strftime("%Y-%m-%d %H:%M:%S"),
            f"业务日期 {day}，平台接收于 {received:%Y-%m-%d %H:%M}，超过 T+1 {late} 天",
        )  # fmt: skip


_ALL: Final = (
    *BUSINESS,
    "patient",
    "prescription_item",
    "organization",
    "department",
    "doctor",
    "agreement",
)


@cache
def _effective() -> datetime | None:
    day = load_rules().standard_effective
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING) if day else None


@predicate("R46", *_ALL)
def conforms_to_standard(rec: Rec, idx: Index, v: Verdict) -> None:
    since = _effective()
    if since is not None and rec.created_at >= since:
        return  # validated by this very standard at upload
    verdict = validator_for(rec.dataset).check(rec.data, 0)
    for issue in verdict.errors[:10]:
        v.violation(issue.field, issue.code, issue.msg)


@predicate("R47", "outpatient")
def one_case_per_visit(rec: Rec, idx: Index, v: Verdict) -> None:
    for other in idx.visit(rec.institution_id, rec["bussID"], "outpatient"):
        if other.key != rec.key:
            v.violation(
                "caseNo", other.key, f"复诊业务号 {rec['bussID']} 另有病历 {other.key}", other
            )
