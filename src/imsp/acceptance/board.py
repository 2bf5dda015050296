"""The acceptance board (验收看板): three parts — HTTP interface, data, video — each item with its
threshold, its measured value, green or red, and what exactly is missing.

Everything is measured on the institution's **test channel** (测试通道): the uploads made with its
test credentials. The thresholds come from ``settings.acceptance`` and carry a version that is
printed with every board and report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance.quality import DatasetQuality, QualitySource
from imsp.config import AcceptanceSettings
from imsp.exchange import archive
from imsp.exchange.ingest import check
from imsp.exchange.models import ExchangeLog, Record
from imsp.standard.model import Standard
from imsp.supervision import queries as supervision_queries
from imsp.video import queries as video_queries

TEST = "test"
TOKEN_SERVICE = "accesstoken"  # noqa: S105 - the service name in the exchange log
#: Base data (基本信息), appraisal (评价) and agreement (用户协议) need fewer records.
SMALL = frozenset({"department", "doctor", "appraise", "agreement"})
#: One record per institution: its key is the institution itself.
SINGLE = frozenset({"organization"})


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    label: str
    threshold: str
    measured: str
    ok: bool | None  # None: not measured here (shown grey, not blocking; said so in the report)
    missing: str = ""


@dataclass(frozen=True, slots=True)
class Part:
    key: str
    title: str
    items: tuple[Item, ...]

    @property
    def ok(self) -> bool:
        return all(i.ok is not False for i in self.items)


@dataclass(frozen=True, slots=True)
class Board:
    org_code: str
    institution: str
    thresholds_version: str
    standard_version: str
    services: tuple[str, ...]
    parts: tuple[Part, ...]
    period: tuple[datetime | None, datetime | None]
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def green(self) -> bool:
        return all(p.ok for p in self.parts)

    def missing(self) -> list[str]:
        return [f"{i.label}：{i.missing}" for p in self.parts for i in p.items if i.ok is False]

    def as_json(self) -> dict[str, Any]:
        return {
            "orgCode": self.org_code,
            "institution": self.institution,
            "green": self.green,
            "thresholdsVersion": self.thresholds_version,
            "standardVersion": self.standard_version,
            "thresholds": self.thresholds,
            "services": list(self.services),
            "period": [p.isoformat() if p else None for p in self.period],
            "parts": [
                {
                    "key": p.key,
                    "title": p.title,
                    "ok": p.ok,
                    "items": [asdict(i) for i in p.items],
                }
                for p in self.parts
            ],
            "missing": self.missing(),
        }


class ViolationSource(Protocol):
    """Open supervision findings on an institution's records of a channel (the supervision
    engine); ``None`` when no engine is wired into this deployment."""

    async def open_violations(
        self, session: AsyncSession, *, institution_id: int, channel: str
    ) -> int | None: ...


class FindingViolations:
    """Open violations (严重程度 violation, 待核实 or 已确认) the supervision engine found on the
    institution's records of the channel."""

    async def open_violations(
        self, session: AsyncSession, *, institution_id: int, channel: str
    ) -> int | None:
        return await supervision_queries.count_open(
            session, institution_id=institution_id, channel=channel, severity="violation"
        )


class NoViolationSource:
    async def open_violations(
        self, session: AsyncSession, *, institution_id: int, channel: str
    ) -> int | None:
        return None


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def min_records(cfg: AcceptanceSettings, dataset: str) -> int:
    if dataset in SINGLE:
        return 1
    return cfg.min_records_small if dataset in SMALL else cfg.min_records


def default_services(std: Standard) -> list[str]:
    """The datasets the seed marks 是（必须提供）: the default scope of an institution."""
    return [d.code for d in std.ordered() if d.mandatory]


async def _interface(
    session: AsyncSession,
    *,
    institution_id: int,
    org_code: str,
    services: Sequence[str],
    std: Standard,
) -> Part:
    log = ExchangeLog
    mine = (log.institution_id == institution_id, log.channel == TEST)
    tokens = list(
        (
            await session.execute(
                select(log.at)
                .where(*mine, log.service == TOKEN_SERVICE, log.code == 200)
                .order_by(log.at)
            )
        ).scalars()
    )
    ok_services = set(
        (
            await session.execute(
                select(log.dataset)
                .where(*mine, log.code == 200, log.success > 0, log.dry_run.is_(False))
                .distinct()
            )
        ).scalars()
    )
    first_upload = await session.scalar(
        select(func.min(log.at)).where(*mine, log.code == 200, log.dataset.is_not(None))
    )
    chunked = await session.scalar(
        select(func.count()).where(*mine, log.code == 200, log.chunked.is_(True))
    )
    renewals = (
        sum(1 for t in tokens if t > first_upload) if first_upload is not None and tokens else 0
    )
    missing = [std.datasets[s].name for s in services if s not in ok_services]
    corrected = await corrected_resends(
        session, institution_id=institution_id, org_code=org_code, std=std
    )
    items = (
        Item(
            "token",
            "授权码获取服务已调用",
            "≥ 1 次成功获取令牌",
            f"{len(tokens)} 次",
            bool(tokens),
            "" if tokens else "尚未用测试通道凭据成功获取访问令牌",
        ),
        Item(
            "services",
            "必选上传服务均调用成功",
            f"{len(services)} 个服务各 ≥ 1 次成功",
            f"{len(services) - len(missing)} / {len(services)}",
            not missing,
            "尚未成功调用：" + "、".join(missing) if missing else "",
        ),
        Item(
            "chunked",
            "分块传输（Transfer-Encoding: chunked）",
            "≥ 1 次分块上传成功",
            f"{chunked or 0} 次",
            bool(chunked),
            "" if chunked else "尚未见到分块传输的上传",
        ),
        Item(
            "renewal",
            "令牌续期",
            "上传开始后 ≥ 1 次重新获取令牌",
            f"{renewals} 次",
            renewals > 0,
            "" if renewals else "尚未见到令牌续期（上传开始后重新获取令牌）",
        ),
        Item(
            "corrected",
            "被拒记录修正后重传",
            "≥ 1 条被拒记录修正后入库",
            f"{corrected} 条",
            corrected > 0,
            "" if corrected else "尚未见到被拒收的记录修正后重新上传并入库",
        ),
    )
    return Part("interface", "HTTP 接口", items)


async def corrected_resends(
    session: AsyncSession, *, institution_id: int, org_code: str, std: Standard
) -> int:
    """Records rejected in a test upload and stored by a later one (the archived bodies of the
    uploads with failures are checked again with the same validator to find their keys)."""
    log = ExchangeLog
    failed = (
        await session.execute(
            select(log.at, log.dataset, log.body)
            .where(
                log.institution_id == institution_id,
                log.channel == TEST,
                log.code == 200,
                log.fail > 0,
                log.dry_run.is_(False),
                log.body.is_not(None),
            )
            .order_by(log.at)
        )
    ).all()
    rejected: dict[tuple[str, str], datetime] = {}
    for at, dataset, body in failed:
        ds = std.datasets.get(dataset or "")
        if ds is None or body is None:
            continue
        try:
            records = archive_records(body)
        except ValueError:
            continue
        checked = check(ds, records, org_code=org_code, encode_time=str)
        for r in checked.results:
            if r["msgCode"] != 200 and r.get("key"):
                rejected.setdefault((ds.code, str(r["key"])), at)
    if not rejected:
        return 0
    count = 0
    for (dataset, key), at in rejected.items():
        later = await session.scalar(
            select(func.count()).where(
                Record.institution_id == institution_id,
                Record.dataset == dataset,
                Record.key == key,
                Record.updated_at > at,
            )
        )
        count += bool(later)
    return count


def archive_records(stored: bytes) -> list[Any]:
    try:
        body = archive.restore(stored)
    except Exception as exc:  # an archived body that does not restore is simply not counted
        raise ValueError("unreadable archive") from exc
    doc = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    return [doc] if isinstance(doc, dict) else list(doc)


def _data(
    quality: dict[str, DatasetQuality],
    *,
    services: Sequence[str],
    std: Standard,
    cfg: AcceptanceSettings,
    violations: int | None,
) -> Part:
    items: list[Item] = []
    for code in services:
        name = std.datasets[code].name
        q = quality.get(code)
        n = min_records(cfg, code)
        accepted = q.stored if q else 0  # distinct records stored, not deliveries
        items.append(
            Item(
                f"records:{code}",
                f"{name}：已入库记录数",
                f"≥ {n} 条",
                f"{accepted} 条",
                accepted >= n,
                "" if accepted >= n else f"还差 {n - accepted} 条",
            )
        )
        for key, label, value, floor in (
            ("validity", "有效率", q.validity if q else None, cfg.validity),
            ("completeness", "建议项完整率", q.completeness if q else None, cfg.completeness),
            (
                "reference",
                "关联完整率",
                q.reference_integrity if q else None,
                cfg.reference_integrity,
            ),
        ):
            good = value is not None and value >= floor
            items.append(
                Item(
                    f"{key}:{code}",
                    f"{name}：{label}",
                    f"≥ {floor * 100:.0f}%",
                    pct(value),
                    good,
                    ""
                    if good
                    else ("尚无数据" if value is None else f"{pct(value)} 低于 {floor * 100:.0f}%"),
                )
            )
    items.append(
        Item(
            "violations",
            "测试数据无未处理的监管违规",
            "0 条",
            "未接入监管规则引擎" if violations is None else f"{violations} 条",
            None if violations is None else violations == 0,
            "" if not violations else f"有 {violations} 条未处理的监管违规",
        )
    )
    return Part("data", "数据", tuple(items))


async def test_visits(session: AsyncSession, *, institution_id: int) -> set[str]:
    """Visit numbers (就诊流水号) of the institution's records stored from the test channel."""
    rows = await session.execute(
        select(Record.visit_no)
        .join(ExchangeLog, ExchangeLog.id == Record.exchange_id)
        .where(
            Record.institution_id == institution_id,
            ExchangeLog.channel == TEST,
            Record.visit_no.is_not(None),
        )
        .distinct()
    )
    return {v for v in rows.scalars() if v}


async def _video(session: AsyncSession, *, institution_id: int) -> Part:
    """The video part: the platform found, played and verified (``imsp.video.acceptance``
    ``check_video``) the video of a visit that is one of the institution's test visits."""
    checks = await video_queries.checks_of(session, institution_id, limit=200)
    visits = await test_visits(session, institution_id=institution_id) if checks else set()
    good = next((c for c in checks if c.ok and c.visit_no in visits), None)
    if good is not None:
        measured = f"已调阅并播放就诊 {good.visit_no} 的视频 {good.video_id}（{good.message}）"
        missing = ""
    elif checks:
        last = checks[0]
        if last.ok:
            measured = f"就诊 {last.visit_no} 不是本机构测试通道上报的就诊"
        else:
            measured = f"调阅就诊 {last.visit_no} 的视频失败：{last.message}"
        missing = "尚未成功调阅测试就诊的视频"
    else:
        measured, missing = "尚未调阅", "平台尚未调阅并播放任何测试就诊的视频"
    item = Item(
        "video",
        "问诊视频调阅",
        "平台调阅并播放 1 次测试就诊的视频",
        measured,
        good is not None,
        missing,
    )
    return Part("video", "问诊视频", (item,))


async def period(session: AsyncSession, *, institution_id: int) -> tuple[Any, Any]:
    log = ExchangeLog
    row = (
        await session.execute(
            select(func.min(log.at), func.max(log.at)).where(
                log.institution_id == institution_id,
                log.channel == TEST,
                log.dataset.is_not(None),
                log.code == 200,
            )
        )
    ).one()
    return row[0], row[1]


async def measure(
    session: AsyncSession,
    *,
    institution_id: int,
    org_code: str,
    institution: str,
    services: Sequence[str],
    std: Standard,
    cfg: AcceptanceSettings,
    quality: QualitySource,
    violations: ViolationSource,
) -> Board:
    """The board of one institution, measured now."""
    q = await quality.per_dataset(session, institution_id=institution_id, channel=TEST)
    v = await violations.open_violations(session, institution_id=institution_id, channel=TEST)
    parts = (
        await _interface(
            session,
            institution_id=institution_id,
            org_code=org_code,
            services=services,
            std=std,
        ),
        _data(q, services=services, std=std, cfg=cfg, violations=v),
        await _video(session, institution_id=institution_id),
    )
    return Board(
        org_code=org_code,
        institution=institution,
        thresholds_version=cfg.thresholds_version,
        standard_version=std.version,
        services=tuple(services),
        parts=parts,
        period=await period(session, institution_id=institution_id),
        thresholds={
            "minRecords": cfg.min_records,
            "minRecordsSmall": cfg.min_records_small,
            "validity": cfg.validity,
            "completeness": cfg.completeness,
            "referenceIntegrity": cfg.reference_integrity,
        },
    )
