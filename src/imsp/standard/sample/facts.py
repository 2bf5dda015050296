"""The realism layer: field code → value for each dataset, read off the shared world.

Common blocks (header, patient, guardian, clinician — ``blocks.toml``) have one provider each;
every dataset adds the codes only it has. A provider returns plain Python values (``datetime``,
``date``, ``Decimal`` …); :mod:`imsp.standard.sample.engine` puts them in wire form, fills every
field the facts leave out from its definition and applies the dataset's rules.

``FACTS`` maps a dataset code to ``(records, provider)``: how many business objects a count
yields (a prescription-items "object" is a whole prescription) and the facts of object *i*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from imsp.standard.sample import vocab
from imsp.standard.sample.business import (
    Actor,
    Business,
    Visit,
    agreement_text,
    content_hash,
    signature,
    ymd,
)
from imsp.standard.sample.world import STAFF_POOL, Patient, Staff, World, add_years, hexid

Facts = dict[str, Any]


def header(w: World) -> Facts:
    return {
        "organID": w.org.code,
        "organName": w.org.name,
        "hosCode": None,
        "hosName": None,
        "operType": "1",
    }


def patient_block(p: Patient, day: date) -> Facts:
    person = p.person
    return {
        "patientId": p.patient_id,
        "patientName": person.name,
        "patientCertType": "01",
        "patientCertID": person.cert_id,
        "sex": person.sex,
        "age": person.age(day),
        "mobile": person.mobile if p.guardian is None else p.guardian.mobile,
    }


def guardian_block(p: Patient) -> Facts:
    g = p.guardian
    if g is None:
        return {
            "guardianName": None,
            "guardianCertType": None,
            "guardianCertID": None,
            "guardianMobile": None,
        }
    return {
        "guardianName": g.name,
        "guardianCertType": "01",
        "guardianCertID": g.cert_id,
        "guardianMobile": g.mobile,
    }


def clinician_block(w: World, s: Staff) -> Facts:
    subject = s.dept.spec.subject
    return {
        "subjectCode": subject,
        "subjectName": w.name_of("subject", subject),
        "deptID": s.dept.dept_id,
        "deptName": s.dept.name,
        "doctorId": s.staff_id,
        "doctorCertID": s.person.cert_id,
        "doctorName": s.person.name,
    }


def business_patient(b: Business, p: Patient, day: date) -> Facts:
    return {**header(b.w), **patient_block(p, day), **guardian_block(p)}


def url(w: World, kind: str, ident: str) -> str:
    return f"https://ih{w.org.code[-6:].lower()}.example.cn/{kind}/{ident}"


def diagnosis(b: Business, v: Visit) -> tuple[str, str]:
    return "|".join(v.icd), b.w.names_of("icd10", v.icd)


def actor(a: Actor) -> tuple[str, str | None]:
    return a.name, a.cert_id or None


# --------------------------------------------------------------------------- base data


def organization(b: Business, i: int) -> Facts:
    w, o = b.w, b.w.org
    rng = w.rng("organization-facts", 0)
    licence_start = date(b.w.start.year - 2, rng.randrange(1, 13), 1)
    subjects = sorted({d.subject for d in vocab.DEPARTMENTS if d.subject != "90"}
                      | {d.subject.split(".")[0] for d in vocab.DEPARTMENTS if d.subject != "90"})  # fmt: skip
    rely = None
    if o.kind == "2":
        partner = next(h for h in vocab.PARTNERS if h.name == o.rely_name)
        place = w.place(rng, partner.city)
        rely = {
            "organID": o.rely_code,
            "organName": o.rely_name,
            "licenseName": o.rely_name,
            "licenseNo": f"{o.rely_code[8:16]}{place.area}11A1001",
            "licenseEndDate": add_years(licence_start, 5),
            "areaCode": place.area,
            "categoryId": partner.category,
            "levelId": partner.level,
            "grade": partner.grade,
            "foundDate": date(rng.randrange(1946, 1990), rng.randrange(1, 13), 1),
            "address": place.address.split("号")[0] + "号",
            "legalRepresentative": w.person(rng, sex="1", born=date(1968, 3, 3), seq=range(900, 1000), unique=False).name,
            "legalPhone": w.fixed_phone(place, rng),
            "contactName": w.person(rng, sex="2", born=date(1985, 3, 3), seq=range(900, 1000), unique=False).name,
            "contactPhone": vocab.MOBILE_PREFIXES[3] + f"{rng.randrange(10**8):08d}",
        }  # fmt: skip
    legal = w.person(rng, sex="1", born=date(1966, 6, 6), seq=range(900, 1000), unique=False)
    contact = w.person(rng, sex="2", born=date(1986, 6, 6), seq=range(900, 1000), unique=False)
    return {
        **header(w),
        "updateTime": datetime.combine(w.start - timedelta(days=10), time(9, 30)),
        "internetHospitalType": o.kind,
        "secondName": o.internet_name if o.kind == "1" else None,
        "licenseName": o.name,
        "licenseNo": o.licence_no,
        "licenseAuthority": "河北省卫生健康委员会",
        "licenseStartDate": licence_start,
        "licenseEndDate": add_years(licence_start, 5) - timedelta(days=1),
        "approvalNo": f"冀卫医函〔{licence_start.year}〕{rng.randrange(5, 60)}号",
        "approvalDate": licence_start - timedelta(days=rng.randrange(3, 20)),
        "areaCode": o.place.area,
        "areaName": o.place.area_name,
        "categoryId": "A100",
        "levelId": "3",
        "grade": "1",
        "nature": "1",
        "foundDate": o.founded,
        "address": o.place.address.split("号")[0] + "号",
        "postcode": o.place.postcode,
        "legalRepresentative": legal.name,
        "legalPhone": o.phone,
        "chargeRepresentative": legal.name,
        "contactName": contact.name,
        "contactPhone": contact.mobile,
        "telNum": o.phone[:-4] + "9999",
        "subjects": "|".join(subjects),
        "businessTypes": "1|2|3|4|5|8|9|11|12|15|16|17",
        "website": url(w, "", "").rstrip("/"),
        "appName": f"{o.internet_name}（微信小程序）",
        "securityLevel": "3",
        "securityRecordNo": f"{o.place.area}99{rng.randrange(100, 999)}-{licence_start.year % 100}{rng.randrange(100, 999)}",
        "securityEvalDate": w.start - timedelta(days=rng.randrange(60, 300)),
        "introduction": f"{o.name}是一所集医疗、教学、科研、预防保健于一体的三级甲等综合医院，"
        f"{o.internet_name}依托本院开展常见病、慢性病互联网复诊、在线咨询、远程医疗与处方流转服务。",
        "relyOrgan": rely,
    }  # fmt: skip


def department(b: Business, i: int) -> Facts:
    w = b.w
    d = w.dept(i)
    head = next(
        (
            s
            for s in (w.staff(j) for j in range(w.limit(STAFF_POOL)))
            if s.dept == d and s.role != "nurse"
        ),
        None,
    )
    rng = w.rng("department-facts", i)
    return {
        **header(w),
        "updateTime": datetime.combine(w.start - timedelta(days=7), time(10, rng.randrange(60))),
        "deptID": d.dept_id,
        "deptName": d.name,
        "parentDeptID": d.parent_id or None,
        "deptType": d.spec.dept_type,
        "subjectCode": d.spec.subject,
        "subjectName": w.name_of("subject", d.spec.subject),
        "internetFlag": "0" if d.spec.kind == "lab" else "1",
        "principalName": head.person.name if head else None,
        "principalCertID": head.person.cert_id if head else None,
        "deptPhone": f"{w.org.phone[:-4]}{8000 + i}",
        "validFlag": "1",
        "deptIntro": d.spec.intro,
    }


def doctor(b: Business, i: int) -> Facts:
    w = b.w
    s = w.staff(i)
    p = s.person
    rng = w.rng("doctor-facts", i)
    prescriber = s.person_type in ("11", "12")
    licensed = s.person_type in ("11", "12", "21", "22")
    insured = prescriber and rng.random() < 0.7
    policy_start = date(w.start.year, 1, 1)
    first = s.first_unit
    types = {
        "physician": "1|3|4|5",
        "radiologist": "11",
        "pharmacist": "15",
        "nurse": "17",
        "lab": None,
    }
    scope = s.dept.spec.practice or "11"
    return {
        **header(w),
        "updateTime": datetime.combine(w.start - timedelta(days=3), time(11, rng.randrange(60))),
        "doctorId": s.staff_id,
        "doctorName": p.name,
        "doctorCertID": p.cert_id,
        "sex": p.sex,
        "birthday": p.born,
        "nation": p.nation,
        "mobile": p.mobile,
        "personType": s.person_type,
        "titleCode": s.title,
        "titleName": w.name_of("title", s.title),
        "deptID": s.dept.dept_id,
        "deptName": s.dept.name,
        "subjectCode": s.dept.spec.subject,
        "subjectName": w.name_of("subject", s.dept.spec.subject),
        "qualificationCertNo": f"{s.work_date.year - 1}1{'13' if scope != '51' else '43'}11{p.cert_id}" if prescriber else None,
        "practiceCertNo": f"1{'1' if prescriber else '2'}{w.org.place.area}{s.work_date:%y}{i:05d}"[:15] if licensed else None,
        "practiceCertDate": s.work_date if licensed else None,
        "practiceType": ("4" if scope == "51" else "1") if prescriber else None,
        "practiceScope": scope if prescriber else None,
        "doctorWorkDate": s.work_date,
        "doctorYears": max(0, w.start.year - s.work_date.year),
        "firstWorkUnitId": s.first_unit_code,
        "firstUnitName": first.name if first else w.org.name,
        "firstAreaCode": first.city if first else w.org.place.area,
        "multiSiteFlag": "1" if first else "0",
        "multiSiteStart": s.multi_site_start,
        "multiSiteEnd": add_years(s.multi_site_start, 3) if s.multi_site_start else None,
        "prescribeRight": "1" if prescriber else None,
        "auditRight": "1" if s.role == "pharmacist" else None,
        "assessQualified": "1" if licensed else None,
        "policyNo": f"PZBH{w.start.year}1301{rng.randrange(10**11):011d}" if insured else None,
        "policyStartDate": policy_start if insured else None,
        "policyEndDate": date(w.start.year, 12, 31) if insured else None,
        "realNameAuthFlag": "1",
        "realNameMethod": "1",
        "caCertSN": hexid(rng, 16) if s.role in ("physician", "pharmacist", "radiologist") else None,
        "businessTypes": types[s.role],
        "workStatus": "1",
    }  # fmt: skip


def patient(b: Business, i: int) -> Facts:
    w = b.w
    p = w.patient(i)
    person = p.person
    profile = p.profile
    past = f"{w.names_of('icd10', profile.icd).replace('|', '、')}病史 {p.years} 年"
    return {
        **header(w),
        **patient_block(p, p.created.date()),
        **guardian_block(p),
        "birthday": person.born,
        "nation": person.nation,
        "nationality": "CHN",
        "maritalStatus": p.marital,
        "areaCode": p.place.area,
        "address": p.place.address,
        "cardType": p.card[0],
        "cardNo": p.card[1],
        "payTypeCode": p.pay_type,
        "guardianRelation": p.guardian_relation or None,
        "realNameFlag": "1",
        "realNameMethod": p.real_name_method,
        "realNameTime": p.created + timedelta(minutes=2, seconds=17),
        "allergyFlag": "1" if p.allergy else "0",
        "allergyInfo": p.allergy or None,
        "pastHistory": past,
        "createTime": p.created,
    }


# --------------------------------------------------------------------------- clinical services


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
            "countrydrcode": None if herb else (f"X{d.atc[:5]}A{d.code[-3:]}A0010101{d.code[-4:]}" if d.atc else f"Z{d.code[2:]}A0010101010"),
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


def payment(b: Business, i: int) -> Facts:
    w = b.w
    p = b.payment(i)
    rng = w.rng("payment-facts", i)
    total = p.total
    trade = {
        "1": f"{p.time:%Y%m%d}22001{rng.randrange(10**15):015d}",
        "2": f"42000{rng.randrange(10**5):05d}{p.time:%Y%m%d}{rng.randrange(10**10):010d}",
        "3": f"{rng.randrange(10**20):020d}",
        "4": f"YBZF{p.time:%Y%m%d%H%M%S}{rng.randrange(10**6):06d}",
    }.get(p.channel)
    return {
        **header(w),
        **patient_block(p.patient, p.time.date()),
        "payId": p.pay_id,
        "businessType": p.business_type,
        "bussID": p.buss_id,
        "recipeID": p.recipe_id or None,
        "applyId": p.apply_id or None,
        "deptID": p.doctor.dept.dept_id,
        "deptName": p.doctor.dept.name,
        "chargeRefundCode": "1",
        "originalPayId": None,
        "payTypeCode": p.patient.pay_type,
        "paymentChannel": p.channel,
        "tradeNo": trade,
        "orderNo": f"IH{p.time:%Y%m%d%H%M%S}{i:04d}"[:64],
        "totalFee": total,
        "individualPay": total - p.fund,
        "fundPay": p.fund,
        "otherPay": Decimal(0),
        "payTime": p.time,
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


_PROTOCOLS: Final = (  # (protocol_type, id, business types)
    ("1", "XY-FWXY", "1|2|3|4|5"),
    ("2", "XY-YSZC", None),
    ("3", "XY-ZQTY", "4|5"),
    ("5", "XY-YCZQ", "8|9"),
    ("4", "XY-YSRZ", "4|5"),
)


def agreement(b: Business, i: int) -> Facts:
    w = b.w
    kind, ident, types = _PROTOCOLS[i % len(_PROTOCOLS)]
    k = i // len(_PROTOCOLS)
    current = (w.bound - 1 - i % len(_PROTOCOLS)) // len(_PROTOCOLS)
    release = add_years(w.start, -3) + timedelta(days=90 * k + 3 * (i % len(_PROTOCOLS)))
    version = f"V1.{k}"
    title = w.name_of("protocol_type", kind)
    content = agreement_text(kind, w.org.name, w.org.internet_name, version)
    return {
        **header(w),
        "updateTime": datetime.combine(release, time(10, 0)),
        "protocolId": ident,
        "version": version,
        "protocolType": kind,
        "protocolName": f"{w.org.internet_name}{title}",
        "status": "1" if k >= current else "0",
        "releaseDate": release,
        "effectiveDate": release + timedelta(days=7),
        "expireDate": None if k >= current else release + timedelta(days=89),
        "businessTypes": types,
        "content": content,
        "fileId": f"F{release:%Y%m%d}{i:06d}",
        "fileUrl": url(w, "agreement", f"{ident}-{version}.pdf"),
        "contentHash": content_hash(content),
    }


Provider = Callable[[Business, int], Facts]


def _one(p: Provider) -> Callable[[Business, int], Iterator[Facts]]:
    def each(b: Business, i: int) -> Iterator[Facts]:
        yield p(b, i)

    return each


#: dataset code → facts of business object *i* (one record, or several for prescription items).
FACTS: Final[dict[str, Callable[[Business, int], Iterator[Facts]]]] = {
    "organization": _one(organization),
    "department": _one(department),
    "doctor": _one(doctor),
    "patient": _one(patient),
    "register": _one(register),
    "outpatient": _one(outpatient),
    "prescription": _one(prescription),
    "prescription_item": prescription_items,
    "inspection": _one(inspection),
    "telemedicine": _one(telemedicine),
    "consult": _one(consult),
    "payment": _one(payment),
    "appraise": _one(appraise),
    "lis": _one(lis),
    "pacs": _one(pacs),
    "agreement": _one(agreement),
}
#: Datasets with a single record per institution (their business key is the institution).
SINGLETONS: Final = frozenset({"organization"})
#: Keys the common block providers may supply to a dataset that lacks some of those blocks.
BLOCK_KEYS: Final = frozenset(
    {"organID", "organName", "hosCode", "hosName", "operType"}
    | {"patientId", "patientName", "patientCertType", "patientCertID", "sex", "age", "mobile"}
    | {"guardianName", "guardianCertType", "guardianCertID", "guardianMobile"}
)
