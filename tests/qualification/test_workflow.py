"""The review workflow is one transition table; every other move is refused and changes nothing."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.audit import Actor
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import BadRequest, Forbidden
from imsp.qualification import registration, review
from imsp.qualification.models import Submission, Transition
from imsp.qualification.workflow import (
    STATES,
    TRANSITIONS,
    allowed_actions,
    ensure_editable,
    step_for,
)
from tests.qualification import builders as b

REVIEWER = Actor("reviewer1", "reviewer")
REGULATOR = Actor("regulator1", "regulator")
ACTIONS = ("open", "submit", "approve", "reject", "resubmit", "withdraw")
ROLES = ("operator", "applicant", "reviewer", "regulator")


def test_transition_table_is_exactly_the_documented_workflow() -> None:
    assert {k: (s.target, sorted(s.roles)) for k, s in TRANSITIONS.items()} == {
        (None, "open"): ("draft", ["applicant", "operator"]),
        ("draft", "submit"): ("submitted", ["applicant"]),
        ("submitted", "approve"): ("approved", ["reviewer"]),
        ("submitted", "reject"): ("rejected", ["reviewer"]),
        ("rejected", "resubmit"): ("submitted", ["applicant"]),
        ("submitted", "withdraw"): ("withdrawn", ["applicant"]),
        ("withdrawn", "resubmit"): ("submitted", ["applicant"]),
    }
    assert {s.target for s in TRANSITIONS.values()} <= set(STATES)


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s, a in itertools.product([None, *STATES], ACTIONS) if (s, a) not in TRANSITIONS],
)
def test_moves_outside_the_table_are_forbidden_for_every_role(
    status: str | None, action: str
) -> None:
    for role in ROLES:
        with pytest.raises(Forbidden):
            step_for(status, action, role)


@pytest.mark.parametrize(("key", "step"), list(TRANSITIONS.items()))
def test_only_the_listed_roles_may_take_a_step(key: tuple[str | None, str], step: object) -> None:
    status, action = key
    for role in ROLES:
        if role in TRANSITIONS[key].roles:
            assert step_for(status, action, role) is TRANSITIONS[key]
            assert action in allowed_actions(status, role)
        else:
            with pytest.raises(Forbidden, match="无权"):
                step_for(status, action, role)


def test_regulators_can_take_no_step_at_all() -> None:
    assert all(allowed_actions(s, "regulator") == [] for s in [None, *STATES])


def test_only_draft_rejected_and_withdrawn_applications_are_editable() -> None:
    assert {s for s, state in STATES.items() if state.editable} == {
        "draft",
        "rejected",
        "withdrawn",
    }


# --------------------------------------------------------------------------- through the use cases


def _complete(settings: Settings, clock: FrozenClock) -> b.Applicant:
    return b.make_complete_applicant(settings, clock.now())


def _submit(settings: Settings, who: b.Applicant, now: datetime) -> None:
    async def work(session: AsyncSession) -> None:
        app, inst = await b.load(session, who.application_id)
        actor = Actor(who.username, "applicant", who.institution_id)
        await registration.submit(session, app=app, institution=inst, actor=actor, now=now)

    b.run(settings, work)


def _decide(
    settings: Settings,
    who: b.Applicant,
    action: str,
    now: datetime,
    actor: Actor = REVIEWER,
    reason: str = "",
    **field_reasons: str,
) -> None:
    async def work(session: AsyncSession) -> None:
        await review.decide(
            session,
            app_id=who.application_id,
            action=action,
            actor=actor,
            now=now,
            reason=reason,
            field_reasons=field_reasons,
        )

    b.run(settings, work)


def _status(settings: Settings, who: b.Applicant) -> tuple[str, int]:
    async def work(session: AsyncSession) -> tuple[str, int]:
        app, _ = await b.load(session, who.application_id)
        return app.status, app.version

    return b.run(settings, work)


def test_submit_reject_resubmit_approve_records_every_transition(
    settings: Settings, clock: FrozenClock
) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    assert _status(settings, who) == ("submitted", 1)
    clock.advance(hours=2)
    _decide(
        settings,
        who,
        "reject",
        clock.now(),
        reason="许可证登记号不一致",
        **{"entity.licenseNo": "与许可证原件不符"},
    )
    assert _status(settings, who) == ("rejected", 1)
    clock.advance(hours=1)
    _submit(settings, who, clock.now())
    assert _status(settings, who) == ("submitted", 2)
    clock.advance(hours=1)
    _decide(settings, who, "approve", clock.now())
    assert _status(settings, who) == ("approved", 2)

    async def read(session: AsyncSession) -> tuple[list[Transition], list[Submission]]:
        steps = await session.scalars(select(Transition).order_by(Transition.id))
        subs = await session.scalars(select(Submission).order_by(Submission.version))
        return list(steps), list(subs)

    steps, subs = b.run(settings, read)
    assert [(t.action, t.from_status, t.to_status, t.version, t.actor) for t in steps] == [
        ("open", None, "draft", 0, "operator"),
        ("submit", "draft", "submitted", 1, "hospital"),
        ("reject", "submitted", "rejected", 1, "reviewer1"),
        ("resubmit", "rejected", "submitted", 2, "hospital"),
        ("approve", "submitted", "approved", 2, "reviewer1"),
    ]
    assert steps[2].reason == "许可证登记号不一致"
    assert steps[2].field_reasons == {"entity.licenseNo": "与许可证原件不符"}
    assert steps[2].at > steps[1].at
    assert [s.version for s in subs] == [1, 2]


def test_rejecting_without_a_reason_is_refused_and_changes_nothing(
    settings: Settings, clock: FrozenClock
) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    with pytest.raises(BadRequest, match="驳回原因"):
        _decide(settings, who, "reject", clock.now(), reason="  ")
    assert _status(settings, who) == ("submitted", 1)


def test_an_approved_application_is_locked(settings: Settings, clock: FrozenClock) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    _decide(settings, who, "approve", clock.now())

    async def edit(session: AsyncSession) -> None:
        app, _inst = await b.load(session, who.application_id)
        ensure_editable(app)

    with pytest.raises(Forbidden, match="审核通过"):
        b.run(settings, edit)

    async def change_profile(session: AsyncSession) -> None:
        app, inst = await b.load(session, who.application_id)
        await registration.save_profile(
            session,
            app=app,
            institution=inst,
            raw=b.profile(**{"entity.grade": "2"}),
            now=clock.now(),
        )

    with pytest.raises(Forbidden):
        b.run(settings, change_profile)
    with pytest.raises(Forbidden):
        _decide(settings, who, "reject", clock.now(), reason="再次驳回")
    with pytest.raises(Forbidden):
        _submit(settings, who, clock.now())
    assert _status(settings, who) == ("approved", 1)


def test_a_submitted_application_cannot_be_edited_or_submitted_again(
    settings: Settings, clock: FrozenClock
) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    with pytest.raises(Forbidden, match="待审核"):
        _submit(settings, who, clock.now())
    assert _status(settings, who) == ("submitted", 1)


def test_regulators_and_applicants_cannot_decide(settings: Settings, clock: FrozenClock) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    applicant = Actor(who.username, "applicant", who.institution_id)
    for actor in (REGULATOR, applicant, b.OPERATOR):
        for action in ("approve", "reject"):
            with pytest.raises(Forbidden):
                _decide(settings, who, action, clock.now(), actor=actor, reason="x")
    assert _status(settings, who) == ("submitted", 1)


def test_an_incomplete_application_cannot_be_submitted(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_applicant(settings, clock.now())
    with pytest.raises(BadRequest) as caught:
        _submit(settings, who, clock.now())
    problems = caught.value.data["problems"]
    assert "尚未填写机构注册信息" in problems
    assert "尚未上传执业许可证" in problems and "尚未上传线下审批文件" in problems
    assert _status(settings, who) == ("draft", 0)


def _withdraw(settings: Settings, who: b.Applicant, now: datetime) -> None:
    async def work(session: AsyncSession) -> None:
        app, _ = await b.load(session, who.application_id)
        actor = Actor(who.username, "applicant", who.institution_id)
        await registration.withdraw(session, app=app, actor=actor, now=now)

    b.run(settings, work)


def test_a_submission_not_yet_reviewed_can_be_withdrawn_changed_and_resubmitted(
    settings: Settings, clock: FrozenClock
) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    _withdraw(settings, who, clock.now())
    assert _status(settings, who) == ("withdrawn", 1)
    with pytest.raises(Forbidden, match="已撤回"):
        _decide(settings, who, "approve", clock.now())

    async def change(session: AsyncSession) -> None:
        app, inst = await b.load(session, who.application_id)
        raw = b.profile(**{"entity.grade": "2", "internet.organID": b.ORG})
        await registration.save_profile(
            session, app=app, institution=inst, raw=raw, now=clock.now()
        )

    b.run(settings, change)
    _submit(settings, who, clock.now())
    assert _status(settings, who) == ("submitted", 2)

    async def actions(session: AsyncSession) -> list[tuple[str, str]]:
        steps = await session.scalars(select(Transition).order_by(Transition.id))
        return [(t.action, t.to_status) for t in steps]

    assert b.run(settings, actions)[1:] == [
        ("submit", "submitted"),
        ("withdraw", "withdrawn"),
        ("resubmit", "submitted"),
    ]


def test_a_decided_submission_cannot_be_withdrawn(settings: Settings, clock: FrozenClock) -> None:
    who = _complete(settings, clock)
    _submit(settings, who, clock.now())
    _decide(settings, who, "approve", clock.now())
    with pytest.raises(Forbidden, match="审核通过"):
        _withdraw(settings, who, clock.now())
    assert _status(settings, who) == ("approved", 1)
