"""The events of the generator's world as plain values (built by :mod:`.business`), and the
texts they carry: signature values, agreement bodies.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from imsp.standard.sample.vocab import Drug, Exam, Hospital, Panel
from imsp.standard.sample.world import Patient, Person, Staff

CENT: Final = Decimal("0.01")


def money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def ymd(t: datetime | date) -> str:
    return f"{t:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Someone named in a record, with an ID number only when they are a filed staff member."""

    name: str
    cert_id: str = ""


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Visit:
    index: int
    buss_id: str
    case_no: str
    patient: Patient
    doctor: Staff
    first: bool
    mode: str  # service_mode
    start: datetime
    end: datetime
    tcm: bool  # seen in the TCM department: TCM diagnosis and decoction pieces
    regimen: tuple[Drug, ...]
    text: dict[str, Any]  # template variables

    @property
    def icd(self) -> tuple[str, ...]:
        return self.patient.profile.icd


@dataclass(frozen=True, slots=True)
class RxItem:
    detail_id: str
    drug: Drug
    dosage: str
    days: int
    total: Decimal
    amount: Decimal
    batch: str


@dataclass(frozen=True, slots=True)
class Rx:
    index: int
    recipe_id: str
    unique_id: str
    visit: Visit
    pharmacist: Staff | None
    time: datetime
    checked: datetime | None
    recipe_type: str
    packets: int | None
    long_term: bool
    period: int
    items: tuple[RxItem, ...]
    delivery: str
    dispatched: datetime
    firm: str
    courier: str
    sign: str
    ca_sn: str

    @property
    def total(self) -> Decimal:
        return sum((i.amount for i in self.items), Decimal(0))


@dataclass(frozen=True, slots=True)
class Inspection:
    index: int
    apply_id: str
    visit: Visit
    lab: bool
    time: datetime
    panels: tuple[Panel, ...]
    exams: tuple[Exam, ...]

    @property
    def total(self) -> Decimal:
        prices = [p.price for p in self.panels] + [e.price for e in self.exams]
        return sum(prices, Decimal(0))


@dataclass(frozen=True, slots=True)
class LabReport:
    index: int
    report_id: str
    inspection: Inspection
    panel: Panel
    specimen_no: str
    sampled: datetime
    received: datetime
    tested: datetime
    reported: datetime
    audited: datetime
    tester: Actor
    auditor: Actor
    results: tuple[tuple[Any, ...], ...]  # (analyte, value text, flag)


@dataclass(frozen=True, slots=True)
class ImagingReport:
    index: int
    report_id: str
    inspection: Inspection | None
    visit: Visit
    exam: Exam
    abnormal: bool
    examined: datetime
    reported: datetime
    audited: datetime
    technician: Actor
    reporter: Actor
    auditor: Actor
    uid: str


@dataclass(frozen=True, slots=True)
class Consult:
    index: int
    buss_id: str
    patient: Patient
    doctor: Staff
    mode: str
    attribute: str
    applied: datetime
    answered: bool
    start: datetime | None
    end: datetime | None
    price: Decimal
    channel: str
    question: str
    answer: str
    refusal: tuple[str, datetime, str] | None


@dataclass(frozen=True, slots=True)
class Tele:
    index: int
    buss_id: str
    patient: Patient
    doctor: Staff
    tele_type: str
    status: str
    partner: Hospital
    partner_code: str
    invited: tuple[tuple[Person, str], ...]  # (doctor, title)
    applied: datetime
    planned: datetime | None
    start: datetime | None
    end: datetime | None
    reported: datetime | None
    cancelled: datetime | None
    exam: Exam
    fee: Decimal


@dataclass(frozen=True, slots=True)
class Register:
    index: int
    buss_id: str
    visit: Visit | None  # None: cancelled or missed, no visit followed
    patient: Patient
    doctor: Staff
    mode: str
    booked: datetime
    slot: datetime
    status: str
    cancelled: datetime | None
    order_no: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class Fee:
    code: str
    name: str
    category: str
    unit_price: Decimal
    quantity: Decimal

    @property
    def amount(self) -> Decimal:
        return money(self.unit_price * self.quantity)


@dataclass(frozen=True, slots=True)
class Payment:
    index: int
    pay_id: str
    business_type: str
    buss_id: str
    recipe_id: str
    apply_id: str
    patient: Patient
    doctor: Staff
    time: datetime
    fees: tuple[Fee, ...]
    channel: str
    fund: Decimal

    @property
    def total(self) -> Decimal:
        return sum((f.amount for f in self.fees), Decimal(0))


@dataclass(frozen=True, slots=True)
class Appraisal:
    index: int
    evaluate_id: str
    business_type: str
    buss_id: str
    patient: Patient
    doctor: Staff
    time: datetime
    satisfaction: str
    score: Decimal


def signature(rng: random.Random) -> str:
    """A plausible Base64 PKCS#7 signature value (random bytes, not a real signature)."""
    return (
        "MIIGpQYJKoZIhvcNAQcCoIIGljCCBpICAQExDzAN" + base64.b64encode(rng.randbytes(162)).decode()
    )


def agreement_text(kind: str, org: str, internet: str, version: str) -> str:
    """The body of a user agreement of ``kind`` (protocol_type)."""
    intro = {
        "1": f"欢迎使用{internet}。本协议是您与{org}之间就使用互联网诊疗服务所订立的协议。",
        "2": f"{org}深知个人信息对您的重要性，将依照《中华人民共和国个人信息保护法》保护您的个人信息与健康信息。",
        "3": f"您即将在{internet}接受互联网复诊服务。请在就诊前仔细阅读本知情同意书。",
        "4": f"本协议由{org}与入驻{internet}提供互联网诊疗服务的医师签订。",
        "5": f"您即将通过{internet}接受远程医疗服务，由受邀医疗机构的医师提供会诊意见。",
        "9": f"本说明适用于{internet}提供的各项服务。",
    }[kind]
    body = (
        "一、互联网诊疗仅限为部分常见病、慢性病患者提供复诊服务，首诊患者须到实体医疗机构就诊。",
        "二、您应提供真实、准确的身份信息与线下就诊病历资料，并完成实名认证；未满 6 周岁的儿童须由监护人陪同。",
        "三、医师根据您提供的资料作出诊疗判断，如病情变化或不适宜互联网诊疗，医师将终止服务并建议您线下就诊。",
        "四、在线处方经药师审核后方可调配与配送；麻醉药品、精神药品等特殊管理药品不得在线开具。",
        "五、诊疗过程的图文、音视频记录将依法保存不少于 3 年，并按规定上传至河北省互联网医疗服务监管平台。",
        "六、我们采取符合网络安全等级保护第三级要求的措施保护您的信息，未经您同意不会向第三方提供。",
    )
    return "\n".join((intro, *body, f"本文本版本 {version}，自发布之日起生效。"))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
