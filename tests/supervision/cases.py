"""One mutation of the sample world per rule: what to break, and the finding that must follow.

World facts used below (seed 4, 6 objects, see ``builders.world``): prescription 0 (RX…000000)
belongs to follow-up visit FZ20250613000000 (outpatient 0), issued by doctor 0 and reviewed by
pharmacist doctor 1, paid by payment 0; its items are prescription_item 0 and 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

World = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    rule: str
    mutate: Callable[[World], None]
    dataset: str  # the evaluated record carrying the finding
    key: Callable[[World], str]  # its business key
    field: str  # a field named in the evidence
    severity: str = "violation"
    citation: str = ""  # a piece of the rule's citation
    partners: bool = True  # register the telemedicine partner institutions (R42)
    late: dict[str, timedelta] = field(default_factory=dict)  # business key → upload delay
    # (dataset, index, changes) applied to the stored record after upload: for what today's
    # validator already rejects, as if it had been accepted under an earlier standard version
    tamper: tuple[str, int | Callable[[World], int], dict[str, Any]] | None = None
    received: datetime | None = None  # with ``tamper``: first received then (Beijing time)


def rx0(w: World) -> str:
    return str(w["prescription"][0]["recipeID"])


def op0(w: World) -> str:
    return str(w["outpatient"][0]["caseNo"])


def _rx0_key() -> str:
    """The business key of the first prescription of the test world (R45's late upload)."""
    from tests.supervision.builders import world

    return rx0(world())


def _five_day_validity(w: World) -> None:
    """A prescription valid for 5 days, its dates agreeing (数据标准 V1.1 period rule)."""
    rx = w["prescription"][0]
    start = date.fromisoformat(str(rx["startDate"]))
    rx.update(effectivePeriod=5, endDate=(start + timedelta(days=4)).isoformat())


def _set(ds: str, i: int, **changes: Any) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        w[ds][i].update(changes)

    return mutate


def _all(*steps: Callable[[World], None]) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        for s in steps:
            s(w)

    return mutate


def _doctor_index(w: World, cert: str) -> int:
    return next(i for i, d in enumerate(w["doctor"]) if d["doctorCertID"] == cert)


def _doctor_of_rx0(**changes: Any) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        w["doctor"][_doctor_index(w, w["prescription"][0]["doctorCertID"])].update(changes)

    return mutate


def _reviewer_of_rx0(**changes: Any) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        w["doctor"][_doctor_index(w, w["prescription"][0]["auditDoctorCertID"])].update(changes)

    return mutate


def _patient_of_rx0(**changes: Any) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        pid = w["prescription"][0]["patientId"]
        next(p for p in w["patient"] if p["patientId"] == pid).update(changes)

    return mutate


def _patient_index_of_rx0(w: World) -> int:
    pid = w["prescription"][0]["patientId"]
    return next(i for i, p in enumerate(w["patient"]) if p["patientId"] == pid)


#: The patient of prescription 0 (issued 2025-06-13) made four years old. The test world has no
#: paediatrician, so the generator gives it no child under six (R12); a child's records agree
#: with the ID number, so the birthday is changed behind the validator's back.
_CHILD_OF_RX0 = ("patient", _patient_index_of_rx0, {"birthday": "2021-03-01"})


def _no_consent_form(w: World) -> None:
    for a in w["agreement"]:
        if a["protocolType"] == "3":
            a["status"] = "0"


def _prescribe_from_consult(w: World) -> None:
    consult = w["consult"][0]
    rx = next(r for r in w["prescription"] if r["doctorCertID"] == consult["doctorCertID"])
    rx["bussID"] = consult["bussID"]
    for p in w["payment"]:
        if p.get("recipeID") == rx["recipeID"]:
            p["bussID"] = consult["bussID"]


def _consult_rx_key(w: World) -> str:
    consult = w["consult"][0]
    return str(next(r for r in w["prescription"] if r["bussID"] == consult["bussID"])["recipeID"])


def _pay_before_review(w: World) -> None:
    rx = w["prescription"][0]
    pay = next(p for p in w["payment"] if p.get("recipeID") == rx["recipeID"])
    checked = datetime.fromisoformat(rx["checkDate"])
    pay["payTime"] = (checked - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")


def _dispense_before_prescribing(w: World) -> None:
    rx = w["prescription"][0]
    issued = datetime.fromisoformat(rx["datein"])
    rx["verificationTime"] = (issued - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")


def _terminated_before_prescribing(w: World) -> None:
    rx, op = w["prescription"][0], w["outpatient"][0]
    issued = datetime.fromisoformat(rx["datein"])
    op.update(
        terminateFlag="1",
        terminateReason="病情变化，建议线下就诊",
        visitEndTime=(issued - timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S"),
    )


def _sample_before_order(w: World) -> None:
    lis = w["lis"][0]
    order = next(i for i in w["inspection"] if i["applyId"] == lis["applyId"])
    applied = datetime.fromisoformat(order["applyTime"])
    lis["samplingTime"] = (applied - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S")


def _appraise_before_visit(w: World) -> None:
    a = w["appraise"][0]
    op = next(o for o in w["outpatient"] if o["bussID"] == a["bussID"])
    started = datetime.fromisoformat(op["visitDate"])
    a["evaluationTime"] = (started - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S")


def _duplicate_case(w: World) -> None:
    dup = dict(w["outpatient"][0], caseNo="BL-DUPLICATE-0001")
    w["outpatient"].append(dup)


def _drop_patient_of_rx0(w: World) -> None:
    pid = w["prescription"][0]["patientId"]
    w["patient"] = [p for p in w["patient"] if p["patientId"] != pid]


def _independent_not_verified(w: World) -> None:
    org = w["organization"][0]
    rely = {k: org[k] for k in (
        "organName", "licenseName", "licenseNo", "licenseEndDate", "areaCode", "categoryId",
        "levelId", "grade", "foundDate", "address", "legalRepresentative", "legalPhone",
        "contactName", "contactPhone",
    )}  # fmt: skip
    org.update(
        internetHospitalType="2",
        updateTime="2024-03-01 09:00:00",
        approvalDate="2023-04-20",
        relyOrgan={**rely, "organID": "12130102320107536B"},
    )


def _six_items(w: World) -> None:
    w["prescription"][0]["itemCount"] = 6


CASES: list[Case] = [
    Case("R01", _set("organization", 0, licenseEndDate="2025-06-10"), "prescription", rx0,
         "licenseEndDate", citation="《互联网诊疗管理办法（试行）》"),
    Case("R02", _independent_not_verified,
         "organization", lambda w: str(w["organization"][0]["organID"]), "updateTime", "risk",
         "《互联网诊疗监管细则（试行）》"),
    Case("R03", _doctor_of_rx0(doctorYears=2, doctorWorkDate="2024-01-02"), "prescription", rx0,
         "doctorWorkDate", citation="第二十五条"),
    Case("R04", _doctor_of_rx0(workStatus="3"), "prescription", rx0, "workStatus",
         citation="第十三条"),
    Case("R05", _doctor_of_rx0(firstWorkUnitId="12130102320107536B", multiSiteFlag="0"),
         "prescription", rx0, "multiSiteFlag", citation="第十五条"),
    Case("R06", _set("prescription", 0, subjectCode="05", subjectName="妇产科"), "prescription",
         rx0, "subjectCode", "risk", "执业范围"),
    Case("R07", _doctor_of_rx0(policyEndDate="2025-06-05"), "prescription", rx0, "policyEndDate",
         "risk", "《互联网医院管理办法（试行）》"),
    Case("R08", _set("organization", 0, securityLevel="2"), "organization",
         lambda w: str(w["organization"][0]["organID"]), "securityLevel", "risk", "第十三条"),
    Case("R09", _reviewer_of_rx0(titleCode="245", titleName="药士"), "prescription", rx0,
         "titleCode", citation="《医疗机构处方审核规范》"),
    Case("R10", _patient_of_rx0(realNameFlag="0"), "patient",
         lambda w: str(w["prescription"][0]["patientId"]), "realNameFlag", citation="GB 11643"),
    # Data Standard V1.1 rejects an age that disagrees with the ID number at upload (age_mismatch):
    # R11 now finds it only in records accepted under V1.0.
    Case("R11", lambda w: None, "prescription", rx0, "age", "risk", "第六条",
         tamper=("prescription", 0, {"age": 30})),
    Case("R12", lambda w: None, "prescription", rx0, "guardianName", citation="第十九条",
         tamper=_CHILD_OF_RX0),
    Case("R13", _set("outpatient", 0, visitType="0"), "outpatient", op0, "recipeID",
         citation="第十六条"),
    Case("R14", lambda w: None, "outpatient", op0, "originalDiagnosis", citation="第十八条",
         tamper=("outpatient", 0, {"originalDiagnosis": None, "originalDiagnosisCode": None})),
    Case("R15", _set("outpatient", 0, originalDiagnosisCode="I10.x00x002", originalDiagnosis="高血压"),
         "prescription", rx0, "icdCode", "risk", "第十九条"),
    Case("R16", _terminated_before_prescribing, "prescription", rx0, "datein", "risk",
         "第十九条"),
    Case("R17", _no_consent_form, "outpatient", op0, "visitDate", "risk", "知情同意"),
    Case("R18", _prescribe_from_consult, "prescription", _consult_rx_key, "bussID",
         citation="第二条"),
    Case("R19", _set("prescription_item", 0, specialDrugClass="1"), "prescription", rx0,
         "specialDrugClass", citation="第十九条"),
    Case("R20", _set("prescription", 0, doctorCertID="130302197712076637"), "prescription", rx0,
         "doctorCertID", citation="第二十一条"),
    Case("R21", _set("prescription", 0, doctorSign=None, caCertSN=None, signTime=None),
         "prescription", rx0, "doctorSign", citation="第十八条"),
    Case("R22", _pay_before_review, "prescription", rx0, "payTime",
         citation="《医疗机构处方审核规范》"),
    Case("R23", _dispense_before_prescribing, "prescription", rx0, "verificationTime",
         citation="第二十一条"),
    Case("R24", lambda w: w["prescription"][0].update(
        auditDoctorCertID=w["prescription"][0]["doctorCertID"]),
         "prescription", rx0, "auditDoctorCertID", citation="《医疗机构处方审核规范》"),
    Case("R25", _five_day_validity, "prescription", rx0, "effectivePeriod", citation="第十八条"),
    Case("R26", lambda w: None, "prescription", rx0, "useDays", citation="第十九条",
         tamper=("prescription_item", 0, {"useDays": 14, "overLimitReason": None})),
    Case("R27", _all(_set("prescription", 0, longTermFlag="1"),
                     _set("prescription_item", 0, useDays=100, overLimitReason="长期处方")),
         "prescription", rx0, "useDays", citation="《长期处方管理规范（试行）》"),
    Case("R28", _six_items, "prescription", rx0, "itemCount", citation="第六条"),
    Case("R29", _set("prescription_item", 0, antibioticLevel="3"), "prescription", rx0,
         "antibioticLevel", citation="第二十八条"),
    Case("R30", lambda w: None, "prescription", rx0, "icdCode", citation="第六条",
         tamper=("prescription", 0, {"icdCode": "Z99.999"})),
    Case("R31", _set("prescription_item", 0, countrydrcode=None), "prescription", rx0,
         "countrydrcode", "risk", "2.1.1"),
    Case("R33", lambda w: None, "prescription", rx0, "rationalDrug", citation="合理用药",
         tamper=("prescription", 0, {"rationalFlag": "1", "rationalDrug": None})),
    Case("R34", _set("prescription", 0, totalFee=999.0), "prescription", rx0, "totalFee",
         citation="数据标准"),
    Case("R35", _set("outpatient", 0, diagnosisCode=None, diagnosisName=None,
                     diagNoFillReason="待检查结果回报后明确"),
         "prescription", rx0, "diagnosisName", citation="第十七条"),
    Case("R36", _set("outpatient", 0, processDataURL=None), "outpatient", op0, "processDataURL",
         "risk", "第二十一条"),
    Case("R37", _sample_before_order, "lis", lambda w: str(w["lis"][0]["reportId"]),
         "samplingTime", citation="第二十四条"),
    Case("R38", _set("prescription", 0, deliveryType=None), "prescription", rx0, "deliveryType",
         "risk", "药品配送"),
    Case("R40", _set("telemedicine", 0, consentFlag="0"), "telemedicine",
         lambda w: str(w["telemedicine"][0]["bussID"]), "consentFlag", citation="知情同意"),
    Case("R41", lambda w: None, "telemedicine", lambda w: str(w["telemedicine"][0]["bussID"]),
         "opinion", citation="受邀方", tamper=("telemedicine", 0, {"opinion": None})),
    Case("R42", lambda w: None, "telemedicine", lambda w: str(w["telemedicine"][0]["bussID"]),
         "invitedOrgCode", "risk", "基本要求", partners=False),
    Case("R43", _drop_patient_of_rx0, "prescription", rx0, "patientId", citation="基础数据"),
    Case("R44", _appraise_before_visit, "appraise", lambda w: str(w["appraise"][0]["evaluateID"]),
         "evaluationTime", citation="2.4.1"),
    Case("R45", lambda w: None, "prescription", rx0, "updateTime", "risk", "数据推送机制",
         late={_rx0_key(): timedelta(days=3)}),
    Case("R46", lambda w: None, "patient", lambda w: str(w["patient"][0]["patientId"]), "sex",
         citation="数据标准", tamper=("patient", 0, {"sex": "7"}), received=datetime(2024, 12, 1)),
    Case("R47", _duplicate_case, "outpatient", op0, "caseNo", citation="业务主键"),
]  # fmt: skip
