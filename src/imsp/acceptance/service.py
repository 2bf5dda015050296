"""Use cases of 接入确认: the board of an institution, applying, the centre's decision (with the
report and the production credentials), the operator's scope, video checks, purging test data,
verifying a report. Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance import board as B
from imsp.acceptance import report
from imsp.acceptance.models import AcceptanceCase, AcceptanceReport, AcceptanceTransition
from imsp.acceptance.quality import LogQuality, QualitySource
from imsp.acceptance.workflow import STATES, transition
from imsp.auth.audit import Actor, AuditAction, audit
from imsp.auth.models import Institution
from imsp.auth.service import IssuedCredential, issue_credential
from imsp.config import AcceptanceSettings, Settings
from imsp.errors import BadRequest, NotFound
from imsp.exchange.models import ExchangeLog, Record, RecordVersion
from imsp.standard.model import Standard, load_standard
from imsp.video.acceptance import VideoCheckResult
from imsp.video.acceptance import check_video as video_check


@dataclass(frozen=True, slots=True)
class Deps:
    """What measuring a board needs: the standard, the thresholds and the two sources."""

    cfg: AcceptanceSettings
    std: Standard = field(default_factory=load_standard)
    quality: QualitySource | None = None
    violations: B.ViolationSource = field(default_factory=B.FindingViolations)

    def quality_source(self) -> QualitySource:
        return self.quality if self.quality is not None else LogQuality(self.std)


@dataclass(frozen=True, slots=True)
class Who:
    username: str
    role: str
    institution_id: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    case: AcceptanceCase
    transition: AcceptanceTransition
    report: AcceptanceReport | None = None
    credential: IssuedCredential | None = None  # production credential, shown once


async def institution_of(session: AsyncSession, institution_id: int) -> Institution:
    inst = await session.get(Institution, institution_id)
    if inst is None:
        raise NotFound("机构不存在")
    return inst


async def institution_by_code(session: AsyncSession, org_code: str) -> Institution:
    inst = await session.scalar(select(Institution).where(Institution.org_code == org_code))
    if inst is None:
        raise NotFound(f"机构 {org_code} 不存在")
    return inst


async def case_of(session: AsyncSession, *, institution_id: int, now: datetime) -> AcceptanceCase:
    """The institution's case, created (not applied yet) on first use."""
    case = await session.scalar(
        select(AcceptanceCase).where(AcceptanceCase.institution_id == institution_id)
    )
    if case is None:
        case = AcceptanceCase(
            institution_id=institution_id,
            status="new",
            version=0,
            services=None,
            internet_hospital="",
            vendor="",
            updated_at=now,
        )
        session.add(case)
        await session.flush()
    return case


def services_of(case: AcceptanceCase | None, std: Standard) -> list[str]:
    if case is not None and case.services:
        return list(case.services)
    return B.default_services(std)


async def board_of(session: AsyncSession, *, institution_id: int, deps: Deps) -> B.Board:
    inst = await institution_of(session, institution_id)
    case = await session.scalar(
        select(AcceptanceCase).where(AcceptanceCase.institution_id == institution_id)
    )
    return await B.measure(
        session,
        institution_id=inst.id,
        org_code=inst.org_code,
        institution=inst.name,
        services=services_of(case, deps.std),
        std=deps.std,
        cfg=deps.cfg,
        quality=deps.quality_source(),
        violations=deps.violations,
    )


async def set_scope(
    session: AsyncSession,
    *,
    institution_id: int,
    services: Sequence[str],
    who: Who,
    now: datetime,
    std: Standard,
) -> AcceptanceCase:
    """The operator scopes the services an institution must pass (dataset codes or names)."""
    codes: list[str] = []
    for s in services:
        try:
            codes.append(std.dataset(s).code)
        except KeyError:
            raise BadRequest(f"数据集 {s} 不存在") from None
    if not codes:
        raise BadRequest("至少选择一个必选服务")
    case = await case_of(session, institution_id=institution_id, now=now)
    case.services = sorted(set(codes), key=lambda c: std.datasets[c].number)
    case.updated_at = now
    await audit(
        session,
        Actor(who.username, who.role, who.institution_id),
        AuditAction("acceptance.scope"),
        now,
        institution_id=institution_id,
        detail={"services": case.services},
    )
    return case


async def apply(
    session: AsyncSession,
    *,
    institution_id: int,
    who: Who,
    now: datetime,
    deps: Deps,
    internet_hospital: str = "",
    vendor: str = "",
) -> Decision:
    """申请接入确认 (or apply again after a return or a revocation) — only with a green board."""
    if who.role == "applicant" and who.institution_id != institution_id:
        raise NotFound("机构不存在")
    case = await case_of(session, institution_id=institution_id, now=now)
    internet_hospital, vendor = internet_hospital.strip(), vendor.strip()
    errors = {}
    if not internet_hospital:
        errors["internet_hospital"] = "请填写互联网医院名称"
    if not vendor:
        errors["vendor"] = "请填写承建厂商"
    if errors:
        raise BadRequest("；".join(errors.values()), data={"errors": errors})
    board = await board_of(session, institution_id=institution_id, deps=deps)
    action = "apply" if case.status == "new" else "reapply"
    row = await transition(
        session,
        case=case,
        action=action,
        actor=who.username,
        role=who.role,
        now=now,
        board=board.as_json(),
        green=board.green,
        missing=board.missing(),
    )
    case.internet_hospital, case.vendor = internet_hospital[:100], vendor[:100]
    return Decision(case, row)


async def decide(
    session: AsyncSession,
    *,
    institution_id: int,
    action: str,
    who: Who,
    now: datetime,
    deps: Deps,
    reason: str = "",
) -> Decision:
    """The centre confirms (issues the report and the production credentials), returns with
    comments, or revokes a confirmation (its report is marked revoked, never deleted)."""
    case = await case_of(session, institution_id=institution_id, now=now)
    board = await board_of(session, institution_id=institution_id, deps=deps)
    if action == "confirm" and not board.green:
        raise BadRequest("验收看板尚有未达标项，不能确认：" + "；".join(board.missing()))
    row = await transition(
        session,
        case=case,
        action=action,
        actor=who.username,
        role=who.role,
        now=now,
        board=board.as_json(),
        green=board.green,
        missing=board.missing(),
        reason=reason,
    )
    issued: AcceptanceReport | None = None
    cred: IssuedCredential | None = None
    if action == "confirm":
        issued = await _issue_report(session, case=case, board=board, who=who, now=now, deps=deps)
        inst = await institution_of(session, institution_id)
        cred = await issue_credential(
            session, institution=inst, name="数据上报（正式）", now=now, channel="production"
        )
    elif action == "revoke":
        for r in await reports_of(session, institution_id=institution_id):
            if r.revoked_at is None:
                r.revoked_at, r.revoked_reason = now, row.reason
    await audit(
        session,
        Actor(who.username, who.role, who.institution_id),
        AuditAction(f"acceptance.{action}"),
        now,
        target=issued.number if issued else "",
        institution_id=institution_id,
    )
    return Decision(case, row, issued, cred)


async def _issue_report(
    session: AsyncSession,
    *,
    case: AcceptanceCase,
    board: B.Board,
    who: Who,
    now: datetime,
    deps: Deps,
) -> AcceptanceReport:
    number = report.report_number(case_id=case.id, version=case.version, issued_at=now)
    services = [
        {"code": c, "name": deps.std.datasets[c].name, "service": deps.std.datasets[c].service}
        for c in board.services
    ]
    doc = report.content(
        number=number,
        board=board.as_json(),
        vendor=case.vendor,
        internet_hospital=case.internet_hospital,
        reviewer=who.username,
        issued_at=now,
        services=services,
    )
    pdf = await report.render_pdf(report.html(doc), workers=deps.cfg.report_workers)
    row = AcceptanceReport(
        number=number,
        case_id=case.id,
        institution_id=case.institution_id,
        issued_at=now,
        reviewer=who.username,
        sha256=report.sha256_hex(pdf),
        pdf=pdf,
        content=doc,
        revoked_at=None,
        revoked_reason="",
    )
    session.add(row)
    await session.flush()
    return row


async def reports_of(session: AsyncSession, *, institution_id: int) -> list[AcceptanceReport]:
    return list(
        (
            await session.execute(
                select(AcceptanceReport)
                .where(AcceptanceReport.institution_id == institution_id)
                .order_by(AcceptanceReport.issued_at.desc(), AcceptanceReport.id.desc())
            )
        ).scalars()
    )


async def report_by_id(session: AsyncSession, report_id: int) -> AcceptanceReport:
    row = await session.get(AcceptanceReport, report_id)
    if row is None:
        raise NotFound("验收报告不存在")
    return row


async def verify(session: AsyncSession, *, data: bytes) -> AcceptanceReport | None:
    """The issued report whose stored SHA-256 is that of ``data``; ``None`` for anything else
    (a modified copy, or a file the platform never issued)."""
    return await session.scalar(
        select(AcceptanceReport).where(AcceptanceReport.sha256 == report.sha256_hex(data))
    )


async def timeline(session: AsyncSession, *, institution_id: int) -> list[AcceptanceTransition]:
    return list(
        (
            await session.execute(
                select(AcceptanceTransition)
                .join(AcceptanceCase, AcceptanceCase.id == AcceptanceTransition.case_id)
                .where(AcceptanceCase.institution_id == institution_id)
                .order_by(AcceptanceTransition.at, AcceptanceTransition.id)
            )
        ).scalars()
    )


async def check_video(
    session: AsyncSession,
    *,
    settings: Settings,
    institution_id: int,
    visit_no: str,
    who: Who,
    now: datetime,
) -> VideoCheckResult:
    """The video part: the platform retrieves and plays the video of one test visit at the
    institution's registered video service (``imsp.video``), which stores the evidence. Every
    retrieval is audited."""
    visits = await B.test_visits(session, institution_id=institution_id)
    if visit_no not in visits:
        raise BadRequest(f"就诊流水号 {visit_no} 不是该机构测试通道上报的就诊")
    result = await video_check(
        session,
        settings=settings,
        institution_id=institution_id,
        visit_no=visit_no,
        now=now,
        actor=who.username,
    )
    await audit(
        session,
        Actor(who.username, who.role, who.institution_id),
        AuditAction("video.view"),
        now,
        target=visit_no[:64],
        institution_id=institution_id,
        detail={"purpose": "acceptance", "ok": result.ok},
    )
    return result


async def test_visits(session: AsyncSession, *, institution_id: int, limit: int = 20) -> list[str]:
    """Visit numbers of the institution's test-channel records (candidates for the video check)."""
    return sorted(await B.test_visits(session, institution_id=institution_id))[:limit]


async def purge_test_data(
    session: AsyncSession, *, institution_id: int, who: Who, now: datetime
) -> int:
    """Delete the institution's records whose current version came on the test channel, with
    their version rows. The exchange log and its archive stay (they are the trace)."""
    test_ids = (
        select(Record.id)
        .join(ExchangeLog, ExchangeLog.id == Record.exchange_id)
        .where(Record.institution_id == institution_id, ExchangeLog.channel == B.TEST)
    )
    ids = list((await session.execute(test_ids)).scalars())
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        await session.execute(delete(RecordVersion).where(RecordVersion.record_id.in_(chunk)))
        await session.execute(delete(Record).where(Record.id.in_(chunk)))
    await audit(
        session,
        Actor(who.username, who.role, who.institution_id),
        AuditAction("acceptance.purge_test_data"),
        now,
        institution_id=institution_id,
        detail={"records": len(ids)},
    )
    return len(ids)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the qualification filing (资质管理) shows of an institution's access confirmation."""

    status: str | None
    label: str
    tone: str
    report_number: str = ""
    issued_at: datetime | None = None
    revoked: bool = False


async def confirmation_of(session: AsyncSession, *, institution_id: int) -> Confirmation:
    case = await session.scalar(
        select(AcceptanceCase).where(AcceptanceCase.institution_id == institution_id)
    )
    status = None if case is None or case.status == "new" else case.status
    state = STATES[status]
    reports = await reports_of(session, institution_id=institution_id)
    latest = reports[0] if reports else None
    return Confirmation(
        status=status,
        label=state.label,
        tone=state.tone,
        report_number=latest.number if latest else "",
        issued_at=latest.issued_at if latest else None,
        revoked=latest is not None and latest.revoked_at is not None,
    )
