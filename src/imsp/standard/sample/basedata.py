"""Facts of the base data (基本信息: institution, departments, staff) and of patients and user
agreements — the records the clinical services refer to."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final

from imsp.standard.sample import vocab
from imsp.standard.sample.blocks import (
    Facts,
    guardian_block,
    header,
    patient_block,
    url,
)
from imsp.standard.sample.business import Business
from imsp.standard.sample.events import agreement_text, content_hash
from imsp.standard.sample.world import add_years, hexid


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
        "introduction": (
            f"{o.name}是一所集医疗、教学、科研、预防保健于一体的三级甲等综合医院，"
            f"{o.internet_name}依托本院开展常见病、慢性病互联网复诊、在线咨询、远程医疗与处方流转服务。"
            if o.kind == "1"
            else f"{o.name}依托{o.rely_name}独立设置，开展常见病、慢性病互联网复诊、在线咨询、"
            "远程医疗与处方流转服务。"
        ),
        "relyOrgan": rely,
    }  # fmt: skip


def department(b: Business, i: int) -> Facts:
    w = b.w
    d = w.dept(i)
    head = next(
        (
            s
            for s in (w.staff(j) for j in range(w.staff_limit))
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
    # the institution's medical liability insurance covers all its staff (R07)
    policy_start = date(w.start.year, 1, 1)
    # in force on every business day, also when they run into the next year
    policy_end = date((w.start + timedelta(days=w.span_days - 1)).year, 12, 31)
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
        "policyNo": f"PZBH{w.start.year}1301{rng.randrange(10**11):011d}",
        "policyStartDate": policy_start,
        "policyEndDate": policy_end,
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


#: Agreements are revised every 90 days from three years before the world's start; a world with
#: more versions than fit in this many days revises them more often, so that the version in force
#: is released (and effective) before the first business day.
_REVISIONS_WITHIN: Final = 1000

#: The informed-consent form (互联网诊疗知情同意书) comes first: a world of one agreement still has
#: the consent in force that every online visit needs (R17).
_PROTOCOLS: Final = (  # (protocol_type, id, business types)
    ("3", "XY-ZQTY", "4|5"),
    ("1", "XY-FWXY", "1|2|3|4|5"),
    ("2", "XY-YSZC", None),
    ("5", "XY-YCZQ", "8|9"),
    ("4", "XY-YSRZ", "4|5"),
)


def agreement(b: Business, i: int) -> Facts:
    w = b.w
    kind, ident, types = _PROTOCOLS[i % len(_PROTOCOLS)]
    k = i // len(_PROTOCOLS)
    current = (w.bound - 1 - i % len(_PROTOCOLS)) // len(_PROTOCOLS)
    offset = 90 * k if 90 * current <= _REVISIONS_WITHIN else k * _REVISIONS_WITHIN // current
    release = add_years(w.start, -3) + timedelta(days=offset + 3 * (i % len(_PROTOCOLS)))
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
