"""Builders for qualification tests: valid registration data and files, and seeded accounts.

Values come from the Data Standard's own examples where it has them, so a change to the standard
that makes its examples invalid shows up here too.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import service as auth
from imsp.auth.audit import Actor
from imsp.auth.models import Institution
from imsp.config import Settings
from imsp.qualification import fields as F
from imsp.qualification import registration
from imsp.qualification import roster as records
from imsp.qualification.attachments import Upload, add_attachment
from imsp.qualification.models import Application
from imsp.qualification.registration import allocate_applicant, open_application
from tests.support.database import run

ORG = "12130000MB1A2B3C4R"  # the demo institution (GB 32100 check digit R)
ORG2 = "12130000MB1A2B3C5W"
ORG_NAME = "河北省互联网医疗示范医院"
OPERATOR = Actor("operator", "operator")
DOCTOR_ID2 = "130102198512122348"  # valid GB 11643; female, born 1985-12-12


def profile(org_code: str = ORG, **changes: str) -> dict[str, Any]:
    """A valid 机构注册 form (setting type 1: the internet hospital is the second name).
    ``changes`` use dotted names: ``profile(**{"entity.areaCode": "999999"})``."""
    entity = {
        "organID": org_code,
        "organName": ORG_NAME,
        "licenseName": ORG_NAME,
        "licenseNo": "40170028613010211A1001",
        "areaCode": "130102",
        "categoryId": "A100",
        "levelId": "3",
        "grade": "1",
        "foundDate": "1950-10-01",
        "address": "河北省石家庄市长安区和平西路348号",
        "legalRepresentative": "张建国",
        "legalPhone": "0311-85988888",
        "contactName": "赵敏",
        "contactPhone": "13831100001",
    }
    internet = dict(entity, organName=ORG_NAME + "互联网医院")
    data: dict[str, Any] = {F.TYPE_FIELD: "1", "entity": entity, "internet": internet}
    for key, value in changes.items():
        if "." in key:
            section, code = key.split(".", 1)
            data[section] = dict(data[section], **{code: value})
        else:
            data[key] = value
    return data


def form_of(data: dict[str, Any]) -> dict[str, str]:
    """The 机构注册 form fields as the browser posts them."""
    out = {F.TYPE_FIELD: data[F.TYPE_FIELD]}
    for section in F.SECTIONS:
        for code, value in data[section].items():
            out[f"{section}.{code}"] = value
    return out


def example(roster: F.Roster, **changes: Any) -> dict[str, Any]:
    """A valid department/doctor: the standard's example record, with ``changes``."""
    record = {f.code: f.example for f in roster.fields}
    record.update(changes)
    return record


def department(**changes: Any) -> dict[str, Any]:
    """The example department (with its own introduction: an unchanged template sample row is
    skipped by the importer), a first-level one: the example's 上级科室 ``03`` is not registered."""
    return example(
        F.DEPARTMENTS, **{"deptIntro": "慢性病互联网复诊", "parentDeptID": None, **changes}
    )


def doctor(**changes: Any) -> dict[str, Any]:
    return example(F.DOCTORS, **{"caCertSN": "2A0F1C3D5E7B9A12", **changes})


def second_doctor() -> dict[str, Any]:
    return doctor(
        doctorId="D20002",
        doctorName="王丽",
        doctorCertID=DOCTOR_ID2,
        sex="2",
        birthday="1985-12-12",
        mobile="13903110002",
        titleCode="233",
        titleName="主治医师",
        qualificationCertNo="200913110130102198512122348",
        practiceCertNo="110130100022222",
        doctorWorkDate="2010-07-01",
        doctorYears=15,
    )


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, grey) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def pdf(text: str = "Approval") -> bytes:
    """A minimal valid one-page PDF."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


@dataclass(frozen=True, slots=True)
class Applicant:
    username: str
    password: str
    institution_id: int
    application_id: int
    org_code: str


def make_applicant(
    settings: Settings,
    now: datetime,
    *,
    org_code: str = ORG,
    username: str = "hospital",
    name: str = ORG_NAME,
) -> Applicant:
    """An applicant account allocated by the operator, with its (draft) application."""

    async def work(session: AsyncSession) -> Applicant:
        issued = await allocate_applicant(
            session,
            actor=OPERATOR,
            org_code=org_code,
            org_name=name,
            username=username,
            display_name=name,
            now=now,
        )
        assert issued.user.institution_id is not None
        app = await open_application(
            session, institution_id=issued.user.institution_id, actor=OPERATOR, now=now
        )
        return Applicant(username, issued.password, issued.user.institution_id, app.id, org_code)

    return run(settings, work)


def make_user(
    settings: Settings, now: datetime, *, username: str, role: str, password: str = "Passw0rd-123"
) -> str:
    """A staff account (reviewer, regulator, operator) that need not change its password."""

    async def work(session: AsyncSession) -> None:
        await auth.create_portal_user(
            session,
            username=username,
            password=password,
            role=role,
            now=now,
            display_name=username,
            must_change_password=False,
        )

    run(settings, work)
    return password


def make_complete_applicant(
    settings: Settings,
    now: datetime,
    *,
    org_code: str = ORG,
    username: str = "hospital",
    name: str = ORG_NAME,
) -> Applicant:
    """An applicant whose application has everything a submission needs (not yet submitted)."""
    who = make_applicant(settings, now, org_code=org_code, username=username, name=name)

    async def fill(session: AsyncSession) -> None:
        app, inst = await load(session, who.application_id)
        raw = profile(org_code, **{"entity.organName": name, "internet.organID": org_code})
        await registration.save_profile(session, app=app, institution=inst, raw=raw, now=now)
        for kind, content in (("license", png()), ("approval", pdf())):
            await add_attachment(
                session,
                app=app,
                kind=kind,
                upload=Upload(f"{kind}.bin", content),
                uploader=who.username,
                data_dir=settings.data_dir,
                max_bytes=settings.portal.max_upload_bytes,
                now=now,
            )
        await records.save_record(
            session, app=app, institution=inst, roster=F.DEPARTMENTS, raw=department(), now=now
        )
        await records.save_record(
            session, app=app, institution=inst, roster=F.DOCTORS, raw=doctor(), now=now
        )

    run(settings, fill)
    return who


def submit(settings: Settings, who: Applicant, now: datetime) -> None:
    async def work(session: AsyncSession) -> None:
        app, inst = await load(session, who.application_id)
        actor = Actor(who.username, "applicant", who.institution_id)
        await registration.submit(session, app=app, institution=inst, actor=actor, now=now)

    run(settings, work)


async def load(session: AsyncSession, app_id: int) -> tuple[Application, Institution]:
    app = await session.get(Application, app_id)
    assert app is not None
    inst = await session.get(Institution, app.institution_id)
    assert inst is not None
    return app, inst
