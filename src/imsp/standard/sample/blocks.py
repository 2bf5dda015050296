"""Facts of the common blocks (``blocks.toml``: header, patient, guardian, clinician) and helpers
shared by the per-dataset providers of :mod:`.basedata` and :mod:`.care`."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from imsp.standard.sample.business import Business
from imsp.standard.sample.events import Actor, Visit
from imsp.standard.sample.world import Patient, Staff, World

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


#: Keys the common block providers may supply to a dataset that lacks some of those blocks.
BLOCK_KEYS: Final = frozenset(
    {"organID", "organName", "hosCode", "hosName", "operType"}
    | {"patientId", "patientName", "patientCertType", "patientCertID", "sex", "age", "mobile"}
    | {"guardianName", "guardianCertType", "guardianCertID", "guardianMobile"}
)
