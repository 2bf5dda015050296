"""The confirmation workflow: one transition table, roles, reasons, the green-board condition,
and the full history (a revoked confirmation is marked, never deleted)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.acceptance import service, workflow
from imsp.acceptance.service import Who
from imsp.auth.service import ensure_institution
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import BadRequest, Forbidden
from imsp.standard.model import load_standard
from tests.acceptance.builders import ORG, run


def test_the_table_allows_exactly_its_rows() -> None:
    assert workflow.allowed_actions(None, "applicant") == ["apply"]
    assert workflow.allowed_actions(None, "centre") == []
    assert workflow.allowed_actions("applied", "centre") == ["confirm", "return"]
    assert workflow.allowed_actions("applied", "applicant") == []
    assert workflow.allowed_actions("returned", "applicant") == ["reapply"]
    assert workflow.allowed_actions("confirmed", "centre") == ["revoke"]
    assert workflow.allowed_actions("revoked", "applicant") == ["reapply"]
    with pytest.raises(Forbidden, match="不允许"):
        workflow.step_for("confirmed", "confirm", "centre")
    with pytest.raises(Forbidden, match="无权"):
        workflow.step_for("applied", "confirm", "operator")


def test_apply_return_reapply_confirm_revoke_keeps_every_step(
    settings: Settings, clock: FrozenClock
) -> None:
    async def work(s: AsyncSession) -> list[Any]:
        inst = await ensure_institution(s, org_code=ORG, name="医院", now=clock.now())
        case = await service.case_of(s, institution_id=inst.id, now=clock.now())

        async def step(action: str, role: str, *, green: bool = True, reason: str = "") -> None:
            await workflow.transition(
                s,
                case=case,
                action=action,
                actor=role + "1",
                role=role,
                now=clock.now(),
                board={"green": green},
                green=green,
                missing=[] if green else ["人员信息：已入库记录数：还差 7 条"],
                reason=reason,
            )

        with pytest.raises(BadRequest, match="还差 7 条"):
            await step("apply", "applicant", green=False)
        assert case.status == "new" and case.version == 0
        await step("apply", "applicant")
        with pytest.raises(BadRequest, match="意见"):
            await step("return", "centre")
        await step("return", "centre", reason="处方明细金额与处方不符，请修正后重新上传")
        await step("reapply", "applicant")
        await step("confirm", "centre")
        await step("revoke", "centre", reason="复核不通过")
        assert case.status == "revoked" and case.version == 2
        return [
            (t.action, t.from_status, t.to_status, t.version, t.reason)
            for t in await service.timeline(s, institution_id=inst.id)
        ]

    assert run(settings, work) == [
        ("apply", None, "applied", 1, ""),
        ("return", "applied", "returned", 1, "处方明细金额与处方不符，请修正后重新上传"),
        ("reapply", "returned", "applied", 2, ""),
        ("confirm", "applied", "confirmed", 2, ""),
        ("revoke", "confirmed", "revoked", 2, "复核不通过"),
    ]


def test_operator_scopes_the_required_services(settings: Settings, clock: FrozenClock) -> None:
    async def work(s: AsyncSession) -> list[str]:
        inst = await ensure_institution(s, org_code=ORG, name="医院", now=clock.now())
        await service.set_scope(
            s,
            institution_id=inst.id,
            services=["uploadPrescriptionInfo", "patient", "consult"],
            who=Who("operator1", "operator"),
            now=clock.now(),
            std=load_standard(),
        )
        with pytest.raises(BadRequest, match="不存在"):
            await service.set_scope(
                s,
                institution_id=inst.id,
                services=["nope"],
                who=Who("operator1", "operator"),
                now=clock.now(),
                std=load_standard(),
            )
        board = await service.board_of(
            s, institution_id=inst.id, deps=service.Deps(cfg=settings.acceptance)
        )
        services = next(i for p in board.parts for i in p.items if i.key == "services")
        assert services.threshold == "3 个服务各 ≥ 1 次成功"
        return [i.key for p in board.parts for i in p.items if i.key.startswith("records:")]

    assert run(settings, work) == ["records:patient", "records:prescription", "records:consult"]
