"""Findings pages over real engine findings: queue, filters, bulk actions, the workflow on a
finding's page, the hospital's answer with evidence, scoping and exports."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.supervision.models import Finding, FindingEvent
from tests.exchange.builders import ORG_A, ORG_B
from tests.portal.client import csrf_of, post_form, sign_in
from tests.qualification import builders as qb
from tests.supervision.portal_builders import HOSPITAL_A, Reported, report


@pytest.fixture
def reported(settings: Settings, clock: FrozenClock) -> Reported:
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        return report(exchange, settings, clock)


@pytest.fixture
def regulator(
    portal_client: TestClient, settings: Settings, clock: FrozenClock, reported: Reported
) -> Iterator[TestClient]:
    qb.make_user(settings, clock.now(), username="regulator1", role="regulator")
    sign_in(portal_client, "regulator1", "Passw0rd-123")
    yield portal_client


def _findings(settings: Settings, institution_id: int | None = None) -> list[Finding]:
    async def read(s: object) -> list[Finding]:
        stmt = select(Finding).order_by(Finding.id)
        if institution_id is not None:
            stmt = stmt.where(Finding.institution_id == institution_id)
        return list((await s.scalars(stmt)).all())  # type: ignore[attr-defined]

    return qb.run(settings, read)


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="finding" value="(\d+)"', html)]


def test_queue_filters_by_hospital_rule_and_status_and_exports_the_same_rows(
    regulator: TestClient, reported: Reported, settings: Settings
) -> None:
    every = _findings(settings)
    assert {f.rule_id for f in every} >= {"R43"}
    html = regulator.get(f"/supervision/findings?hospital={reported.institution_a}&rule=R43").text
    expected = [
        f.id for f in every if f.institution_id == reported.institution_a and f.rule_id == "R43"
    ]
    assert sorted(_ids(html)) == sorted(expected)
    r = regulator.get(
        f"/supervision/findings/export.xlsx?hospital={reported.institution_a}&rule=R43"
    )
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("编号", "规则编号", "规则名称")
    assert [row[0] for row in rows[1:]] == _ids(html)
    assert {row[5] for row in rows[1:]} == {HOSPITAL_A}
    assert _ids(regulator.get("/supervision/findings?status=rectified").text) == []


def test_bulk_confirm_then_bulk_dismiss_needs_a_reason(
    regulator: TestClient, reported: Reported, settings: Settings
) -> None:
    page = regulator.get("/supervision/findings?rule=R45")
    chosen = _ids(page.text)[:2]
    assert chosen
    r = regulator.post(
        "/supervision/findings/bulk",
        data={"csrf_token": csrf_of(page.text), "action": "confirm", "finding": [str(i) for i in chosen],
              "back": "/supervision/findings?rule=R45"},
    )  # fmt: skip
    assert r.status_code == 200 and "已保存" in r.text
    assert {f.status for f in _findings(settings) if f.id in chosen} == {"confirmed"}
    r = regulator.post(
        "/supervision/findings/bulk",
        data={
            "csrf_token": csrf_of(page.text),
            "action": "dismiss",
            "finding": [str(i) for i in chosen],
        },
    )
    assert r.status_code == 400 and "排除原因" in r.text
    assert {f.status for f in _findings(settings) if f.id in chosen} == {"confirmed"}


def test_workflow_on_the_finding_page_with_the_hospital_answering_with_evidence(
    regulator: TestClient, reported: Reported, settings: Settings, clock: FrozenClock
) -> None:
    finding = next(f for f in _findings(settings, reported.institution_b) if f.rule_id == "R43")
    url = f"/supervision/findings/{finding.id}"
    html = regulator.get(url).text
    assert "关联数据不存在" in html or "R43" in html
    assert "依据" in html and "证据" in html and "/supervision/records/" in html
    assert not re.search(r"(?<!\w)\d{17}[\dX](?!\w)", html)  # ID numbers only masked
    assert post_form(regulator, f"{url}/confirm", page=url).status_code == 200
    bad = post_form(regulator, f"{url}/rectify", {"due_at": "2026-13-40"}, page=url)
    assert bad.status_code == 400 and "整改期限" in bad.text
    ok = post_form(
        regulator, f"{url}/rectify", {"due_at": "2026-02-01", "text": "补传医师备案"}, page=url
    )
    assert ok.status_code == 200 and "整改中" in ok.text

    hospital = TestClient(regulator.app)
    own = qb.make_applicant(settings, clock.now(), org_code=ORG_B, username="hosp_b")
    sign_in(hospital, own.username, own.password, "Hospital-2026")
    mine = hospital.get("/my/findings").text
    assert f"/my/findings/{finding.id}" in mine, mine[mine.find("<main>") :]
    page = hospital.get(f"/my/findings/{finding.id}")
    r = hospital.post(
        f"/my/findings/{finding.id}/answer",
        data={"csrf_token": csrf_of(page.text), "text": "已补传医师信息"},
        files={"file": ("整改说明.pdf", qb.pdf("Rectified"), "application/pdf")},
    )
    assert r.status_code == 200 and "已补传医师信息" in r.text
    link = re.search(r'href="(/findings/\d+/events/\d+/attachment)"', r.text)
    assert link
    assert hospital.get(link.group(1)).content.startswith(b"%PDF-")
    assert regulator.get(link.group(1)).content.startswith(b"%PDF-")

    done = post_form(regulator, f"{url}/close", {"text": "整改到位"}, page=url)
    assert done.status_code == 200 and "已整改" in done.text

    async def events(s: object) -> list[str]:
        rows = await s.scalars(  # type: ignore[attr-defined]
            select(FindingEvent.action)
            .where(FindingEvent.finding_id == finding.id)
            .order_by(FindingEvent.id)
        )
        return list(rows)

    assert qb.run(settings, events)[-4:] == ["confirm", "rectify", "answer", "close"]


def test_a_hospital_sees_and_answers_only_its_own_findings(
    portal_client: TestClient, settings: Settings, clock: FrozenClock, reported: Reported
) -> None:
    other = next(f for f in _findings(settings, reported.institution_b))
    own = qb.make_applicant(settings, clock.now(), org_code=ORG_A, username="hosp_a")
    sign_in(portal_client, own.username, own.password, "Hospital-2026")
    listed = portal_client.get("/my/findings").text
    assert f"/my/findings/{other.id}" not in listed
    assert portal_client.get(f"/my/findings/{other.id}").status_code == 404
    mine = next(f for f in _findings(settings, reported.institution_a))
    page = portal_client.get(f"/my/findings/{mine.id}")
    assert page.status_code == 200
    r = portal_client.post(
        f"/my/findings/{other.id}/comment", data={"csrf_token": csrf_of(page.text), "text": "x"}
    )
    assert r.status_code == 404
    assert portal_client.get("/supervision/findings").status_code == 403
    r = portal_client.post(
        f"/my/findings/{mine.id}/confirm", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 403  # the transition table: only the regulator confirms
