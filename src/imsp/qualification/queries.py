"""Reads of the qualification domain, with access scoping.

Who sees what:

* an applicant (申请机构) — only its own institution's application, records and files;
* a reviewer (登记机关) and a regulator (监管人员) — every application (regulators read-only;
  read-only is enforced by the transition table and the editing use cases, not here);
* an operator (平台实施方) — no application data.

Anything outside a viewer's scope is reported as *not found*, so guessing identifiers in URLs
reveals nothing. Reads here write nothing: showing attachments and personal data (ID numbers),
which is audited, is ``disclosure``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor
from imsp.auth.models import Institution, PortalUser
from imsp.errors import NotFound
from imsp.qualification.attachments import path_for
from imsp.qualification.diff import Diff, compare
from imsp.qualification.models import Application, Attachment, Submission, Transition

READERS = frozenset({"reviewer", "regulator"})


def _may_read(actor: Actor, app: Application) -> bool:
    if actor.role in READERS:
        return True
    return actor.role == "applicant" and app.institution_id == actor.institution_id


async def application_for(session: AsyncSession, *, actor: Actor, app_id: int) -> Application:
    """Application ``app_id`` if ``actor`` may read it; ``NotFound`` otherwise."""
    app = await session.get(Application, app_id)
    if app is None or not _may_read(actor, app):
        raise NotFound("申请不存在")
    return app


async def institution(session: AsyncSession, *, app: Application) -> Institution:
    inst = await session.get(Institution, app.institution_id)
    assert inst is not None
    return inst


@dataclass(frozen=True, slots=True)
class QueueRow:
    app: Application
    institution: Institution
    submitted_at: datetime | None


def like(text: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching ``text`` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def queue(
    session: AsyncSession,
    *,
    actor: Actor,
    status: str | None,
    offset: int,
    limit: int,
    q: str = "",
) -> tuple[list[QueueRow], int]:
    """Applications for reviewers and regulators (待审核 first in submission order), and the total;
    ``q`` keeps those whose institution name or 组织机构代码 contains it."""
    if actor.role not in READERS:
        return [], 0
    where = [Application.status == status] if status else []
    if q.strip():
        pattern = like(q.strip())
        where.append(
            Institution.name.ilike(pattern, escape="\\")
            | Institution.org_code.ilike(pattern, escape="\\")
        )
    total = (
        await session.scalar(
            select(func.count())
            .select_from(Application)
            .join(Institution, Institution.id == Application.institution_id)
            .where(*where)
        )
        or 0
    )
    last = (
        select(Submission.application_id, func.max(Submission.submitted_at).label("at"))
        .group_by(Submission.application_id)
        .subquery()
    )
    rows = await session.execute(
        select(Application, Institution, last.c.at)
        .join(Institution, Institution.id == Application.institution_id)
        .outerjoin(last, last.c.application_id == Application.id)
        .where(*where)
        .order_by(last.c.at.is_(None), last.c.at, Application.id)
        .offset(offset)
        .limit(limit)
    )
    return [QueueRow(a, i, at) for a, i, at in rows], int(total)


#: The body each role acts for, as the history names it.
BODIES: Final[dict[str, str]] = {
    "operator": "平台实施方",
    "reviewer": "登记机关",
    "regulator": "监管部门",
}


async def actor_names(session: AsyncSession, steps: list[Transition]) -> dict[str, str]:
    """Login name → the person and the body they acted for (``赵敏（河北省…医院）``,
    ``李审核（登记机关）``), so the history never shows bare login names."""
    usernames = {t.actor for t in steps}
    if not usernames:
        return {}
    rows = await session.execute(
        select(PortalUser, Institution)
        .outerjoin(Institution, Institution.id == PortalUser.institution_id)
        .where(PortalUser.username.in_(usernames))
    )
    out: dict[str, str] = {}
    for user, inst in rows:
        body = inst.name if inst is not None else BODIES.get(user.role, "")
        person = user.display_name or user.username
        out[user.username] = f"{person}（{body}）" if body and body != person else person
    return out


async def timeline(session: AsyncSession, *, app: Application) -> list[Transition]:
    rows = await session.scalars(
        select(Transition).where(Transition.application_id == app.id).order_by(Transition.id)
    )
    return list(rows)


async def last_decision(session: AsyncSession, *, app: Application) -> Transition | None:
    """The latest approve/reject of ``app`` (what the applicant must act on)."""
    return await session.scalar(
        select(Transition)
        .where(Transition.application_id == app.id, Transition.action.in_(("approve", "reject")))
        .order_by(Transition.id.desc())
        .limit(1)
    )


async def submission(session: AsyncSession, *, app: Application, version: int) -> Submission:
    sub = await session.scalar(
        select(Submission).where(Submission.application_id == app.id, Submission.version == version)
    )
    if sub is None:
        raise NotFound("该版本不存在")
    return sub


@dataclass(frozen=True, slots=True)
class ReviewView:
    """What the reviewer (or a regulator) sees of one application."""

    app: Application
    institution: Institution
    current: Submission | None
    previous: Submission | None
    diff: Diff | None
    previous_decision: Transition | None
    timeline: list[Transition]


async def review_view(
    session: AsyncSession, *, actor: Actor, app_id: int, version: int | None = None
) -> ReviewView:
    """Application ``app_id`` as submitted (latest version, or ``version``) with the diff
    against the version before it."""
    app = await application_for(session, actor=actor, app_id=app_id)
    inst = await institution(session, app=app)
    steps = await timeline(session, app=app)
    v = version if version is not None else app.version
    current = await submission(session, app=app, version=v) if v > 0 else None
    previous = await submission(session, app=app, version=v - 1) if v > 1 else None
    diff = None
    decision = None
    if current is not None and previous is not None:
        diff = compare(previous.snapshot, current.snapshot, old_version=v - 1, new_version=v)
        decision = next(
            (
                t
                for t in reversed(steps)
                if t.version == v - 1 and t.action in ("approve", "reject")
            ),
            None,
        )
    return ReviewView(app, inst, current, previous, diff, decision, steps)


async def readable_attachment(
    session: AsyncSession, *, actor: Actor, attachment_id: int, data_dir: Path
) -> tuple[Attachment, Application, Path]:
    """The attachment row, its application and its file, if ``actor`` may see them (else
    ``NotFound``). Showing it to the actor is ``disclosure.open_attachment`` (audited)."""
    row = await session.get(Attachment, attachment_id)
    if row is None:
        raise NotFound("附件不存在")
    app = await session.get(Application, row.application_id)
    if app is None or not _may_read(actor, app):
        raise NotFound("附件不存在")
    path = path_for(data_dir, row.sha256)
    if not path.is_file():
        raise NotFound("附件文件不存在")
    return row, app, path
