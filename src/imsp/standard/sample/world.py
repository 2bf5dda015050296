"""The generator's shared world: one institution, its departments, staff and patients.

A :class:`World` is a pure function of ``(seed, org_code, org_name, bound, start)``. Every entity
``kind``/``index`` draws from its own ``random.Random`` seeded with those, so entity *i* is the same
whichever dataset asks for it first, and generating the patients of a world never changes its
doctors. Entities are materialised in index order (so uniqueness of ID numbers is decided the same
way every time) and cached.

``bound`` is the requested record count: business records only refer to staff and patients whose
index is below it (and below the pool sizes), so the samples of every dataset generated with the
same count refer only to records that exist in those samples. Staff are the exception below
:data:`MIN_STAFF`: every world has a prescriber and the pharmacist who reviews (the doctor and
department samples then hold at least that many records).

Every world complies with the supervision rules (``imsp.supervision``): each member of staff has
worked at least three years before the first business day (R03, R09) and is covered by the
institution's liability insurance (R07), a child under six is seen by a paediatrician (R12) — a
world without one has no patient that young.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Final

from imsp.standard import checks
from imsp.standard.model import Standard
from imsp.standard.sample import vocab
from imsp.standard.sample.vocab import DeptDef, Hospital, Profile

#: At most this many staff and patients are referred to by business records (a larger count only
#: adds records nobody refers to — a realistic institution, not one doctor per visit).
STAFF_POOL: Final = 60
PATIENT_POOL: Final = 5000
#: Staff referred to however small the count: staff 0 prescribes, staff 1 (the pharmacy's
#: pharmacist) reviews — a prescription needs both, and they must differ (R22, R24).
MIN_STAFF: Final = 2
#: Patients younger than this see a paediatric physician (R12: 诊疗科目 07 儿科, 08, 09).
PAEDIATRIC_AGE: Final = 6
PAEDIATRIC_SUBJECTS: Final = ("07", "08", "09")
#: Days the business events fall on, from the world's start (``span_days`` of the generator).
SPAN_DAYS: Final = 30


class SampleError(ValueError):
    """The generator cannot do what was asked (unknown dataset, invalid institution code …)."""


def rng_for(seed: int, org: str, kind: str, index: int) -> random.Random:
    """A generator for one entity; string seeds hash with SHA-512, stable across processes."""
    return random.Random(f"imsp-sample|{seed}|{org}|{kind}|{index}")  # noqa: S311 - test data


def at(d: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, second)


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# --------------------------------------------------------------------------- identifiers


def idcard(area: str, born: date, seq: int, sex: str) -> str:
    """A GB 11643 resident ID number; the sequence's parity carries the sex (odd = male)."""
    seq = seq - seq % 2 + (1 if sex == "1" else 0)
    body = f"{area}{born:%Y%m%d}{seq:03d}"
    return body + checks.check_digit_gb11643(body)


_ORG_CODE_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_GB11714_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc(area: str, rng: random.Random) -> str:
    """A GB 32100 unified social credit code of a public institution (12…) in ``area``.

    The embedded 9-character organisation code carries its own GB 11714 check character.
    """
    org = "".join(rng.choice("0123456789") for _ in range(8))
    total = sum(int(c) * w for c, w in zip(org, _GB11714_WEIGHTS, strict=True))
    c9 = 11 - total % 11
    body = f"12{area}{org}{'X' if c9 == 10 else '0' if c9 == 11 else c9}"
    check = checks.check_digit_gb32100(body)
    assert check is not None
    return body + check


def mobile(rng: random.Random) -> str:
    return rng.choice(vocab.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def hexid(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}X}"


def person_name(rng: random.Random, sex: str) -> str:
    # Surnames by their published population share (vocab.SURNAME_WEIGHTS): 王 about 7 %.
    surname = rng.choices(vocab.SURNAMES, cum_weights=vocab.SURNAME_CUM_WEIGHTS)[0]
    chars = vocab.MALE_CHARS if sex == "1" else vocab.FEMALE_CHARS
    given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
    return surname + given


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    sex: str
    born: date
    cert_id: str
    mobile: str
    nation: str

    def age(self, day: date) -> int:
        return age_on(self.born, day)


@dataclass(frozen=True, slots=True)
class Place:
    area: str  # county-level region code
    area_name: str  # 河北省石家庄市长安区
    address: str
    phone_prefix: str
    postcode: str


@dataclass(frozen=True, slots=True)
class Org:
    code: str
    name: str
    internet_name: str
    kind: str  # internet_hospital_type: 1 second name, 2 standalone relying on an entity hospital
    place: Place
    phone: str
    founded: date
    licence_no: str
    rely_code: str  # kind 2: the entity hospital's code
    rely_name: str


@dataclass(frozen=True, slots=True)
class Dept:
    index: int
    dept_id: str
    name: str
    parent_id: str
    spec: DeptDef


@dataclass(frozen=True, slots=True)
class Staff:
    index: int
    staff_id: str
    person: Person
    role: str  # physician | pharmacist | nurse | lab | radiologist
    person_type: str
    title: str
    dept: Dept
    work_date: date
    first_unit: Hospital | None  # None: this institution is the first practice site
    first_unit_code: str
    multi_site_start: date | None


@dataclass(frozen=True, slots=True)
class Patient:
    index: int
    patient_id: str
    person: Person
    place: Place
    profile: Profile
    years: int  # years since the chronic condition was diagnosed
    marital: str
    pay_type: str
    card: tuple[str, str]  # (card_type, card_no)
    guardian: Person | None
    guardian_relation: str
    allergy: str
    created: datetime
    real_name_method: str


_HEAD_ROLES: Final = (
    "physician", "pharmacist", "physician", "lab", "physician",
    "radiologist", "physician", "nurse", "physician", "physician",
)  # fmt: skip
_ROLE_CYCLE: Final = (
    "physician", "physician", "nurse", "physician", "pharmacist",
    "physician", "physician", "lab", "physician", "radiologist",
)  # fmt: skip
_TITLES: Final = {  # role → (title codes junior → senior)
    "physician": ("234", "233", "232", "231"),
    "radiologist": ("234", "233", "232", "231"),
    "pharmacist": ("244", "243", "242", "241"),
    "nurse": ("254", "253", "252", "251"),
    "lab": ("264", "263", "262", "261"),
}
_PERSON_TYPES: Final = {
    "physician": "11",
    "radiologist": "11",
    "pharmacist": "31",
    "nurse": "21",
    "lab": "41",
}


def role_of(index: int) -> str:
    return _HEAD_ROLES[index] if index < len(_HEAD_ROLES) else _ROLE_CYCLE[index % 10]


class World:
    """One institution's deterministic world. Build with :func:`imsp.standard.sample.world_for`."""

    def __init__(
        self, std: Standard, *, seed: int, org_code: str, org_name: str | None, bound: int,
        start: date, span_days: int = SPAN_DAYS,
    ) -> None:  # fmt: skip
        if not checks.is_uscc(org_code):
            raise SampleError(
                f"机构代码 {org_code!r} 不是有效的统一社会信用代码（GB 32100 校验失败）"
            )
        if span_days < 1:
            raise SampleError(f"span_days 至少为 1（收到 {span_days}）")
        self.std = std
        self.seed = seed
        self.bound = max(1, bound)
        self.start = start
        #: Business events fall on the ``span_days`` days from ``start``.
        self.span_days = span_days
        self._key = org_code
        self.regions = std.tables["region"].names
        self.counties = tuple(
            c for c in self.regions if c.startswith("13") and not c.endswith("00")
        )
        self._by_city: dict[str, tuple[str, ...]] = {}
        for c in self.counties:
            self._by_city[c[:4]] = (*self._by_city.get(c[:4], ()), c)
        self.org = self._org(org_code, org_name)
        self._depts: list[Dept] = []
        self._staff: list[Staff] = []
        self._patients: list[Patient] = []
        self._ids: set[str] = set()
        self.partners = tuple(self._partner(h, i) for i, h in enumerate(vocab.PARTNERS))

    # ------------------------------------------------------------------ helpers

    def rng(self, kind: str, index: int) -> random.Random:
        return rng_for(self.seed, self._key, kind, index)

    def limit(self, pool: int) -> int:
        return min(self.bound, pool)

    def place(self, rng: random.Random, city: str | None = None) -> Place:
        candidates = self.counties if city is None else self._by_city.get(city[:4], self.counties)
        area = rng.choice(candidates)
        city_code = area[:4] + "00"
        phone, post = vocab.CITY_CODES.get(city_code, ("0311", "050"))
        area_name = f"河北省{self.regions.get(city_code, '')}{self.regions[area]}"
        street = rng.choice(vocab.STREETS)
        address = (
            f"{area_name}{street}{rng.randrange(1, 400)}号{rng.choice(vocab.COMMUNITIES)}"
            f"{rng.randrange(1, 30)}号楼{rng.randrange(1, 6)}单元{rng.randrange(1, 30)}0{rng.randrange(1, 5)}室"
        )
        return Place(area, area_name, address, phone, f"{post}0{rng.randrange(10, 99)}")

    def fixed_phone(self, place: Place, rng: random.Random) -> str:
        return f"{place.phone_prefix}-{rng.randrange(8, 9)}{rng.randrange(10**6, 10**7)}"

    def person(
        self, rng: random.Random, *, sex: str, born: date, seq: range, unique: bool
    ) -> Person:
        area = rng.choice(self.counties)
        while True:
            cert = idcard(area, born, rng.choice(seq), sex)
            if not unique or cert not in self._ids:
                break
            area = rng.choice(self.counties)
        if unique:
            self._ids.add(cert)
        nation = rng.choices(("01", "03", "08", "02"), (92, 4, 3, 1))[0]
        return Person(person_name(rng, sex), sex, born, cert, mobile(rng), nation)

    def birthday(self, rng: random.Random, age: int) -> date:
        """A birthday making the person ``age`` years old on the first day of the window."""
        latest = add_years(self.start, -age)
        return latest - timedelta(days=rng.randrange(1, 365))

    # ------------------------------------------------------------------ the institution

    def _org(self, code: str, name: str | None) -> Org:
        rng = self.rng("organization", 0)
        area = code[2:8]
        if area not in self.regions or not area.startswith("13"):
            area = "130100"
        city = area[:4] + "00"
        place = self.place(rng, city if area != "130000" else "130100")
        if name is None:
            name = (
                "河北省互联网医疗示范医院"
                if area == "130000"
                else f"{self.regions[city]}互联网医疗示范医院"
            )
        kind = "2" if self.seed % 2 else "1"
        rely_name, rely_code = "", ""
        if kind == "2":
            i = rng.randrange(len(vocab.PARTNERS))
            rely_name, rely_code = vocab.PARTNERS[i].name, self._partner(vocab.PARTNERS[i], i)
        founded = date(rng.randrange(1950, 2000), rng.randrange(1, 13), 1)
        licence = f"{code[8:16]}{place.area}{rng.randrange(10, 99)}A1001"
        return Org(
            code=code,
            name=name,
            internet_name=name + "互联网医院" if kind == "1" else name,
            kind=kind,
            place=place,
            phone=self.fixed_phone(place, rng),
            founded=founded,
            licence_no=licence,
            rely_code=rely_code,
            rely_name=rely_name,
        )

    def _partner(self, h: Hospital, index: int) -> str:
        return uscc(h.city[:4] + "02", self.rng("partner", index))

    def partner(self, rng: random.Random) -> tuple[Hospital, str]:
        i = rng.randrange(len(vocab.PARTNERS))
        return vocab.PARTNERS[i], self.partners[i]

    # ------------------------------------------------------------------ departments

    def dept(self, index: int) -> Dept:
        while len(self._depts) <= index:
            self._depts.append(self._make_dept(len(self._depts)))
        return self._depts[index]

    def _make_dept(self, i: int) -> Dept:
        n = len(vocab.DEPARTMENTS)
        if i < n:
            d = vocab.DEPARTMENTS[i]
            return Dept(i, d.dept_id, d.name, "", d)
        clinical = [d for d in vocab.DEPARTMENTS if d.kind == "clinical"]
        base = clinical[(i - n) % len(clinical)]
        ward = (i - n) // len(clinical) + 2
        return Dept(
            i, f"{base.dept_id}{ward:02d}", f"{base.name}（第{ward}诊区）", base.dept_id, base
        )

    # ------------------------------------------------------------------ staff

    def staff(self, index: int) -> Staff:
        while len(self._staff) <= index:
            self._staff.append(self._make_staff(len(self._staff)))
        return self._staff[index]

    @property
    def staff_limit(self) -> int:
        """How many staff (from index 0) business records may refer to."""
        return max(self.limit(STAFF_POOL), MIN_STAFF)

    def staff_with(self, role: str) -> list[Staff]:
        """Staff of a role that business records may refer to (index below the staff limit)."""
        return [s for s in (self.staff(i) for i in range(self.staff_limit)) if s.role == role]

    @cached_property
    def paediatricians(self) -> list[Staff]:
        return [
            s
            for s in self.staff_with("physician")
            if s.dept.spec.subject.startswith(PAEDIATRIC_SUBJECTS)
        ]

    def _staff_dept(self, i: int, role: str) -> Dept:
        kind = {"pharmacist": "pharmacy", "lab": "lab", "radiologist": "imaging"}.get(role)
        if kind is not None:
            return next(self.dept(j) for j, d in enumerate(vocab.DEPARTMENTS) if d.kind == kind)
        clinical = [j for j, d in enumerate(vocab.DEPARTMENTS) if d.kind == "clinical"]
        ordinal = sum(1 for j in range(i) if role_of(j) == role)
        j = clinical[ordinal % len(clinical)]
        return self.dept(j if j <= i else 0)

    def _make_staff(self, i: int) -> Staff:
        rng = self.rng("staff", i)
        role = role_of(i)
        dept = self._staff_dept(i, role)
        head = all(self._staff[j].dept != dept for j in range(i))  # first in the department
        age = (
            rng.randrange(44, 60) if head else rng.randrange(27 if role != "physician" else 31, 58)
        )
        sex = rng.choice("12") if role != "nurse" else rng.choices("12", (1, 9))[0]
        person = self.person(
            rng, sex=sex, born=self.birthday(rng, age), seq=range(500, 900), unique=True
        )
        work = add_years(person.born, rng.randrange(23, 26)) + timedelta(days=rng.randrange(200))
        # at least three years of work before the first business day (R03, R09)
        work = min(work, add_years(self.start, -3) - timedelta(days=30 + i % 90))
        years = age_on(work, self.start)
        titles = _TITLES[role]
        # The mix of professional titles (vocab.TITLE_MIX), capped by the years needed to reach a
        # title (about 5 to 主治, 10 to 副主任, 15 to 主任); department heads are at least 副高.
        drawn = rng.choices(range(4), weights=vocab.TITLE_MIX)[0]
        level = min(drawn, 0 if years < 5 else 1 if years < 10 else 2 if years < 15 else 3)
        title = titles[max(level, 2) if head and years >= 10 else level]
        first: Hospital | None = None
        first_code = self.org.code
        multi_start: date | None = None
        if role == "physician" and not head and rng.random() < 0.2:
            first, first_code = self.partner(rng)
            multi_start = self.start - timedelta(days=rng.randrange(60, 900))
        return Staff(
            index=i,
            staff_id=f"D{10001 + i}",
            person=person,
            role=role,
            person_type=_PERSON_TYPES[role]
            if role != "pharmacist" or dept.spec.subject != "50"
            else "32",
            title=title,
            dept=dept,
            work_date=work,
            first_unit=first,
            first_unit_code=first_code,
            multi_site_start=multi_start,
        )

    # ------------------------------------------------------------------ patients

    def patient(self, index: int) -> Patient:
        while len(self._patients) <= index:
            self._patients.append(self._make_patient(len(self._patients)))
        return self._patients[index]

    def any_patient(self, rng: random.Random) -> Patient:
        return self.patient(rng.randrange(self.limit(PATIENT_POOL)))

    def _make_patient(self, i: int) -> Patient:
        rng = self.rng("patient", i)
        profile = rng.choice(vocab.PROFILES)
        age = rng.randrange(profile.ages[0], profile.ages[1] + 1)
        if age < PAEDIATRIC_AGE and not self.paediatricians:
            # no paediatrician to see a young child: six years older, still within the profile's
            # ages (test_sample_supervision checks that they reach 11)
            age += PAEDIATRIC_AGE
        sex = profile.sex or rng.choice("12")
        person = self.person(
            rng, sex=sex, born=self.birthday(rng, age), seq=range(0, 500), unique=True
        )
        place = self.place(rng, self.org.place.area if rng.random() < 0.6 else None)
        guardian: Person | None = None
        relation = ""
        if age < 14:
            gsex = rng.choice("12")
            gborn = self.birthday(rng, age + rng.randrange(24, 36))
            guardian = self.person(rng, sex=gsex, born=gborn, seq=range(900, 1000), unique=False)
            guardian = Person(
                person.name[0] + guardian.name[1:] if gsex == "1" else guardian.name,
                gsex, gborn, guardian.cert_id, guardian.mobile, person.nation,
            )  # fmt: skip
            relation = "51" if gsex == "1" else "52"
        marital = (
            "10" if age < 23 else rng.choices(("20", "21", "22", "30", "40"), (6, 2, 1, 1, 1))[0]
        )
        pay_type = rng.choices(("01", "02", "07"), (45, 35, 20))[0]
        card_type = rng.choice(("2", "4")) if pay_type != "07" else "4"
        card_no = (
            f"{place.area}{hexid(rng, 8)}{rng.randrange(10**8):08d}"
            if card_type == "4"
            else f"{place.area[:4]}{rng.randrange(10**10):010d}"
        )
        first_day = max(
            self.start - timedelta(days=rng.randrange(30, 900)), person.born + timedelta(days=30)
        )
        created = at(first_day, rng.randrange(8, 21), rng.randrange(60), rng.randrange(60))
        return Patient(
            index=i,
            patient_id=f"P{1000000001 + i}",
            person=person,
            place=place,
            profile=profile,
            years=rng.randrange(1, max(2, min(15, age - profile.ages[0] + 2))),
            marital=marital,
            pay_type=pay_type,
            card=(card_type, card_no),
            guardian=guardian,
            guardian_relation=relation,
            allergy=rng.choices(
                ("", "青霉素过敏", "磺胺类药物过敏", "头孢类药物过敏"), (80, 10, 5, 5)
            )[0],
            created=created,
            real_name_method=rng.choice(("1", "2", "3")),
        )

    # ------------------------------------------------------------------ code table names

    def name_of(self, table: str, code: str) -> str:
        return self.std.tables[table].names[code]

    def names_of(self, table: str, codes: tuple[str, ...]) -> str:
        return "|".join(self.name_of(table, c) for c in codes)
