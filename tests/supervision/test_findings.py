"""The finding workflow (one transition table): the regulator confirms or dismisses, orders
rectification with a deadline, the hospital answers with an attachment, the regulator closes or
reopens; every step is in the finding's history and the audit log; scope and roles are enforced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from imsp.auth.models import AuditEvent
from imsp.config import Settings
from imsp.errors import BadRequest, Forbidden, NotFound
from imsp.supervision import findings, workflow
from imsp.supervision.queries import (
    FindingFilter,
    count_open_by_rule,
    finding_detail,
    list_findings,
)
from tests.supervision.builders import NOW, Platform, run, world


def _violating_world() -> dict[str, list[dict[str, object]]]:
    w = world()
    w["prescription"][0]["recipeCategory"] = "4"  # R19
    w["prescription"][1]["recipeCategory"] = "5"  # R19
    return w


def test_workflow_from_finding_to_closure(settings: Settings) -> None:
    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(_violating_world())
            await p.sweep()
            inst = (await p.institution()).institution_id
            f1, f2 = await p.findings("R19")
            async with p.db.session() as s:
                page = await list_findings(s, filters=FindingFilter(rule_id="R19", status="open"))
                assert page.total == 2
                assert await count_open_by_rule(s) == {"R19": 2}
                await findings.confirm(s, finding_id=f1.id, actor="jg01", now=NOW)
                with pytest.raises(BadRequest):  # a dismissal needs a reason
                    await findings.dismiss(s, finding_id=f2.id, actor="jg01", now=NOW, reason=" ")
                await findings.dismiss(
                    s, finding_id=f2.id, actor="jg01", now=NOW, reason="线下已核实为系统测试数据"
                )
                with pytest.raises(BadRequest):  # a deadline in the past
                    await findings.request_rectification(
                        s, finding_id=f1.id, actor="jg01", now=NOW, due_at=NOW - timedelta(days=1)
                    )
                await findings.request_rectification(
                    s, finding_id=f1.id, actor="jg01", now=NOW, due_at=NOW + timedelta(days=7),
                    text="请说明并整改", assignee="医务科",
                )  # fmt: skip
                with pytest.raises(Forbidden):  # the regulator does not answer for the hospital
                    await findings.act(
                        s, finding_id=f1.id, action="answer", actor="jg01",
                        role=workflow.REGULATOR, now=NOW, text="x",
                    )  # fmt: skip
                with pytest.raises(NotFound):  # another institution's finding does not exist
                    await findings.answer(
                        s, finding_id=f1.id, institution_id=inst + 1, actor="h", now=NOW, text="x"
                    )
                await findings.answer(
                    s, finding_id=f1.id, institution_id=inst, actor="yy01", now=NOW,
                    text="已停用该处方类别并培训医师", attachment="attachments/2025/zhenggai.pdf",
                )  # fmt: skip
                await findings.comment(
                    s, finding_id=f1.id, actor="jg01", role=workflow.REGULATOR, now=NOW, text="收到"
                )
                await findings.close(s, finding_id=f1.id, actor="jg01", now=NOW)
                await findings.reopen(s, finding_id=f1.id, actor="jg01", now=NOW, reason="复查仍有")
                detail = await finding_detail(s, finding_id=f1.id, institution_id=inst)
                assert detail.finding.status == "rectifying"
                assert detail.finding.assignee == "医务科"
                assert [e.action for e in detail.events] == [
                    "raise", "confirm", "rectify", "answer", "comment", "close", "reopen",
                ]  # fmt: skip
                answer = detail.events[3]
                assert answer.actor_role == "applicant"
                assert answer.attachment == "attachments/2025/zhenggai.pdf"
                assert (await finding_detail(s, finding_id=f2.id)).finding.status == "dismissed"
                assert await count_open_by_rule(s) == {"R19": 1}
                audited = (await s.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
                assert "supervision.answer" in audited and "supervision.close" in audited
        finally:
            await p.close()

    run(go())


def test_overdue_and_bulk_confirm(settings: Settings) -> None:
    async def go() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(_violating_world())
            await p.sweep()
            ids = [f.id for f in await p.findings("R19")]
            async with p.db.session() as s:
                done = await findings.bulk_act(
                    s, finding_ids=ids, action="confirm", actor="jg01", role="regulator", now=NOW
                )
                assert [e.to_status for e in done] == ["confirmed", "confirmed"]
                await findings.request_rectification(
                    s, finding_id=ids[0], actor="jg01", now=NOW, due_at=NOW + timedelta(days=1)
                )
                assert await findings.expire_overdue(s, now=NOW + timedelta(hours=1)) == 0
                assert await findings.expire_overdue(s, now=NOW + timedelta(days=2)) == 1
                assert (await finding_detail(s, finding_id=ids[0])).finding.status == "overdue"
            async with p.db.session() as s:  # bulk is all or nothing
                with pytest.raises(Forbidden):
                    await findings.bulk_act(
                        s, finding_ids=ids, action="dismiss", actor="jg01", role="regulator",
                        now=NOW, text="x",
                    )  # fmt: skip
        finally:
            await p.close()

    run(go())


def test_every_transition_leads_to_a_known_state_and_only_system_closes_by_resubmission() -> None:
    for (src, action), step in workflow.TRANSITIONS.items():
        assert src in workflow.STATES and step.target in workflow.STATES, action
    assert workflow.allowed_actions("pending_review", "regulator") == ["confirm", "dismiss"]
    assert workflow.allowed_actions("rectifying", "applicant") == ["answer"]
    assert "resubmitted" not in workflow.allowed_actions("pending_review", "regulator")
