"""D1 institution and personnel eligibility: R01–R09."""

from __future__ import annotations

from imsp.supervision.facts import Index, Rec, Verdict, as_number
from imsp.supervision.predicates.base import predicate, years_before

_CLINICAL = ("outpatient", "consult", "prescription")


def _doctor(rec: Rec, idx: Index, v: Verdict, fieldname: str = "doctorCertID") -> Rec | None:
    cert = rec[fieldname]
    if not cert:
        return None
    doc = idx.get(rec.institution_id, "doctor", cert)
    if doc is None:
        v.lacks("doctor", fieldname, cert)
        return None
    v.involve(doc)
    return doc


@predicate("R01", "outpatient", "consult", "prescription", "telemedicine", "register", "inspection")
def licence_valid(rec: Rec, idx: Index, v: Verdict) -> None:
    org = idx.organization(rec)
    if org is None:
        v.lacks("organization", "organID", idx.organ_code(rec))
        return
    v.involve(org)
    day = rec.day
    if day is None:
        return
    start, end = org.date_of("licenseStartDate"), org.date_of("licenseEndDate")
    if start is not None and day < start:
        v.violation(
            "licenseStartDate", org["licenseStartDate"],
            f"业务日期 {day} 早于执业许可起始日期 {start}", org,
        )  # fmt: skip
    if end is not None and day > end:
        v.violation(
            "licenseEndDate", org["licenseEndDate"], f"业务日期 {day} 晚于执业许可有效期 {end}", org
        )


@predicate("R02", "organization")
def yearly_verification(rec: Rec, idx: Index, v: Verdict) -> None:
    if rec["internetHospitalType"] != "2":
        return
    dates = [d for d in (rec.date_of("updateTime"), rec.date_of("approvalDate")) if d]
    if not dates:
        return
    last = max(dates)
    if (idx.today - last).days > 365:
        v.risk(
            "updateTime",
            rec["updateTime"],
            f"独立设置的互联网医院最近更新于 {last}，已超过 12 个月未校验",
        )


@predicate("R03", *_CLINICAL)
def three_years(rec: Rec, idx: Index, v: Verdict) -> None:
    doc = _doctor(rec, idx, v)
    if doc is None:
        return
    if not doc["practiceCertNo"]:
        v.violation("practiceCertNo", None, "医师无执业证书编码", doc)
    years = as_number(doc.raw("doctorYears"))
    work = doc.date_of("doctorWorkDate")
    day = rec.day
    if years is not None and years >= 3:
        return
    if work is not None and day is not None and work <= years_before(day, 3):
        return
    v.violation(
        "doctorWorkDate", doc["doctorWorkDate"],
        f"医师独立临床工作不满 3 年（从业年限 {doc['doctorYears'] or '未填'}，业务日期 {day}）", doc,
    )  # fmt: skip


@predicate("R04", "outpatient", "consult", "prescription", "register", "inspection")
def filed_and_on_duty(rec: Rec, idx: Index, v: Verdict) -> None:
    doc = _doctor(rec, idx, v)
    if doc is None:
        return
    if doc["realNameAuthFlag"] != "1":
        v.violation("realNameAuthFlag", doc["realNameAuthFlag"], "医师未完成电子实名认证", doc)
    if doc["workStatus"] != "1":
        v.violation("workStatus", doc["workStatus"], "医师不在岗（停诊或离职）", doc)


@predicate("R05", *_CLINICAL)
def multi_site(rec: Rec, idx: Index, v: Verdict) -> None:
    doc = _doctor(rec, idx, v)
    if doc is None:
        return
    first = doc["firstWorkUnitId"]
    organ = idx.organ_code(rec)
    if not first or first == organ:
        return
    org = idx.organization(rec)
    if org is None:
        v.lacks("organization", "organID", organ)
        return
    rely = org.raw("relyOrgan")
    if isinstance(rely, dict) and rely.get("organID") == first:
        return
    day = rec.day
    start, end = doc.date_of("multiSiteStart"), doc.date_of("multiSiteEnd")
    if doc["multiSiteFlag"] != "1" or start is None:
        v.violation(
            "multiSiteFlag",
            doc["multiSiteFlag"],
            f"第一执业机构为 {first}，未办理多机构执业备案",
            doc,
        )
    elif day is not None and (day < start or (end is not None and day > end)):
        v.violation(
            "multiSiteEnd", doc["multiSiteEnd"],
            f"业务日期 {day} 不在多机构执业备案期限 {start}～{end or '长期'} 内", doc,
        )  # fmt: skip


@predicate("R06", *_CLINICAL)
def subject_approved(rec: Rec, idx: Index, v: Verdict) -> None:
    org = idx.organization(rec)
    if org is None:
        v.lacks("organization", "organID", idx.organ_code(rec))
        return
    code = rec["subjectCode"]
    approved = [s for s in org["subjects"].split("|") if s]
    if code and not any(code == s or code.startswith(s + ".") for s in approved):
        v.involve(org)
        v.risk(
            "subjectCode", code, f"诊疗科目 {code} 不在机构核准的诊疗科目（{org['subjects']}）之内"
        )


@predicate("R07", *_CLINICAL)
def liability_insurance(rec: Rec, idx: Index, v: Verdict) -> None:
    doc = _doctor(rec, idx, v)
    if doc is None:
        return
    if not doc["policyNo"]:
        v.risk("policyNo", None, "医师无医疗责任保险单号", doc)
        return
    day = rec.day
    start, end = doc.date_of("policyStartDate"), doc.date_of("policyEndDate")
    if day is not None and ((start and day < start) or (end and day > end)):
        v.risk(
            "policyEndDate",
            doc["policyEndDate"],
            f"业务日期 {day} 不在保险期 {start}～{end} 内",
            doc,
        )


@predicate("R08", "organization")
def security_level(rec: Rec, idx: Index, v: Verdict) -> None:
    level = as_number(rec.raw("securityLevel"))
    if level is None or level < 3:
        v.risk("securityLevel", rec["securityLevel"], "信息系统等级保护级别低于第三级")


_PHARMACIST_TYPES = frozenset({"31", "32"})
_PHARMACIST_TITLES = frozenset({"241", "242", "243", "244"})


@predicate("R09", "prescription")
def reviewer_qualified(rec: Rec, idx: Index, v: Verdict) -> None:
    doc = _doctor(rec, idx, v, "auditDoctorCertID")
    if doc is None:
        return
    if doc["personType"] not in _PHARMACIST_TYPES:
        v.violation(
            "personType", doc["personType"], "审方人员不是药师（人员类别应为 31 或 32）", doc
        )
    if doc["titleCode"] not in _PHARMACIST_TITLES:
        v.violation("titleCode", doc["titleCode"], "审方药师职称低于药师（应为 241～244）", doc)
    work = doc.date_of("doctorWorkDate")
    checked = rec.time_of("checkDate")
    if work is not None and checked is not None and work > years_before(checked.date(), 3):
        v.risk("doctorWorkDate", doc["doctorWorkDate"], "审方药师从事处方调剂工作不满 3 年", doc)
