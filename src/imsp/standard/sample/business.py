"""Business events of the generator's world: visits, prescriptions, tests, consultations …

Each event *i* of a kind is a pure, cached function of the world and *i*. Events refer to each
other by index so that the samples of all datasets generated with the same count agree:

* prescription *i* and inspection *i* belong to visit *i* — or to visit *i−1* when visit *i* is a
  first visit (首诊, terminated and never prescribed for); every tenth visit is one;
* inspection *i* is a laboratory application for even *i*, an imaging one for odd *i*; LIS report
  *i* reports on inspection *i − i mod 2*, PACS report *i* on the odd inspection at or below *i*;
* register *i* booked visit *i* (unless cancelled); payment and appraisal *i* settle or rate
  event *i* of a kind chosen by *i*.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Final

from imsp.standard.sample import vocab
from imsp.standard.sample.events import (
    Actor,
    Appraisal,
    Consult,
    Fee,
    ImagingReport,
    Inspection,
    LabReport,
    Payment,
    Register,
    Rx,
    RxItem,
    Tele,
    Visit,
    money,
    signature,
    ymd,
)
from imsp.standard.sample.vocab import Drug, Exam, Panel
from imsp.standard.sample.world import (
    PAEDIATRIC_AGE,
    Patient,
    Staff,
    World,
    at,
    hexid,
    person_name,
)

_FREQ_PER_DAY: Final = {"qd": 1, "qn": 1, "hs": 1, "bid": 2, "tid": 3, "qid": 4}
_FIRST_VISIT_EVERY: Final = 10
_TELE_BUSINESS: Final = {"1": "9", "2": "8", "3": "11", "4": "12", "7": "14"}


class Business:
    """The events of one world, built on demand and cached."""

    def __init__(self, world: World) -> None:
        self.w = world
        self._cache: dict[tuple[str, int], Any] = {}

    def _get(self, kind: str, i: int, make: Any) -> Any:
        key = (kind, i)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = make(i, self.w.rng(kind, i))
        return hit

    def day(self, rng: random.Random) -> date:
        return self.w.start + timedelta(days=rng.randrange(self.w.span_days))

    @cached_property
    def physicians(self) -> list[Staff]:
        return self.w.staff_with("physician")

    @cached_property
    def pharmacists(self) -> list[Staff]:
        return self.w.staff_with("pharmacist")

    def doctor_for(self, patient: Patient, rng: random.Random) -> Staff:
        if patient.person.age(self.w.start) < PAEDIATRIC_AGE:
            # a world without a paediatrician has no patient this young (World._make_patient)
            return rng.choice(self.w.paediatricians)
        if patient.profile.herbs and rng.random() < vocab.TCM_FOLLOW_UP_SHARE:
            tcm = [s for s in self.physicians if s.dept.spec.subject == "50"]  # 中医科
            if tcm:
                return rng.choice(tcm)
        for subject in patient.profile.subjects:
            found = [s for s in self.physicians if s.dept.spec.subject == subject]
            if found:
                return rng.choice(found)
        return rng.choice(self.physicians)

    def regimen(self, patient: Patient) -> tuple[Drug, ...]:
        rng = self.w.rng("regimen", patient.index)
        drugs = patient.profile.drugs
        picked = set(rng.sample(drugs, min(len(drugs), rng.choice((1, 2, 2, 3)))))
        return tuple(vocab.DRUGS[d] for d in drugs if d in picked)

    # ------------------------------------------------------------------ visits (病历)

    def visit(self, i: int) -> Visit:
        v: Visit = self._get("visit", i, self._visit)
        return v

    def visit_for(self, i: int) -> Visit:
        """The follow-up visit that prescription / inspection *i* belongs to."""
        v = self.visit(i)
        return self.visit(i - 1) if v.first else v

    def _visit(self, i: int, rng: random.Random) -> Visit:
        patient = self.w.any_patient(rng)
        doctor = self.doctor_for(patient, rng)
        day = self.day(rng)
        start = at(day, rng.choice((8, 9, 9, 10, 10, 11, 14, 15, 15, 16, 19, 20)),
                   rng.randrange(60), rng.randrange(60))  # fmt: skip
        end = start + timedelta(minutes=rng.randrange(8, 26), seconds=rng.randrange(60))
        regimen = self.regimen(patient)
        text = {
            "years": patient.years,
            "drugs": "、".join(d.name for d in regimen),
            "weeks": rng.choice((2, 4, 4)),
            "bp": f"{rng.randrange(118, 142)}/{rng.randrange(72, 90)}",
            "hr": rng.randrange(62, 88),
            "glu": f"{rng.uniform(5.6, 7.8):.1f}",
        }
        return Visit(
            index=i,
            buss_id=f"FZ{ymd(day)}{i:06d}",
            case_no=f"BL{ymd(day)}{i:06d}",
            patient=patient,
            doctor=doctor,
            first=i % _FIRST_VISIT_EVERY == _FIRST_VISIT_EVERY - 1,
            mode=rng.choices(("1", "2", "3"), (3, 1, 6))[0],
            start=start,
            end=end,
            tcm=doctor.dept.spec.subject == "50" and bool(patient.profile.herbs),
            regimen=regimen,
            text=text,
        )

    # ------------------------------------------------------------------ prescriptions (处方)

    def rx(self, i: int) -> Rx:
        r: Rx = self._get("rx", i, self._rx)
        return r

    def _rx(self, i: int, rng: random.Random) -> Rx:
        v = self.visit_for(i)
        span = (v.end - v.start).total_seconds()
        time = v.start + timedelta(seconds=int(span * rng.uniform(0.5, 0.95)))
        pharmacist = rng.choice(self.pharmacists) if self.pharmacists else None
        checked = time + timedelta(minutes=rng.randrange(2, 20)) if pharmacist else None
        items: list[RxItem] = []
        packets: int | None = None
        long_term = False
        batch = f"{(v.start - timedelta(days=rng.randrange(60, 400))):%y%m%d}"
        if v.tcm:
            packets = rng.choice((5, 7, 7))
            for n, (herb, grams) in enumerate(v.patient.profile.herbs, 1):
                d = vocab.HERBS[herb]
                total = Decimal(grams * packets)
                items.append(
                    RxItem(
                        str(n), d, str(grams), packets, total, money(d.price * total), f"Z{batch}"
                    )
                )
            recipe_type = "3"
        else:
            # Prescription lengths of online follow-up visits (vocab.RX_LENGTHS): a week for a
            # short course, 2 or 4 weeks for a stable chronic disease, and long-term prescriptions
            # (长期处方, 4 weeks) for stable adult chronic patients only.
            days, long_term = rng.choices(vocab.RX_LENGTHS, weights=vocab.RX_LENGTH_WEIGHTS)[0]
            long_term = long_term and v.patient.person.age(v.start.date()) >= 18
            for n, d in enumerate(v.regimen, 1):
                per_day = _FREQ_PER_DAY.get(d.freq, 1)
                packs = math.ceil(d.units * per_day * days / d.pack)
                total = Decimal(packs)
                items.append(RxItem(str(n), d, d.dose, days, total, money(d.price * total), batch))
            recipe_type = "1" if any(x.drug.kind == "western" for x in items) else "2"
        delivery = rng.choices(("1", "0", "3"), (7, 2, 1))[0]
        after = checked or time
        unique_id = hexid(rng, 16)
        period = rng.choice((1, 2, 3, 3))
        # dispensed or handed to the courier within the prescription's validity (R25), which
        # ends with its last day (reviews end before 22:00: there are always 2 hours left)
        left = (at(time.date() + timedelta(days=period)) - after).total_seconds() // 60
        dispatched = after + timedelta(minutes=rng.randrange(20, int(min(300, max(21, left)))))
        return Rx(
            index=i,
            recipe_id=f"RX{ymd(time)}{i:06d}",
            unique_id=unique_id,
            visit=v,
            pharmacist=pharmacist,
            time=time,
            checked=checked,
            recipe_type=recipe_type,
            packets=packets,
            long_term=long_term,
            period=period,
            items=tuple(items),
            delivery=delivery,
            dispatched=dispatched,
            firm=rng.choice(vocab.DELIVERY_FIRMS) if delivery == "1" else "",
            courier=person_name(rng, rng.choice("12")),
            sign=signature(rng),
            ca_sn=hexid(rng, 16),
        )  # fmt: skip

    # ------------------------------------------------------------------ inspections and reports

    def inspection(self, i: int) -> Inspection:
        x: Inspection = self._get("inspection", i, self._inspection)
        return x

    def _inspection(self, i: int, rng: random.Random) -> Inspection:
        v = self.visit_for(i)
        profile = v.patient.profile
        lab = i % 2 == 0
        panels: tuple[Panel, ...] = ()
        exams: tuple[Exam, ...] = ()
        if lab:
            keys = [*profile.labs[:2], *(k for k in ("cbc", "liver") if k not in profile.labs)]
            panels = tuple(vocab.PANELS[k] for k in keys[:2])
        else:
            keys = [*profile.exams[:2], *(k for k in ("ecg", "chest_dr") if k not in profile.exams)]
            exams = tuple(vocab.EXAMS[k] for k in keys[:2])
        span = (v.end - v.start).total_seconds()
        time = v.start + timedelta(seconds=int(span * rng.uniform(0.3, 0.9)))
        return Inspection(i, f"SQ{ymd(time)}{i:06d}", v, lab, time, panels, exams)

    def lab_report(self, i: int) -> LabReport:
        r: LabReport = self._get("lis", i, self._lab_report)
        return r

    def _staff_actor(self, role: str, rng: random.Random, n: int = 0) -> Actor:
        found = self.w.staff_with(role)
        if len(found) > n:
            s = found[n]
            return Actor(s.person.name, s.person.cert_id)
        return Actor(person_name(rng, rng.choice("12")))

    def _lab_report(self, i: int, rng: random.Random) -> LabReport:
        insp = self.inspection(i - i % 2)
        panel = insp.panels[i % 2 % len(insp.panels)]
        sampled = at(
            insp.time.date() + timedelta(days=rng.randrange(0, 3)), 7, rng.randrange(30, 60)
        )
        sampled = max(sampled, insp.time + timedelta(minutes=30))
        received = sampled + timedelta(minutes=rng.randrange(10, 40))
        tested = received + timedelta(minutes=rng.randrange(10, 50))
        reported = tested + timedelta(minutes=rng.randrange(20, 90))
        audited = reported + timedelta(minutes=rng.randrange(5, 30))
        person = insp.visit.patient.person
        results = []
        for a in panel.analytes:
            low, high = a.low, a.high
            if person.sex == "2" and a.abbr in ("HGB", "RBC", "CREA", "UA"):
                high = low + (high - low) * 0.8
            elif person.sex == "1" and a.abbr in ("HGB", "RBC"):
                low = low + (high - low) * 0.2
            roll = rng.random()
            value = (
                rng.uniform(high, high * 1.3) if roll < 0.12 else
                rng.uniform(low * 0.8, low) if roll < 0.17 else
                rng.uniform(low, high)
            )  # fmt: skip
            text = f"{value:.{a.digits}f}"
            flag = "H" if float(text) > high else "L" if float(text) < low else ""
            shown = f"{low:.{a.digits}f}-{high:.{a.digits}f}"
            results.append((a, text, flag, shown))
        return LabReport(
            index=i,
            report_id=f"LIS{ymd(reported)}{i:06d}",
            inspection=insp,
            panel=panel,
            specimen_no=f"{ymd(sampled)[2:]}{i:07d}",
            sampled=sampled,
            received=received,
            tested=tested,
            reported=reported,
            audited=audited,
            tester=self._staff_actor("lab", rng),
            auditor=self._staff_actor("lab", rng, 1),
            results=tuple(results),
        )

    def imaging_report(self, i: int) -> ImagingReport:
        r: ImagingReport = self._get("pacs", i, self._imaging_report)
        return r

    def _imaging_report(self, i: int, rng: random.Random) -> ImagingReport:
        j = i if i % 2 else i - 1
        insp = self.inspection(j) if j >= 0 else None
        visit = insp.visit if insp is not None else self.visit_for(i)
        if insp is not None:
            exam = insp.exams[(i + 1) % 2 % len(insp.exams)]
            after = insp.time
        else:
            exam = vocab.EXAMS[(visit.patient.profile.exams or ("ecg",))[0]]
            after = visit.end
        examined = at(after.date() + timedelta(days=rng.randrange(1, 4)), rng.randrange(8, 16),
                      rng.randrange(60), rng.randrange(60))  # fmt: skip
        reported = examined + timedelta(minutes=rng.randrange(30, 150))
        return ImagingReport(
            index=i,
            report_id=f"PACS{ymd(reported)}{i:06d}",
            inspection=insp,
            visit=visit,
            exam=exam,
            abnormal=rng.random() < 0.3,
            examined=examined,
            reported=reported,
            audited=reported + timedelta(minutes=rng.randrange(10, 60)),
            technician=Actor(person_name(rng, rng.choice("12"))),
            reporter=self._staff_actor("radiologist", rng),
            auditor=self._staff_actor("radiologist", rng, 1),
            uid=f"1.2.840.113619.2.55.3.{rng.randrange(10**8, 10**9)}.{rng.randrange(100, 999)}.{int(examined.timestamp())}.{i}",
        )  # fmt: skip

    # ------------------------------------------------------------------ consultations (在线咨询)

    def consult(self, i: int) -> Consult:
        c: Consult = self._get("consult", i, self._consult)
        return c

    def _consult(self, i: int, rng: random.Random) -> Consult:
        patient = self.w.any_patient(rng)
        doctor = self.doctor_for(patient, rng)
        attribute = rng.choices(("1", "2", "3"), (6, 3, 1))[0]
        nurses = [s for s in self.w.staff_with("nurse")]
        if nurses and rng.random() < 0.15:
            attribute, doctor = "4", rng.choice(nurses)
        applied = at(self.day(rng), rng.randrange(7, 22), rng.randrange(60), rng.randrange(60))
        answered = rng.random() < 0.9
        start = applied + timedelta(minutes=rng.randrange(3, 90)) if answered else None
        end = start + timedelta(minutes=rng.randrange(5, 40)) if start else None
        refusal = None
        if not answered:
            kind = rng.choice("12")
            when = applied + timedelta(minutes=rng.randrange(10, 600) if kind == "1" else 1440)
            reason = (
                rng.choice(vocab.CONSULT_REFUSALS) if kind == "1" else "超时未回复，系统自动退诊"
            )
            refusal = (kind, when, reason)
        price = Decimal(rng.choice((0, 10, 20, 30, 50)))
        question, answer = rng.choice(vocab.CONSULT_TEXTS)
        return Consult(
            index=i,
            buss_id=f"ZX{ymd(applied)}{i:06d}",
            patient=patient,
            doctor=doctor,
            mode=rng.choices(("1", "2", "3"), (6, 1, 3))[0],
            attribute=attribute,
            applied=applied,
            answered=answered,
            start=start,
            end=end,
            price=price,
            channel=rng.choice(("1", "2", "2")),
            question=question,
            answer=answer if answered else "",
            refusal=refusal,
        )

    # ------------------------------------------------------------------ telemedicine (远程医疗)

    def tele(self, i: int) -> Tele:
        t: Tele = self._get("tele", i, self._tele)
        return t

    def _tele(self, i: int, rng: random.Random) -> Tele:
        patient = self.w.any_patient(rng)
        doctor = self.doctor_for(patient, rng)
        tele_type = rng.choices(("1", "2", "3", "4", "7"), (10, 4, 3, 2, 1))[0]
        status = rng.choices(("2", "9", "8"), (17, 2, 1))[0]
        partner, code = self.w.partner(rng)
        invited = tuple(
            (
                self.w.person(rng, sex=rng.choice("12"), born=date(rng.randrange(1965, 1985), rng.randrange(1, 13), rng.randrange(1, 28)), seq=range(900, 1000), unique=False),
                rng.choice(("231", "232")),
            )
            for _ in range(rng.choice((1, 1, 2)))
        )  # fmt: skip
        applied = at(self.day(rng), rng.randrange(8, 17), rng.randrange(60), rng.randrange(60))
        planned = start = end = reported = cancelled = None
        if status == "2":
            planned = at(
                applied.date() + timedelta(days=rng.randrange(1, 3)), rng.choice((9, 10, 14, 15))
            )
            start = planned + timedelta(minutes=rng.randrange(0, 10), seconds=rng.randrange(60))
            end = start + timedelta(minutes=rng.randrange(15, 45))
            reported = end + timedelta(minutes=rng.randrange(5, 60))
        else:
            cancelled = applied + timedelta(hours=rng.randrange(1, 30))
        profile = patient.profile
        exam = vocab.EXAMS["ecg" if tele_type == "4" else (profile.exams or ("chest_ct",))[0]]
        if tele_type == "3" and exam.exam_type not in ("CT", "MR", "DR", "US"):
            exam = vocab.EXAMS["chest_ct"]
        return Tele(
            index=i,
            buss_id=f"YC{ymd(applied)}{i:06d}",
            patient=patient,
            doctor=doctor,
            tele_type=tele_type,
            status=status,
            partner=partner,
            partner_code=code,
            invited=invited,
            applied=applied,
            planned=planned,
            start=start,
            end=end,
            reported=reported,
            cancelled=cancelled,
            exam=exam,
            fee=Decimal(rng.choice((150, 200, 300, 500))),
        )

    # ------------------------------------------------------------------ registrations (预约挂号)

    def register(self, i: int) -> Register:
        r: Register = self._get("register", i, self._register)
        return r

    def _register(self, i: int, rng: random.Random) -> Register:
        status = rng.choices(("12", "2", "3"), (17, 2, 1))[0]
        visit: Visit | None = self.visit(i) if status == "12" else None
        if visit is not None:
            patient, doctor, mode = visit.patient, visit.doctor, visit.mode
            slot = visit.start.replace(minute=visit.start.minute // 30 * 30, second=0)
        else:
            patient = self.w.any_patient(rng)
            doctor = self.doctor_for(patient, rng)
            mode = rng.choice(("1", "3"))
            slot = at(self.day(rng), rng.choice((8, 9, 10, 14, 15)), rng.choice((0, 30)))
        booked = slot - timedelta(minutes=rng.randrange(60, 3 * 24 * 60))
        cancelled = booked + timedelta(minutes=rng.randrange(10, 600)) if status == "2" else None
        if cancelled is not None and cancelled > slot:
            cancelled = slot - timedelta(minutes=5)
        price = Decimal({"231": 50, "232": 30, "233": 20}.get(doctor.title, 10))
        return Register(
            index=i,
            buss_id=f"GH{ymd(booked)}{i:06d}",
            visit=visit,
            patient=patient,
            doctor=doctor,
            mode=mode,
            booked=booked,
            slot=slot,
            status=status,
            cancelled=cancelled,
            order_no=rng.randrange(1, 30),
            price=price,
        )

    # ------------------------------------------------------------------ payments (缴费)

    def payment(self, i: int) -> Payment:
        p: Payment = self._get("payment", i, self._payment)
        return p

    def _payment(self, i: int, rng: random.Random) -> Payment:
        kind = ("rx", "register", "visit", "inspection", "consult")[i % 5]
        fees: list[Fee]
        recipe_id = apply_id = ""
        if kind == "register" and self.register(i).status == "12":
            r = self.register(i)
            btype, buss, patient, doctor = "16", r.buss_id, r.patient, r.doctor
            time = r.booked + timedelta(minutes=rng.randrange(1, 5))
            fees = [Fee("GH001", "互联网挂号费", "01", r.price, Decimal(1))]
        elif kind == "consult" and self.consult(i).answered and self.consult(i).price > 0:
            c = self.consult(i)
            btype, buss, patient, doctor = (
                {"1": "1", "2": "2", "3": "3"}[c.mode],
                c.buss_id,
                c.patient,
                c.doctor,
            )
            time = c.applied + timedelta(minutes=rng.randrange(1, 3))
            fees = [Fee("ZC001", "互联网咨询费", "02", c.price, Decimal(1))]
        elif kind == "rx":
            x = self.rx(i)
            btype, buss, patient, doctor = "5", x.visit.buss_id, x.visit.patient, x.visit.doctor
            recipe_id = x.recipe_id
            time = (x.checked or x.time) + timedelta(minutes=rng.randrange(1, 20))
            cat = {"western": "08", "patent": "09", "herb": "10"}
            fees = [
                Fee(it.drug.code, it.drug.name, cat[it.drug.kind], it.drug.price, it.total)
                for it in x.items
            ]
            if x.delivery == "1":
                fees.append(
                    Fee("PS001", "药品配送费", "12", Decimal(rng.choice((0, 8, 10))), Decimal(1))
                )
        elif kind == "inspection":
            s = self.inspection(i)
            btype, buss, patient, doctor = "7", s.visit.buss_id, s.visit.patient, s.visit.doctor
            apply_id = s.apply_id
            time = s.time + timedelta(minutes=rng.randrange(3, 60))
            fees = [Fee(p.apply_code, p.name, "04", p.price, Decimal(1)) for p in s.panels]
            fees += [Fee(e.apply_code, e.name, "03", e.price, Decimal(1)) for e in s.exams]
        else:
            v = self.visit(i)
            btype, buss, patient, doctor = "4", v.buss_id, v.patient, v.doctor
            time = v.start - timedelta(minutes=rng.randrange(1, 10))
            price = {"231": 30, "232": 20, "233": 15}.get(v.doctor.title, 10)
            fees = [Fee("ZC002", "互联网复诊诊查费", "02", Decimal(price), Decimal(1))]
        total = sum((f.amount for f in fees), Decimal(0))
        insured = patient.pay_type in ("01", "02") and kind in ("rx", "inspection")
        channel = "4" if insured and rng.random() < 0.6 else rng.choice(("1", "2", "2", "3"))
        fund = (
            money(total * Decimal(rng.choice(("0.5", "0.6", "0.7"))))
            if channel == "4"
            else Decimal(0)
        )
        return Payment(
            index=i,
            pay_id=f"JS{ymd(time)}{i:06d}",
            business_type=btype,
            buss_id=buss,
            recipe_id=recipe_id,
            apply_id=apply_id,
            patient=patient,
            doctor=doctor,
            time=time,
            fees=tuple(fees),
            channel=channel,
            fund=fund,
        )  # fmt: skip

    # ------------------------------------------------------------------ appraisals (评价)

    def appraisal(self, i: int) -> Appraisal:
        a: Appraisal = self._get("appraise", i, self._appraisal)
        return a

    def _appraisal(self, i: int, rng: random.Random) -> Appraisal:
        kind = ("visit", "consult", "tele", "visit")[i % 4]
        c, t = self.consult(i), self.tele(i)
        if kind == "consult" and c.answered and c.end is not None:
            btype, buss, patient, doctor, after = (
                {"1": "1", "2": "2", "3": "3"}[c.mode],
                c.buss_id,
                c.patient,
                c.doctor,
                c.end,
            )
        elif kind == "tele" and t.reported is not None:
            btype, buss, patient, doctor, after = (
                _TELE_BUSINESS.get(t.tele_type, "9"),
                t.buss_id,
                t.patient,
                t.doctor,
                t.reported,
            )
        else:
            v = self.visit(i)
            btype, buss, patient, doctor, after = "4", v.buss_id, v.patient, v.doctor, v.end
        satisfaction = rng.choices("54321", (70, 20, 6, 3, 1))[0]
        low = {"5": 90, "4": 80, "3": 60, "2": 40, "1": 10}[satisfaction]
        score = Decimal(rng.randrange(low, low + 10 if satisfaction != "5" else 101)) / 10
        return Appraisal(
            index=i,
            evaluate_id=f"PJ{ymd(after)}{i:06d}",
            business_type=btype,
            buss_id=buss,
            patient=patient,
            doctor=doctor,
            time=after + timedelta(minutes=rng.randrange(10, 2880)),
            satisfaction=satisfaction,
            score=score,
        )  # fmt: skip
