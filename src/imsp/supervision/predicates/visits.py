"""D2 patient identity and D3 visit legality: R10–R18."""

from __future__ import annotations

from imsp.standard import checks
from imsp.supervision.facts import Index, Rec, Verdict, as_number
from imsp.supervision.predicates.base import full_years, predicate

RESIDENT_ID = "01"
_PAEDIATRIC = (
    "07",
    "08",
    "09",
)  # 儿科、小儿外科、儿童保健科 (诊疗科目, C8)  # 居民身份证 (WS 364.3 CV02.01.101)


@predicate("R10", "patient")
def real_name(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["realNameFlag"] != "1":
        v.violation("realNameFlag", rec["realNameFlag"], "患者未实名")
    if rec["patientCertType"] != RESIDENT_ID:
        return
    cert = rec["patientCertID"].upper()
    if len(cert) != 18 or not cert[:17].isdigit():
        v.violation("patientCertID", "（已隐藏）", "居民身份证号码应为 18 位")
        return
    if checks.check_digit_gb11643(cert[:17]) != cert[17]:
        v.violation("patientCertID", "（已隐藏）", "居民身份证号码校验码错误（GB 11643）")
    born = rec.date_of("birthday")
    if born is not None and cert[6:14] != born.strftime("%Y%m%d"):
        v.violation("birthday", rec["birthday"], "出生日期与身份证号码不一致")
    sex = "1" if int(cert[16]) % 2 == 1 else "2"
    if rec["sex"] in ("1", "2") and rec["sex"] != sex:
        v.violation("sex", rec["sex"], "性别与身份证号码不一致")


def _patient(rec: Rec, idx: Index, v: Verdict) -> Rec | None:
    pid = rec["patientId"]
    if not pid:
        return None
    p = idx.get(rec.institution_id, "patient", pid)
    if p is None:
        v.lacks("patient", "patientId", pid)
        return None
    return p


@predicate("R11", "prescription")
def actual_age(rec: Rec, idx: Index, v: Verdict) -> None:
    p = _patient(rec, idx, v)
    born = p.date_of("birthday") if p is not None else None
    day = rec.day
    age = as_number(rec.raw("age"))
    if p is None or born is None or day is None or age is None:
        return
    actual = full_years(born, day)
    if int(age) != actual:
        v.involve(p)
        v.risk(
            "age",
            rec.raw("age"),
            f"年龄应为实足年龄 {actual} 岁（出生日期 {born}，开方日期 {day}）",
        )


@predicate("R12", "prescription")
def child_guardian(rec: Rec, idx: Index, v: Verdict) -> None:
    p = idx.get(rec.institution_id, "patient", rec["patientId"])
    born = p.date_of("birthday") if p is not None else None
    day = rec.day
    if born is not None and day is not None:
        age: float | None = full_years(born, day)
        assert p is not None
        v.involve(p)
    else:
        age = as_number(rec.raw("age"))
    if age is None or age >= 6:
        return
    if not rec["guardianName"]:
        v.violation("guardianName", None, f"为 {int(age)} 岁儿童开具处方，未填写监护人")
    if not rec["guardianCertID"]:
        v.violation("guardianCertID", None, f"为 {int(age)} 岁儿童开具处方，未填写监护人证件号码")
    if not rec["subjectCode"].startswith(_PAEDIATRIC):
        v.risk("subjectCode", rec["subjectCode"], "为 6 岁以下儿童开具处方的科目不是儿科类科目")


@predicate("R13", "outpatient")
def first_visit(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["visitType"] != "0":
        return
    inst, buss = rec.institution_id, rec["bussID"]
    for rx in idx.visit(inst, buss, "prescription"):
        v.violation("recipeID", rx.key, "首诊患者在线开具了处方", rx)
    for ins in idx.visit(inst, buss, "inspection"):
        v.violation("applyId", ins.key, "首诊患者在线开具了检查检验", ins)
    if rec["terminateFlag"] != "1" or not rec["terminateReason"]:
        v.violation("terminateFlag", rec["terminateFlag"], "首诊未终止在线诊疗或未填写终止原因")


@predicate("R14", "outpatient")
def follow_up_basis(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["visitType"] != "1":
        return
    if not rec["originalDiagnosis"] and not rec["originalDiagnosisCode"]:
        v.violation("originalDiagnosis", None, "复诊未填写原诊断")
    if not rec["firstDiagnosisMaterial"]:
        v.risk("firstDiagnosisMaterial", None, "复诊未提供首诊诊断材料")


def _outpatient(rec: Rec, idx: Index) -> Rec | None:
    found = idx.visit(rec.institution_id, rec["bussID"], "outpatient")
    return found[0] if found else None


@predicate("R15", "prescription")
def same_diagnosis(rec: Rec, idx: Index, v: Verdict) -> None:
    op = _outpatient(rec, idx)
    if op is None or not op["originalDiagnosisCode"]:
        return
    original = op["originalDiagnosisCode"]
    categories = {c.strip()[:3] for c in rec["icdCode"].split("|") if c.strip()}
    if original[:3] not in categories:
        v.involve(op)
        v.risk("icdCode", rec["icdCode"], f"处方诊断与复诊原诊断 {original} 不属于同一疾病类目")


@predicate("R16", "prescription")
def after_termination(rec: Rec, idx: Index, v: Verdict) -> None:
    op = _outpatient(rec, idx)
    if op is None or op["terminateFlag"] != "1":
        return
    ended, issued = op.time_of("visitEndTime"), rec.time_of("datein")
    if ended is not None and issued is not None and issued > ended:
        v.involve(op)
        v.risk("datein", rec["datein"], f"在线诊疗已于 {op['visitEndTime']} 终止，其后仍开具处方")


@predicate("R17", "outpatient")
def informed_consent(rec: Rec, idx: Index, v: Verdict) -> None:
    day = rec.day
    if day is None:
        return
    for a in idx.agreements.get(rec.institution_id, ()):  # consent forms in force only
        start = a.date_of("effectiveDate") or a.date_of("releaseDate")
        end = a.date_of("expireDate")
        if start is not None and start <= day and (end is None or end >= day):
            return
    v.risk("visitDate", rec["visitDate"], "就诊当日机构无生效的互联网诊疗知情同意书")


@predicate("R18", "prescription")
def from_follow_up(rec: Rec, idx: Index, v: Verdict) -> None:
    op = _outpatient(rec, idx)
    if op is not None:
        if rec["bussSource"] == "1":
            v.involve(op)
            v.risk("bussSource", "1", "处方来源标为咨询")
        return
    consult = idx.get(rec.institution_id, "consult", rec["bussID"])
    if consult is not None:
        v.violation("bussID", rec["bussID"], "处方来源于在线咨询，无复诊病历", consult)
        return
    v.lacks("outpatient", "bussID", rec["bussID"])
