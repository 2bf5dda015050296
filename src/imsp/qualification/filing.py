"""备案登记表: the printable filing record of an approved application, as a PDF.

What the registration authority approved, on one document: the application number, both
institutions' registration data (实体医院 and 互联网医院), the departments, the doctors (ID numbers
masked: the document is printed and passed on), the attachments with their SHA-256, the approved
version, the approval date and who approved it for which body.

The content is read here (``filing_of``: approved applications only); handing it to a user is
``disclosure.filing_record`` (scoped and audited); rendering is ``render_pdf_sync`` (WeasyPrint via
``imsp.pdf``), called through ``imsp.cpu.offload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import Institution
from imsp.clock import format_datetime
from imsp.errors import NotFound
from imsp.pdf import PAGE_CSS, html_to_pdf
from imsp.qualification import fields as F
from imsp.qualification import queries
from imsp.qualification.attachments import KINDS, size_label
from imsp.qualification.models import Application
from imsp.standard.mask import mask

TITLE = "互联网医院资质备案登记表"
ISSUER = "河北省互联网医疗服务监管平台 · 资质管理系统"

_env = Environment(
    loader=PackageLoader("imsp.qualification", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


@dataclass(frozen=True, slots=True)
class Filing:
    number: str
    institution: str
    org_code: str
    kind: str  # 互联网医院设置类型
    profile: list[tuple[str, str, str]]  # (field, 实体医院, 互联网医院)
    dept_headers: list[str]
    departments: list[list[str]]
    doc_headers: list[str]
    doctors: list[list[str]]
    attachments: list[tuple[str, str, str, str]]  # (kind, file name, size, SHA-256)
    version: int
    submitted_at: str
    approved_at: str
    approver: str  # 李审核（登记机关）
    opinion: str

    @property
    def doctor_count(self) -> int:
        return len(self.doctors)


def number_of(app: Application, *, version: int, approved_at: datetime) -> str:
    """冀互医资备〔年〕application-version号 — unique per approved version."""
    year = format_datetime(approved_at)[:4]
    return f"冀互医资备〔{year}〕{app.id:04d}-{version:02d}号"


def _cells(roster: F.Roster, record: dict[str, Any]) -> list[str]:
    return [
        mask(record.get(code))
        if code in roster.personal
        else F.show_value(roster.field(code), record.get(code))
        for code in roster.columns
    ]


async def filing_of(session: AsyncSession, *, app: Application, institution: Institution) -> Filing:
    """The filing record of ``app``; *not found* unless it is approved."""
    decision = await queries.last_decision(session, app=app)
    if app.status != "approved" or decision is None or decision.action != "approve":
        raise NotFound("仅审核通过的申请有备案登记表")
    sub = await queries.submission(session, app=app, version=decision.version)
    snap = sub.snapshot
    profile = snap.get("profile", {})
    entity, internet = profile.get("entity") or {}, profile.get("internet") or {}
    names = await queries.actor_names(session, [decision])
    return Filing(
        number=number_of(app, version=decision.version, approved_at=decision.at),
        institution=institution.name,
        org_code=institution.org_code,
        kind=F.show_value(F.type_field(), profile.get(F.TYPE_FIELD)),
        profile=[
            (f.name, F.show_value(f, entity.get(f.code)), F.show_value(f, internet.get(f.code)))
            for f in F.institution_fields()
        ],
        dept_headers=[F.DEPARTMENTS.field(c).name for c in F.DEPARTMENTS.columns],
        departments=[_cells(F.DEPARTMENTS, r) for r in snap.get("departments", [])],
        doc_headers=[F.DOCTORS.field(c).name for c in F.DOCTORS.columns],
        doctors=[_cells(F.DOCTORS, r) for r in snap.get("doctors", [])],
        attachments=[
            (KINDS.get(a["kind"], a["kind"]), a["name"], size_label(a["size"]), a["sha256"])
            for a in snap.get("attachments", [])
        ],
        version=decision.version,
        submitted_at=format_datetime(sub.submitted_at),
        approved_at=format_datetime(decision.at),
        approver=names.get(decision.actor, decision.actor),
        opinion=decision.reason,
    )


def html(filing: Filing, *, printed_at: datetime) -> str:
    return _env.get_template("filing.html").render(
        f=filing, title=TITLE, issuer=ISSUER, css=PAGE_CSS, printed_at=format_datetime(printed_at)
    )


def render_pdf_sync(filing: Filing, *, printed_at: datetime) -> bytes:
    """The filing record as PDF bytes (CPU-heavy: through ``imsp.cpu.offload``)."""
    return html_to_pdf(html(filing, printed_at=printed_at))
