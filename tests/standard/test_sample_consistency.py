"""Samples of all datasets generated together describe one consistent institution."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from imsp.standard import checks
from imsp.standard.sample import generate_all
from imsp.standard.validate import validator_for

Records = dict[str, list[dict[str, Any]]]


@cache
def data(seed: int) -> Records:
    return generate_all(60, seed=seed)


def by(records: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in records}


SEEDS = pytest.mark.parametrize("seed", [0, 1])


@SEEDS
def test_business_keys_are_unique(seed: int) -> None:
    for code, records in data(seed).items():
        keys = Counter(validator_for(code).check(r).key for r in records)
        assert None not in keys, code
        assert keys.most_common(1)[0][1] == 1, (code, keys.most_common(1))


@SEEDS
def test_prescriptions_belong_to_follow_up_visits_of_their_doctor(seed: int) -> None:
    d = data(seed)
    visits = by(d["outpatient"], "bussID")
    for rx in d["prescription"]:
        v = visits[rx["bussID"]]
        assert v["visitType"] == "1" and v["terminateFlag"] == "0"
        for k in ("doctorId", "doctorCertID", "deptID", "patientId", "patientCertID"):
            assert rx[k] == v[k], k
        assert v["visitDate"] <= rx["datein"] <= v["visitEndTime"]
        assert rx["icdCode"] == v["diagnosisCode"]


@SEEDS
def test_prescription_items_reference_their_prescription_and_sum_to_its_total(seed: int) -> None:
    d = data(seed)
    items: dict[str, list[dict[str, Any]]] = {}
    for it in d["prescription_item"]:
        items.setdefault(it["recipeID"], []).append(it)
    rxs = by(d["prescription"], "recipeID")
    assert set(items) == set(rxs)
    for rid, lines in items.items():
        rx = rxs[rid]
        assert len(lines) == rx["itemCount"]
        total = sum(Decimal(str(x["totalPrice"])) for x in lines)
        assert total == Decimal(str(rx["totalFee"])).quantize(Decimal("0.01"))
        for x in lines:
            assert x["datein"] == rx["datein"]
            assert abs(x["price"] * x["dosageTotal"] - x["totalPrice"]) <= 0.01
            if rx["recipeType"] == "3":
                assert x["useDays"] == rx["packetsNum"]


@SEEDS
def test_payments_settle_existing_business_and_add_up(seed: int) -> None:
    d = data(seed)
    ids = {
        "16": set(by(d["register"], "bussID")),
        "4": set(by(d["outpatient"], "bussID")),
        "5": set(by(d["outpatient"], "bussID")),
        "7": set(by(d["outpatient"], "bussID")),
        "1": set(by(d["consult"], "bussID")),
        "2": set(by(d["consult"], "bussID")),
        "3": set(by(d["consult"], "bussID")),
    }
    rxs = by(d["prescription"], "recipeID")
    applications = by(d["inspection"], "applyId")
    kinds = Counter()
    for p in d["payment"]:
        kinds[p["businessType"]] += 1
        assert p["bussID"] in ids[p["businessType"]], p["payId"]
        if p["recipeID"]:
            rx = rxs[p["recipeID"]]
            assert rx["bussID"] == p["bussID"] and rx["patientId"] == p["patientId"]
            drugs = sum(Decimal(str(i["amount"])) for i in p["items"] if i["feeCategory"] != "12")
            assert drugs == Decimal(str(rx["totalFee"])).quantize(Decimal("0.01"))
        if p["applyId"]:
            assert applications[p["applyId"]]["bussID"] == p["bussID"]
        parts = p["individualPay"] + p["fundPay"] + p["otherPay"]
        assert abs(parts - p["totalFee"]) <= 0.01
    assert {"4", "5", "7"} <= set(kinds)


@SEEDS
def test_reports_and_applications_reference_each_other(seed: int) -> None:
    d = data(seed)
    visits = by(d["outpatient"], "bussID")
    applications = by(d["inspection"], "applyId")
    for a in d["inspection"]:
        assert a["bussID"] in visits and visits[a["bussID"]]["patientId"] == a["patientId"]
    for kind, apply_type in (("lis", "1"), ("pacs", "2")):
        for r in d[kind]:
            assert r["bussID"] in visits
            if r["applyId"]:
                a = applications[r["applyId"]]
                assert a["applyType"] == apply_type
                assert a["bussID"] == r["bussID"] and a["patientId"] == r["patientId"]
                assert a["doctorCertID"] == r["applyDoctorCertID"]
                assert a["applyTime"] <= r["reportTime"]
    assert all(r["applyId"] for r in d["lis"])


@SEEDS
def test_registrations_and_appraisals_point_at_existing_business(seed: int) -> None:
    d = data(seed)
    visits = by(d["outpatient"], "bussID")
    for r in d["register"]:
        if r["visitNo"]:
            v = visits[r["visitNo"]]
            assert (r["patientId"], r["doctorCertID"]) == (v["patientId"], v["doctorCertID"])
            assert r["startTime"] <= v["visitDate"] and r["appointDate"] <= v["visitDate"]
    businesses = {
        **by(d["outpatient"], "bussID"),
        **by(d["consult"], "bussID"),
        **by(d["telemedicine"], "bussID"),
    }
    for a in d["appraise"]:
        b = businesses[a["bussID"]]
        doctor = b.get("doctorCertID") or b.get("applyDoctorCertID")
        assert a["doctorCertID"] == doctor and a["patientId"] == b["patientId"]
        assert max(v for k, v in b.items() if k.endswith(("Time", "Date")) and k != "updateTime" and isinstance(v, str) and len(v) == 19) <= a["evaluationTime"]  # fmt: skip


@SEEDS
def test_staff_departments_and_patients_referred_to_are_filed(seed: int) -> None:
    d = data(seed)
    doctors = by(d["doctor"], "doctorCertID")
    depts = by(d["department"], "deptID")
    patients = by(d["patient"], "patientId")
    for doc in d["doctor"]:
        assert doc["deptID"] in depts
    for dept in d["department"]:
        if dept["principalCertID"]:
            assert doctors[dept["principalCertID"]]["deptID"] == dept["deptID"]
    for code, records in d.items():
        for r in records:
            if "doctorCertID" in r and code not in ("doctor",) and r.get("doctorId"):
                doc = doctors[r["doctorCertID"]]
                assert (doc["doctorId"], doc["doctorName"], doc["deptID"]) == (
                    r["doctorId"], r["doctorName"], r["deptID"]
                ), code  # fmt: skip
                assert doc["personType"] in ("11", "12", "21", "22"), code
            if r.get("auditDoctorCertID"):
                assert doctors[r["auditDoctorCertID"]]["personType"] in ("31", "32")
            if r.get("patientId") and code != "patient":
                p = patients[r["patientId"]]
                for k in ("patientName", "patientCertID", "sex"):
                    if k in r:
                        assert r[k] == p[k], (code, k)
            for k in ("applyDeptID", "deptID"):
                if r.get(k) and code not in ("telemedicine",):
                    assert r[k] in depts, (code, k)


@SEEDS
def test_ages_agree_with_the_id_number_at_the_business_date(seed: int) -> None:
    d = data(seed)
    times = {
        "register": "startTime", "outpatient": "visitDate", "prescription": "datein",
        "inspection": "applyTime", "consult": "applyDate", "telemedicine": "applyTime",
        "payment": "payTime", "lis": "samplingTime", "pacs": "examTime", "patient": "createTime",
    }  # fmt: skip
    for code, field in times.items():
        for r in d[code]:
            born = date.fromisoformat(checks.idcard_birthday(r["patientCertID"]))
            day = date.fromisoformat(r[field][:10])
            age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
            assert r["age"] == age, (code, r[field], born)
            assert checks.idcard_sex(r["patientCertID"]) == r["sex"]
            if age < 6:
                assert r.get("guardianName", "x") and r.get("guardianCertID", "x")


@SEEDS
def test_update_time_follows_every_time_in_the_record(seed: int) -> None:
    for code, records in data(seed).items():
        for r in records:
            times = [v for k, v in r.items() if k != "updateTime" and isinstance(v, str) and len(v) == 19 and checks.is_datetime(v)]  # fmt: skip
            assert all(t <= r["updateTime"] for t in times), code


def test_every_organisation_code_in_the_samples_is_a_valid_uscc() -> None:
    d = data(1)
    org = d["organization"][0]
    codes = {org["organID"], org["relyOrgan"]["organID"]}
    codes |= {r["invitedOrgCode"] for r in d["telemedicine"]}
    codes |= {r["firstWorkUnitId"] for r in d["doctor"]}
    assert all(checks.is_uscc(c) for c in codes)
    assert len(codes) > 3
