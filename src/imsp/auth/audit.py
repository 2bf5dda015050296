"""The audit log: who did what, to what, when — one helper, one catalogue of actions.

Every change to credentials and accounts, every sign-in, every review decision and every viewing
of personal data, attachments or archived request bodies is written here (《个人信息保护法》
第五十一条、《互联网诊疗监管细则（试行）》: 调阅留痕). The row is added to the caller's unit of
work, so it commits (or rolls back) with what it records.

Action names are dotted, ``<subject>.<verb>``; the catalogue is :class:`AuditAction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import AuditEvent, PortalUser


class AuditAction(StrEnum):
    """Every action the audit log records (stored as its value)."""

    CREDENTIAL_CREATE = "credential.create"
    CREDENTIAL_ROTATE = "credential.rotate"
    CREDENTIAL_REVOKE = "credential.revoke"
    ACCOUNT_CREATE = "account.create"
    ACCOUNT_RESET_PASSWORD = "account.reset_password"  # noqa: S105 — an action, not a secret
    ACCOUNT_ENABLE = "account.enable"
    ACCOUNT_DISABLE = "account.disable"
    ACCOUNT_LOCK = "account.lock"
    ACCOUNT_UNLOCK = "account.unlock"
    ACCOUNT_CHANGE_PASSWORD = "account.change_password"  # noqa: S105 — an action, not a secret
    LOGIN_SUCCESS = "login.success"
    LOGIN_FAILURE = "login.failure"
    LOGIN_REFUSE = "login.refuse"
    LOGOUT = "login.logout"
    QUALIFICATION_SUBMIT = "qualification.submit"
    QUALIFICATION_RESUBMIT = "qualification.resubmit"
    QUALIFICATION_APPROVE = "qualification.approve"
    QUALIFICATION_REJECT = "qualification.reject"
    QUALIFICATION_WITHDRAW = "qualification.withdraw"
    ATTACHMENT_VIEW = "attachment.view"
    ATTACHMENT_DOWNLOAD = "attachment.download"
    PERSONAL_DATA_VIEW = "personal_data.view"
    EXCHANGE_BODY_EXPORT = "exchange.body_export"
    FINDING_CONFIRM = "finding.confirm"
    FINDING_DISMISS = "finding.dismiss"
    FINDING_RECTIFY = "finding.rectify"
    FINDING_ANSWER = "finding.answer"
    FINDING_CLOSE = "finding.close"
    FINDING_REOPEN = "finding.reopen"
    FINDING_ASSIGN = "finding.assign"
    FINDING_COMMENT = "finding.comment"
    VIDEO_ENDPOINT = "video.endpoint"
    VIDEO_SEARCH = "video.search"
    VIDEO_PLAY = "video.play"
    VIDEO_ERROR = "video.error"
    VIDEO_VIEW = "video.view"
    EXCHANGE_VIEW = "exchange.view"
    ACCEPTANCE_SCOPE = "acceptance.scope"
    ACCEPTANCE_APPLY = "acceptance.apply"
    ACCEPTANCE_REAPPLY = "acceptance.reapply"
    ACCEPTANCE_CONFIRM = "acceptance.confirm"
    ACCEPTANCE_RETURN = "acceptance.return"
    ACCEPTANCE_REVOKE = "acceptance.revoke"
    ACCEPTANCE_PURGE_TEST_DATA = "acceptance.purge_test_data"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a portal user (``kind="user"``) or an operator's command (``kind="system"``)."""

    username: str
    role: str = ""
    institution_id: int | None = None
    client_addr: str = ""
    kind: Literal["user", "system"] = "user"


#: The operator at the command line (``imsp credentials …``, ``imsp exchange …``).
CLI = Actor("cli", kind="system")


def on_user(user: PortalUser) -> dict[str, Any]:
    """The ``target`` and ``institution_id`` of an event about a portal account."""
    return {"target": f"portal_user:{user.id}", "institution_id": user.institution_id}


def as_actor(user: PortalUser, client_addr: str = "") -> Actor:
    """A signed-in portal user as the one who acts."""
    return Actor(user.username, user.role, user.institution_id, client_addr)


async def audit(
    session: AsyncSession,
    actor: Actor,
    action: AuditAction,
    now: datetime,
    *,
    target: str = "",
    institution_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit event to ``session``'s unit of work."""
    session.add(
        AuditEvent(
            at=now,
            actor=actor.username[:60],
            actor_kind=actor.kind,
            action=action.value,
            target=target,
            institution_id=institution_id,
            client_addr=actor.client_addr,
            detail=detail or {},
        )
    )
