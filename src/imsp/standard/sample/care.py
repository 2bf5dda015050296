"""Facts of the clinical services: registrations, visits, prescriptions and their items, tests
and reports, telemedicine, consultations, payments and appraisals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

from imsp.standard.sample import vocab
from imsp.standard.sample.blocks import (
    Facts,
    actor,
    business_patient,
    clinician_block,
    diagnosis,
    header,
    patient_block,
    url,
)
from imsp.standard.sample.business import Business
from imsp.standard.sample.events import signature, ymd


def register(b: Business, i: int) -> Facts:
    w = b.w
    r = b.register(i)
    rng = w.rng("register-facts", i)
    end = r.slot + timedelta(minutes=30)
    booker = r.patient.guardian or r.patient.person
    cancelled = r.status == "2"
    return {
        **business_patient(b, r.patient, r.slot.date()),
        **clinician_block(w, r.doctor),
        "bussID": r.buss_id,
        "visitNo": r.visit.buss_id if r.visit else None,
        "registerType": "4",
        "serviceMode": r.mode,
        "doctorTitle": r.doctor.title,
        "appointDate": r.booked,
        "appointUserName": booker.name,
        "appointUserMobile": booker.mobile,
        "workDate": f"{r.slot:%Y-%m-%d %H:%M}-{end:%H:%M}",
        "startTime": r.slot,
        "endTime": end,
        "orderNo": r.order_no,
        "price": r.price,
        "paymentChannel": rng.choice(("1", "2", "2")),
        "tradeNo": f"4200002{rng.randrange(10**20):020d}"[:28],
        "registerStatus": r.status,
        "cancelTime": r.cancelled,
        "cancelReason": "患者行程变更，主动取消" if cancelled else None,
        "address": f"{w.org.internet_name}（线上{w.name_of('service_mode', r.mode)}）",
    }


def outpatient(b: Business, i: int) -> Facts:
    w = b.w
    v = b.visit(i)
    p = v.patient
    profile = p.profile
    rng = w.rng("outpatient-facts", i)
    codes, names = diagnosis(b, v)
    tcm = v.tcm and not v.first and profile.tcm[0] != ""
    partner, _ = w.partner(rng)
    return {
        **business_patient(b, p, v.start.date()),
        **clinician_block(w, v.doctor),
        "caseNo": v.case_no,
        "bussID": v.buss_id,
        "visitType": "0" if v.first else "1",
        "serviceMode": v.mode,
        "visitDate": v.start,
        "visitEndTime": v.end,
        "chiefComplaint": ("近 3 天出现" + profile.complaint.split("，")[0].format(**v.text) + "，首次就诊") if v.first else profile.complaint.format(**v.text),
        "presentHistory": profile.history.format(**v.text),
        "pastHistory": "否认手术、外伤史",
        "allergyHistory": p.allergy or "否认药物、食物过敏史",
        "physicalExam": profile.physical.format(**v.text),
        "assistResult": None,
        "originalDiagnosisCode": None if v.first else codes,
        "originalDiagnosis": None if v.first else names,
        "originalOrgName": None if v.first else partner.name,
        "firstDiagnosisMaterial": None if v.first else url(w, "files/att", f"{ymd(v.start)}/{i:06d}.pdf"),
        "diagCodeType": "1",
        "diagnosisCode": None if v.first else codes,
        "diagnosisName": None if v.first else names,
        "tcmDiseaseCode": profile.tcm[0] if tcm else None,
        "tcmDiseaseName": w.name_of("icd10_tcm", profile.tcm[0]) if tcm else None,
        "tcmSyndromeCode": profile.tcm[1] if tcm else None,
        "tcmSyndromeName": w.name_of("icd10_tcm", profile.tcm[1]) if tcm else None,
        "diagnosticOpinion": "建议至实体医院门诊就诊，完善检查后明确诊断。" if v.first else profile.opinion.format(**v.text),
        "diagNoFillReason": "首诊患者，无法在线明确诊断，已建议线下就诊" if v.first else None,
        "terminateFlag": "1" if v.first else "0",
        "terminateReason": "首诊患者不得开展互联网诊疗，已终止并引导线下就诊" if v.first else None,
        "processDataURL": url(w, "api/video", v.buss_id),
        "doctorSign": signature(rng),
        "signTime": v.end + timedelta(seconds=rng.randrange(20, 120)),
    }  # fmt: skip


def prescription(b: Business, i: int) -> Facts:
    w = b.w
    x = b.rx(i)
    v = x.visit
    p = v.patient
    rng = w.rng("prescription-facts", i)
    codes, names = diagnosis(b, v)
    ph = x.pharmacist
    insured = p.pay_type in ("01", "02")
    day = x.time.date()
    return {
        **business_patient(b, p, day),
        **clinician_block(w, v.doctor),
        "recipeID": x.recipe_id,
        "recipeUniqueID": x.unique_id,
        "bussID": v.buss_id,
        "bussSource": "4",
        "doctorTitle": v.doctor.title,
        "checkResult": "1" if ph else None,
        "auditDoctorId": ph.staff_id if ph else None,
        "auditDoctorCertID": ph.person.cert_id if ph else None,
        "auditDoctor": ph.person.name if ph else None,
        "checkDate": x.checked,
        "auditDoctorSign": signature(rng) if ph else None,
        "costType": "2" if insured else "1",
        "cardType": p.card[0],
        "cardNo": p.card[1],
        "allergyInfo": p.allergy or None,
        "diseasesHistory": p.profile.history.format(**v.text),
        "diagCodeType": "1",
        "icdCode": codes,
        "icdName": names,
        "recipeType": x.recipe_type,
        "recipeCategory": "3" if p.person.age(day) < 14 else "1",
        "packetsNum": x.packets,
        "longTermFlag": "1" if x.long_term else "0",
        "itemCount": len(x.items),
        "datein": x.time,
        "effectivePeriod": x.period,
        "startDate": day,
        "endDate": day + timedelta(days=x.period - 1),
        "totalFee": x.total,
        "isPay": "1",
        "recipeStatus": "1",
        "verificationStatus": "1",
        "recipeRecordNo": f"YB{w.org.place.area[:4]}{ymd(day)}{i:06d}" if insured else None,
        "rationalFlag": "1",
        "rationalDrug": "未发现配伍禁忌、重复用药及超剂量用药",
        "doctorSign": x.sign,
        "caCertSN": x.ca_sn,
        "signTime": x.time + timedelta(seconds=rng.randrange(3, 30)),
        "deliveryType": x.delivery,
        "verificationTime": x.dispatched,
        "deliveryFirm": x.firm or None,
        "deliveryPeople": x.courier,
    }


def prescription_items(b: Business, i: int) -> Iterator[Facts]:
    w = b.w
    x = b.rx(i)
    for item in x.items:
        d = item.drug
        herb = d.kind == "herb"
        yield {
            **header(w),
            "recipeID": x.recipe_id,
            "recipeDetailId": item.detail_id,
            "datein": x.time,
            "drcode": d.code,
            "countrydrcode": d.national_code,
            "drname": d.name,
            "tradeName": d.trade or None,
            "drmodel": d.spec,
            "dosageForm": d.form or None,
            "pack": None if herb else d.pack,
            "packUnit": None if herb else d.pack_unit,
            "drugManf": d.maker,
            "admission": d.route,
            "frequency": d.freq,
            "dosage": item.dosage,
            "drunit": d.dose_unit,
            "dosageTotal": item.total,
            "doseUnit": "g" if herb else d.pack_unit,
            "useDays": item.days,
            "overLimitReason": ("长期处方，慢性病病情稳定" if x.long_term else "慢性病长期用药，病情稳定") if item.days > 7 else None,
            "specialDrugClass": "0",
            "antibioticLevel": d.antibiotic,
            "otcFlag": "1" if d.otc else "0",
            "price": d.price,
            "totalPrice": item.amount,
            "tcmDecoction": d.decoction or None,
            "licenseNumber": item.batch,
            "remark": "每日 1 剂，水煎分 2 次温服" if herb else d.remark or None,
        }  # fmt: skip


def inspection(b: Business, i: int) -> Facts:
    w = b.w
    s = b.inspection(i)
    v = s.visit
    codes, names = diagnosis(b, v)
    items: list[Facts] = []
    for n, pnl in enumerate(s.panels, 1):
        items.append({"itemNum": str(n), "applyItemCode": pnl.apply_code, "applyItemName": pnl.name,
                      "examItemCode": pnl.loinc, "examItemName": pnl.name, "specimenType": pnl.specimen,
                      "examType": None, "bodyPart": None, "orderNo": f"YZ{ymd(s.time)}{i:05d}{n}",
                      "price": pnl.price, "quantity": 1})  # fmt: skip
    for n, e in enumerate(s.exams, 1):
        items.append({"itemNum": str(n), "applyItemCode": e.apply_code, "applyItemName": e.name,
                      "examItemCode": e.code, "examItemName": e.name, "specimenType": None,
                      "examType": e.exam_type, "bodyPart": e.body_part, "orderNo": f"YZ{ymd(s.time)}{i:05d}{n}",
                      "price": e.price, "quantity": 1})  # fmt: skip
    what = "检验" if s.lab else "检查"
    return {
        **business_patient(b, v.patient, s.time.date()),
        **clinician_block(w, v.doctor),
        "applyId": s.apply_id,
        "applyType": "1" if s.lab else "2",
        "applyName": "+".join(x["applyItemName"] for x in items),
        "bussID": v.buss_id,
        "outpatientNo": f"MZ{ymd(v.start)}{v.index:06d}",
        "patientType": "1",
        "diagCodeType": "1",
        "diagnosisCode": codes,
        "diagnosisName": names,
        "symptom": v.patient.profile.complaint.split("，")[0].format(**v.text),
        "purpose": f"复诊{what}，评估病情及用药安全性",
        "specialExamFlag": "0",
        "applyTime": s.time,
        "executeOrgCode": w.org.code,
        "executeOrgName": w.org.name,
        "cancelFlag": "0",
        "totalFee": s.total,
        "payFlag": "1",
        "items": items,
    }


def telemedicine(b: Business, i: int) -> Facts:
    w = b.w
    t = b.tele(i)
    d = t.doctor
    rng = w.rng("telemedicine-facts", i)
    done = t.status == "2"
    subject = d.dept.spec.subject
    profile = t.patient.profile
    codes = profile.icd
    tele_exam = t.tele_type in ("3", "4")
    return {
        **business_patient(b, t.patient, t.applied.date()),
        "bussID": t.buss_id,
        "teleType": t.tele_type,
        "urgency": "1",
        "requestMode": "1",
        "applyOrgCode": w.org.code,
        "applyOrgName": w.org.name,
        "applySubjectCode": subject,
        "applySubjectName": w.name_of("subject", subject),
        "applyDeptCode": d.dept.dept_id,
        "applyDeptName": d.dept.name,
        "applyDoctorCertID": d.person.cert_id,
        "applyDoctorName": d.person.name,
        "applyDoctorTitle": d.title,
        "applyDoctorMobile": d.person.mobile,
        "invitedOrgCode": t.partner_code,
        "invitedOrgName": t.partner.name,
        "invitedSubjectCode": subject,
        "invitedSubjectName": w.name_of("subject", subject),
        "invitedDeptCode": d.dept.dept_id if done else None,
        "invitedDeptName": d.dept.name if done else None,
        "invitedDoctors": [
            {"doctorCertID": person.cert_id, "doctorName": person.name, "doctorTitle": title, "doctorMobile": person.mobile}
            for person, title in t.invited
        ] if done else None,
        "cardType": t.patient.card[0],
        "cardNo": t.patient.card[1],
        "diagCodeType": "1",
        "diagnosisCode": "|".join(codes),
        "diagnosisName": w.names_of("icd10", codes),
        "diseasesHistory": profile.history.format(**b.visit(i).text | {"years": t.patient.years, "drugs": "、".join(x.name for x in b.regimen(t.patient))}),
        "purpose": {"3": "请上级医院协助阅片诊断", "4": "请上级医院协助心电诊断", "7": "病情需转上级医院进一步诊治"}.get(t.tele_type, "请上级医院专家协助制定治疗方案"),
        "consentFlag": "1",
        "examType": t.exam.exam_type if t.tele_type == "3" else None,
        "examName": t.exam.name if tele_exam else None,
        "bodyPart": t.exam.body_part if t.tele_type == "3" else None,
        "dicomUrl": url(w, "pacs/wado", f"{t.buss_id}.dcm") if t.tele_type == "3" else None,
        "applyTime": t.applied,
        "planTime": t.planned,
        "startTime": t.start,
        "endTime": t.end,
        "status": t.status,
        "opinion": "同意目前诊断，建议维持现治疗方案，两周后复查相关指标并随访" if done else None,
        "reportTime": t.reported,
        "reportSign": signature(rng) if done else None,
        "fee": t.fee,
        "payFlag": "1",
        "paymentChannel": rng.choice(("1", "2", "2")),
        "transferMode": "1" if t.tele_type == "7" else None,
        "transferType": "1" if t.tele_type == "7" else None,
        "sessionId": f"RTC-{ymd(t.applied)}-{i:06d}" if done else None,
        "processDataURL": url(w, "api/video", t.buss_id) if done else None,
        "cancelTime": t.cancelled,
        "cancelReason": ("受邀专家本周出差，建议改约" if t.status == "8" else "患者病情变化，改为线下就诊") if t.cancelled else None,
    }  # fmt: skip


def consult(b: Business, i: int) -> Facts:
    w = b.w
    c = b.consult(i)
    refusal = c.refusal
    return {
        **business_patient(b, c.patient, c.applied.date()),
        **clinician_block(w, c.doctor),
        "bussID": c.buss_id,
        "consultationType": c.mode,
        "consultationAttribute": c.attribute,
        "consultationClassify": "02" if c.attribute == "4" else None,
        "applyDate": c.applied,
        "answerFlag": "1" if c.answered else "0",
        "startDate": c.start,
        "endDate": c.end,
        "consultationPrice": c.price,
        "paymentChannel": c.channel if c.price > 0 else None,
        "content": c.question,
        "answerContent": c.answer or None,
        "refuseType": refusal[0] if refusal else None,
        "refuseTime": refusal[1] if refusal else None,
        "refuseReason": refusal[2] if refusal else None,
        "processDataURL": url(w, "trace", c.buss_id),
    }


#: Every REFUND_EVERY-th payment is a refund (退费) of the payment before it: about 4 % of the
#: payment records, as cancelled registrations and returned prescriptions are refunded.
REFUND_EVERY = 25


def payment(b: Business, i: int) -> Facts:
    w = b.w
    own = b.payment(i)
    refund = i % REFUND_EVERY == REFUND_EVERY - 1
    # A refund repeats the original payment's business, patient and fee lines (amounts positive,
    # direction in chargeRefundCode) one day later, with its own payId pointing at the original.
    p = b.payment(i - 1) if refund else own
    rng = w.rng("payment-facts", i)
    total = p.total
    pay_time = p.time + timedelta(days=1) if refund else p.time
    trade = {
        "1": f"{p.time:%Y%m%d}22001{rng.randrange(10**15):015d}",
        "2": f"42000{rng.randrange(10**5):05d}{p.time:%Y%m%d}{rng.randrange(10**10):010d}",
        "3": f"{rng.randrange(10**20):020d}",
        "4": f"YBZF{p.time:%Y%m%d%H%M%S}{rng.randrange(10**6):06d}",
    }.get(p.channel)
    return {
        **header(w),
        **patient_block(p.patient, p.time.date()),
        "payId": own.pay_id,
        "businessType": p.business_type,
        "bussID": p.buss_id,
        "recipeID": p.recipe_id or None,
        "applyId": p.apply_id or None,
        "deptID": p.doctor.dept.dept_id,
        "deptName": p.doctor.dept.name,
        "chargeRefundCode": "2" if refund else "1",
        "originalPayId": p.pay_id if refund else None,
        "payTypeCode": p.patient.pay_type,
        "paymentChannel": p.channel,
        "tradeNo": trade,
        "orderNo": f"IH{pay_time:%Y%m%d%H%M%S}{i:04d}"[:64],
        "totalFee": total,
        "individualPay": total - p.fund,
        "fundPay": p.fund,
        "otherPay": Decimal(0),
        "payTime": pay_time,
        "items": [
            {"projDeno": str(n), "projCode": f.code, "projName": f.name, "feeCategory": f.category,
             "financeCategory": None, "ifOutMedIns": "0", "unitPrice": f.unit_price,
             "quantity": f.quantity, "amount": f.amount}
            for n, f in enumerate(p.fees, 1)
        ],
    }  # fmt: skip


def appraise(b: Business, i: int) -> Facts:
    w = b.w
    a = b.appraisal(i)
    rng = w.rng("appraise-facts", i)
    replied = rng.random() < 0.4
    name = a.patient.person.name
    return {
        **header(w),
        **clinician_block(w, a.doctor),
        "evaluateID": a.evaluate_id,
        "bussID": a.buss_id,
        "businessType": a.business_type,
        "patientId": a.patient.patient_id,
        "satisfaction": a.satisfaction,
        "scoring": a.score,
        "evaluation": rng.choice(vocab.APPRAISALS[a.satisfaction]),
        "complaints": rng.choice(vocab.COMPLAINTS) if a.satisfaction in "1234" else None,
        "evaluationPeople": name[0] + "*" * (len(name) - 1),
        "evaluationTime": a.time,
        "replyContent": rng.choice(vocab.REPLIES) if replied else None,
        "replyTime": a.time + timedelta(hours=rng.randrange(1, 48)) if replied else None,
    }


def lis(b: Business, i: int) -> Facts:
    w = b.w
    r = b.lab_report(i)
    v = r.inspection.visit
    d = v.doctor
    _, names = diagnosis(b, v)
    tester, tester_id = actor(r.tester)
    auditor, auditor_id = actor(r.auditor)
    rng = w.rng("lis-facts", i)
    abnormal = [
        f"{a.name}{'偏高' if flag == 'H' else '偏低'}" for a, _, flag, _ in r.results if flag
    ]
    return {
        **header(w),
        **patient_block(v.patient, r.sampled.date()),
        "reportId": r.report_id,
        "applyId": r.inspection.apply_id,
        "bussID": v.buss_id,
        "patientType": "1",
        "reportName": r.panel.name,
        "reportType": "2",
        "applyDoctorName": d.person.name,
        "applyDoctorCertID": d.person.cert_id,
        "applyDeptID": d.dept.dept_id,
        "applyDeptName": d.dept.name,
        "diagnosisName": names.replace("|", "，"),
        "specimenType": r.panel.specimen,
        "specimenNo": r.specimen_no,
        "samplingTime": r.sampled,
        "receiveTime": r.received,
        "testTime": r.tested,
        "testerName": tester,
        "testerCertID": tester_id,
        "reporterName": tester,
        "reporterCertID": tester_id,
        "reportTime": r.reported,
        "auditorName": auditor,
        "auditorCertID": auditor_id,
        "auditTime": r.audited,
        "reportOrgCode": w.org.code,
        "reportOrgName": w.org.name,
        "reportComment": ("、".join(abnormal) + "，请结合临床。") if abnormal else "各项结果均在参考范围内。",
        "reportUrl": url(w, "report", r.report_id),
        "caSign": signature(rng),
        "results": [
            {"itemNum": str(n), "itemCode": a.code, "itemName": a.name, "itemEnName": a.abbr,
             "resultValue": value, "unit": a.unit, "referenceRange": shown,
             "abnormalFlag": flag or None, "resultCode": "2" if flag else "1", "criticalFlag": "0",
             "method": r.panel.method, "instrument": r.panel.instrument}
            for n, (a, value, flag, shown) in enumerate(r.results, 1)
        ],
    }  # fmt: skip


def pacs(b: Business, i: int) -> Facts:
    w = b.w
    r = b.imaging_report(i)
    v = r.visit
    d = v.doctor
    e = r.exam
    _, names = diagnosis(b, v)
    reporter, reporter_id = actor(r.reporter)
    auditor, auditor_id = actor(r.auditor)
    rng = w.rng("pacs-facts", i)
    image = e.exam_type not in ("ECG",)
    return {
        **header(w),
        **patient_block(v.patient, r.examined.date()),
        "reportId": r.report_id,
        "applyId": r.inspection.apply_id if r.inspection else None,
        "bussID": v.buss_id,
        "patientType": "1",
        "applyDoctorName": d.person.name,
        "applyDoctorCertID": d.person.cert_id,
        "applyDeptID": d.dept.dept_id,
        "applyDeptName": d.dept.name,
        "diagnosisName": names.replace("|", "，"),
        "examTypeCode": e.exam_type,
        "examTypeName": w.name_of("exam_type", e.exam_type),
        "examItemCode": e.code,
        "examItemName": e.name,
        "bodyPart": e.body_part,
        "examMethod": e.method,
        "largeEquipmentFlag": "1" if e.large else "0",
        "examTime": r.examined,
        "technicianName": r.technician.name,
        "examDoctorName": reporter,
        "findings": e.abnormal_findings if r.abnormal else e.findings,
        "impression": e.abnormal_impression if r.abnormal else e.impression,
        "advice": "建议结合临床，必要时复查。" if r.abnormal else None,
        "resultCode": "2" if r.abnormal else "1",
        "criticalFlag": "0",
        "reporterName": reporter,
        "reporterCertID": reporter_id,
        "reportTime": r.reported,
        "auditorName": auditor,
        "auditorCertID": auditor_id,
        "auditTime": r.audited,
        "reportOrgCode": w.org.code,
        "reportOrgName": w.org.name,
        "studyInstanceUID": r.uid if image else None,
        "imageUrl": url(w, "pacs/viewer", r.report_id) if image else None,
        "reportUrl": url(w, "report", r.report_id),
        "mutualRecognitionFlag": "1" if e.exam_type in ("CT", "MR", "DR") else "0",
        "caSign": signature(rng),
    }
